// Per-family block encoders behind quantize_row (tensor/quantize.h). Each writes nblocks whole blocks of t.
#pragma once
#include <cstdint>

#include "krea2/tensor.h"

namespace krea2 {

// Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 (quantize_legacy.cpp).
void quantize_legacy_blocks(DType t, const float* x, int64_t nblocks, uint8_t* out);
// Q2_K, Q3_K, Q4_K, Q5_K, Q6_K (quantize_k.cpp).
void quantize_k_blocks(DType t, const float* x, int64_t nblocks, uint8_t* out);

}  // namespace krea2
