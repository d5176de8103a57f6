#include "ops/norm.h"

#include <cmath>

#include "ops/row_kernels.h"

namespace krea2 {

void rms_norm_plain(const float* x, int64_t rows, int64_t dim, int64_t ldx, const float* weight, float eps,
                    float* out, int64_t ldo) {
  const RowKernels& k = row_kernels();
#pragma omp parallel for schedule(static) if (rows * dim >= 16384)
  for (int64_t r = 0; r < rows; ++r) k.norm_plain(x + r * ldx, dim, weight, eps, out + r * ldo);
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
  const RowKernels& k = row_kernels();
  // Small inputs (per-head q/k norms of a few rows) are not worth waking the thread team.
#pragma omp parallel for schedule(static) if (rows * dim >= 16384)
  for (int64_t r = 0; r < rows; ++r) k.norm(x + r * ldx, dim, weight, eps, out + r * ldo, scale, shift);
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
