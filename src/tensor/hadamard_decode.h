// Decoding ComfyUI int8 convrot groups: w = (H_G q) * factor for each group of G int8 codes, where H_G =
// kron(H4, ..., H4) is the unnormalised block Hadamard matrix (H4 = [[1,1,1,-1],[1,1,-1,1],[1,-1,1,1],
// [-1,1,1,1]], symmetric, so q H = H q) and factor = row scale / sqrt(G). H_G q is an integer of magnitude
// <= 127 G, exact in float32 for any G <= 2^17, so every kernel gives the reference's bits.
#pragma once
#include <cstdint>

namespace krea2 {

// `groups` consecutive groups of G codes (G a power of 4, >= 4) into groups * G floats.
void decode_hadamard_i8(const int8_t* q, int64_t G, int64_t groups, float factor, float* out);
// The plain integer butterflies (the tests' reference).
void decode_hadamard_i8_reference(const int8_t* q, int64_t G, int64_t groups, float factor, float* out);

// The AVX2 kernel behind decode_hadamard_i8 (hadamard_decode_avx2.cpp).
void decode_hadamard_i8_avx2(const int8_t* q, int64_t G, int64_t groups, float factor, float* out);

}  // namespace krea2
