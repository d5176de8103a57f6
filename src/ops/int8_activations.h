// Dynamic int8 quantization of activations for int8 compute: per row, after the convrot rotation when the
// weights were rotated (x_rot = x R, R = blockdiag(H_G), see tensor/quantize.h), s = max |x_rot| / 127 and
// q = clamp(round_half_even(x_rot / s), -127, 127); an all-zero row gets s = 0 and zero codes. This is the
// definition of ComfyUI's int8 compute (shared/fixtures/quant/README.md, "int8 compute").
#pragma once
#include <cstdint>

namespace krea2 {

// M rows of K floats (row stride ldx) -> M rows of K codes (row stride K) and M scales. group: the
// rotation's G (a power of 4 dividing K), 0 for none. Rows in parallel when called outside a parallel
// region.
void quantize_activations_i8(const float* x, int64_t M, int64_t ldx, int64_t K, int64_t group, int8_t* q,
                             float* scales);

// The plain scalar definition (the tests' reference).
void quantize_activations_i8_reference(const float* x, int64_t M, int64_t ldx, int64_t K, int64_t group,
                                       int8_t* q, float* scales);

}  // namespace krea2
