#include "ops/norm.h"

#include <cmath>

namespace krea2 {

namespace {

void norm_row(const float* x, int64_t dim, const float* weight, float eps, float* out, const float* scale,
              const float* shift) {
  float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
  for (int64_t i = 0; i < dim; ++i) ss += x[i] * x[i];
  const float inv = 1.0f / std::sqrt(ss / float(dim) + eps);
  if (scale) {
#pragma omp simd
    for (int64_t i = 0; i < dim; ++i)
      out[i] = (1.0f + scale[i]) * (x[i] * inv * (1.0f + weight[i])) + shift[i];
  } else {
#pragma omp simd
    for (int64_t i = 0; i < dim; ++i) out[i] = x[i] * inv * (1.0f + weight[i]);
  }
}

void norm_row_plain(const float* x, int64_t dim, const float* weight, float eps, float* out) {
  float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
  for (int64_t i = 0; i < dim; ++i) ss += x[i] * x[i];
  const float inv = 1.0f / std::sqrt(ss / float(dim) + eps);
#pragma omp simd
  for (int64_t i = 0; i < dim; ++i) out[i] = weight[i] * (x[i] * inv);
}

}  // namespace

void rms_norm_plain(const float* x, int64_t rows, int64_t dim, int64_t ldx, const float* weight, float eps,
                    float* out, int64_t ldo) {
#pragma omp parallel for schedule(static) if (rows * dim >= 16384)
  for (int64_t r = 0; r < rows; ++r) norm_row_plain(x + r * ldx, dim, weight, eps, out + r * ldo);
}

void rms_norm_plain_reference(const float* x, int64_t rows, int64_t dim, int64_t ldx, const float* weight,
                              float eps, float* out, int64_t ldo) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * ldx;
    double ss = 0;
    for (int64_t i = 0; i < dim; ++i) ss += double(xr[i]) * xr[i];
    const double inv = 1.0 / std::sqrt(ss / double(dim) + double(eps));
    for (int64_t i = 0; i < dim; ++i) out[r * ldo + i] = float(double(weight[i]) * (xr[i] * inv));
  }
}

void rms_norm(const float* x, int64_t rows, int64_t dim, int64_t ldx, const float* weight, float eps,
              float* out, int64_t ldo, const float* scale, const float* shift) {
  // Small inputs (per-head q/k norms of a few rows) are not worth waking the thread team.
  if (rows * dim < 16384) {
    for (int64_t r = 0; r < rows; ++r) norm_row(x + r * ldx, dim, weight, eps, out + r * ldo, scale, shift);
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) norm_row(x + r * ldx, dim, weight, eps, out + r * ldo, scale, shift);
}

void rms_norm_reference(const float* x, int64_t rows, int64_t dim, int64_t ldx, const float* weight,
                        float eps, float* out, int64_t ldo, const float* scale, const float* shift) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * ldx;
    double ss = 0;
    for (int64_t i = 0; i < dim; ++i) ss += double(xr[i]) * xr[i];
    double inv = 1.0 / std::sqrt(ss / double(dim) + double(eps));
    for (int64_t i = 0; i < dim; ++i) {
      double v = xr[i] * inv * (1.0 + weight[i]);
      if (scale) v = (1.0 + scale[i]) * v + shift[i];
      out[r * ldo + i] = float(v);
    }
  }
}

}  // namespace krea2
