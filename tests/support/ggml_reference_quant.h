// Test-only references: plain transcriptions of ggml's reference quantizers (quantize_row_*_ref in
// ggml-quants.c; gguf-py quants.py for the legacy formats), written from their published rules. The legacy
// ones are the bit-exact target of quantize_row; the K ones are the quality baseline of our K search.
#pragma once
#include <cstdint>

#include "krea2/tensor.h"

namespace krea2::test::ggml_ref {

// Where float32 rounds in q = trunc(x * id + bias) of Q4_0 / Q5_0 and trunc((x - min) * id + 0.5) of Q4_1 /
// Q5_1: kGgufPy is what gguf-py does (Q4_0 / Q5_0 in float64, i.e. once; Q4_1 / Q5_1 in float32, twice);
// kTwice rounds the product and then the sum (ggml compiled without FMA contraction); kOnce rounds only the
// sum (ggml with the product and add contracted into an FMA).
enum class Rounding { kGgufPy, kTwice, kOnce };

// Quantizes n values (a multiple of the block) of a legacy (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1) or K (Q2_K ..
// Q6_K) format into out.
void quantize(DType t, const float* x, int64_t n, uint8_t* out, Rounding rounding = Rounding::kGgufPy);

}  // namespace krea2::test::ggml_ref
