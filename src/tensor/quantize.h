// Encoders: float32 rows -> ggml block formats, fp8 codes, ComfyUI int8 convrot codes. The inverses of the
// decoders in tensor/quant_blocks.h.
//
// Q8_0, Q4_0, Q4_1, Q5_0 and Q5_1 are bit-identical to gguf-py's quantizers (quants.py), which reproduce
// ggml's quantize_row_*_ref: per block of 32, Q8_0 d = amax / 127, q = roundf(x / d) (half away from zero);
// Q4_0 / Q5_0 d = max / -8 (-16) with max the first value of largest |x|, q = min(15 (31), trunc(x id + 8.5
// (16.5))) with x id + 8.5 rounded ONCE (gguf-py evaluates it in float64; ggml built with FMA contraction
// fuses it); Q4_1 / Q5_1 d = (max - min) / 15 (31), q = trunc(fl((x - min) id) + 0.5) in float32 with two
// roundings (as gguf-py). id = 1 / d (0 when d = 0); d and min are stored as fp16 (round to nearest even).
// Only an all-zero block whose first value is -0 differs from gguf-py (which stores d = +0, ggml -0; both
// decode to zeros): we follow ggml.
//
// The K formats (Q2_K .. Q6_K) are our own search (quantize_k.cpp): it minimises the squared error and is at
// least as accurate as ggml's reference quantizer on Gaussian and heavy-tailed weights (tests/test_quantize).
//
// Inputs must be finite. NaN or infinite inputs never crash nor hit undefined behaviour, but their codes are
// unspecified; values so large that a block scale overflows fp16 saturate it (K formats) or store an infinite
// scale (the legacy formats, as ggml does).
#pragma once
#include <cstdint>

#include "krea2/tensor.h"

namespace krea2 {

// Whether quantize_row accepts t: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K.
bool dtype_is_quantizable(DType t);

// Quantizes n float32 values (n a multiple of dtype_block_elements(t)) into dtype_row_bytes(t, n) bytes of
// t's blocks. F32 copies, F16 / BF16 round to nearest even. Throws krea2::Error for another t or a bad n.
void quantize_row(DType t, const float* x, int64_t n, void* out);

// fp8 encoders: round to nearest, ties to even. Finite values beyond the largest finite code saturate to
// +-max (448 for e4m3fn, 57344 for e5m2). NaN -> 0x7F | sign (a NaN code of both formats). Infinity: e4m3fn
// has none and saturates to +-448 (as ComfyUI's clamp before the cast); e5m2 keeps it (0x7C | sign).
uint8_t f32_to_f8_e4m3(float x);
uint8_t f32_to_f8_e5m2(float x);

// ComfyUI scaled fp8 of one weight matrix (t = F8_E4M3 or F8_E5M2): scale = max|w| / fp8_max (1 if every w
// is 0), codes[i] = encode(w[i] / scale). Decoding is decode(code) * scale (one float32 multiply).
// Returns the scale. Throws krea2::Error for another t.
float quantize_fp8_scaled(DType t, const float* w, int64_t n, uint8_t* codes);

// Block Hadamard rotation used by int8 convrot: x <- x R on each contiguous group of G values (G = 4^k,
// G divides n), R = blockdiag(H_G), H_G = kron(H4, ..., H4) / sqrt(G) with the unnormalised
// H4 = [[1,1,1,-1],[1,1,-1,1],[1,-1,1,1],[-1,1,1,1]] (symmetric, orthogonal: rotating twice is the
// identity). Radix-4 butterflies, O(n log G); 1 / sqrt(G) = 2^-k is applied exactly at the end.
// Throws krea2::Error if G is no power of 4 or does not divide n.
void hadamard_rotate(float* x, int64_t n, int64_t G);

// int8 convrot quantization of one row of W (length n): W_rot = W R, s = max|W_rot| / 127,
// q = clamp(round_half_even(W_rot / s), -128, 127) (in fact within +-127). Returns s. An all-zero row gives
// s = 0 and all-zero codes (ComfyUI would divide by zero; any s decodes that row to zeros).
float quantize_int8_convrot_row(const float* w, int64_t n, int64_t G, int8_t* q);

}  // namespace krea2
