// RMSNorm with zero-centred weights, alone or fused with the adaptive modulation of the transformer blocks.
#pragma once
#include <cstdint>

namespace krea2 {

// out[r] = x[r] / sqrt(mean(x[r]^2) + eps) * (1 + weight)   for rows r of width `dim` (strides ldx / ldo).
// If scale/shift are given: out = (1 + scale) * out + shift (vectors of `dim`, the same for every row).
// out may alias x.
void rms_norm(const float* x, int64_t rows, int64_t dim, int64_t ldx, const float* weight, float eps,
              float* out, int64_t ldo, const float* scale = nullptr, const float* shift = nullptr);

// Plain-weight RMSNorm (Qwen3 / Llama): out[r] = weight * (x[r] / sqrt(mean(x[r]^2) + eps)), in that
// order, as transformers computes it. out may alias x.
void rms_norm_plain(const float* x, int64_t rows, int64_t dim, int64_t ldx, const float* weight, float eps,
                    float* out, int64_t ldo);
void rms_norm_plain_reference(const float* x, int64_t rows, int64_t dim, int64_t ldx, const float* weight,
                              float eps, float* out, int64_t ldo);

// Scalar reference, double accumulation.
void rms_norm_reference(const float* x, int64_t rows, int64_t dim, int64_t ldx, const float* weight,
                        float eps, float* out, int64_t ldo, const float* scale = nullptr,
                        const float* shift = nullptr);

}  // namespace krea2
