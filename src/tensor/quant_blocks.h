// ggml block formats (GGUF) and the fp8 element types: layouts, and the plain scalar decoders every fast
// decoder is tested against. Each block decodes to float32 bit-exactly as gguf-py / ggml do: the exact
// partial products (d * small integer, d * sc, dmin * mn) are formed first and each value is rounded once.
//
// Layouts (all fields little-endian; d, m, dmin are IEEE fp16):
//   Q4_0  32 el / 18 B: d, qs[16]           w = d (q - 8), q = low nibbles (e < 16), high nibbles (e >= 16)
//   Q4_1  32 el / 20 B: d, m, qs[16]        w = d q + m
//   Q5_0  32 el / 22 B: d, qh u32, qs[16]   q = nibble | (qh >> e & 1) << 4, w = d (q - 16)
//   Q5_1  32 el / 24 B: d, m, qh, qs[16]    w = d q + m
//   Q8_0  32 el / 34 B: d, qs[32] int8      w = d q
//   Q2_K 256 el / 84 B: scales[16], qs[64], d, dmin           w = d (s & 15) q - dmin (s >> 4)
//   Q3_K 256 el / 110 B: hmask[32], qs[64], scales[12], d     w = d sc q, sc 6-bit - 32, q in -4..3
//   Q4_K 256 el / 144 B: d, dmin, scales[12], qs[128]         w = d sc q - dmin mn (6-bit sc, mn)
//   Q5_K 256 el / 176 B: d, dmin, scales[12], qh[32], qs[128]
//   Q6_K 256 el / 210 B: ql[128], qh[64], scales[16] int8, d  w = (d sc) q, q in -32..31
#pragma once
#include <cstdint>

#include "krea2/tensor.h"

namespace krea2 {

// Decodes one block of a block format (dtype_block_elements(t) values) into out. The scalar reference.
void decode_block_reference(DType t, const uint8_t* block, float* out);

// fp8 code -> float32 (F8_E4M3: torch float8_e4m3fn, no infinities, 0x7F / 0xFF NaN; F8_E5M2: the upper byte
// of an IEEE half).
float f8_e4m3_to_f32(uint8_t code);
float f8_e5m2_to_f32(uint8_t code);

// Elements [0, n) of a row stored as `t` (any float element type, fp8, I8, or a block format; n a multiple
// of the block) as float32, by the scalar reference decoders.
void decode_row_reference(DType t, const void* row, int64_t n, float* out);

// Whether a row of type t can be decoded to float32 (the float element types, fp8, I8/U8 and every block
// format).
bool dtype_is_decodable(DType t);

}  // namespace krea2
