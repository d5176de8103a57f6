// The element-wise row kernels at the AVX2 floor (ops/row_kernels.h): loops the compiler vectorises
// (omp simd) and, for the sigmoid, 8 lanes at a time through sigmoid8 (ops/simd.h) with the scalar function
// for the tail.
#include <cmath>

#include "ops/activations.h"
#include "ops/row_kernels.h"
#include "ops/simd.h"

namespace krea2 {
namespace {

float inverse_rms(const float* x, int64_t dim, float eps) {
  float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
  for (int64_t i = 0; i < dim; ++i) ss += x[i] * x[i];
  return 1.0f / std::sqrt(ss / float(dim) + eps);
}

void norm(const float* x, int64_t dim, const float* weight, float eps, float* out, const float* scale,
          const float* shift) {
  const float inv = inverse_rms(x, dim, eps);
  if (scale) {
#pragma omp simd
    for (int64_t i = 0; i < dim; ++i)
      out[i] = (1.0f + scale[i]) * (x[i] * inv * (1.0f + weight[i])) + shift[i];
  } else {
#pragma omp simd
    for (int64_t i = 0; i < dim; ++i) out[i] = x[i] * inv * (1.0f + weight[i]);
  }
}

void norm_plain(const float* x, int64_t dim, const float* weight, float eps, float* out) {
  const float inv = inverse_rms(x, dim, eps);
#pragma omp simd
  for (int64_t i = 0; i < dim; ++i) out[i] = weight[i] * (x[i] * inv);
}

void rotate_pairs(float* x, const float* c, const float* s, int64_t half) {
  for (int64_t k = 0; k < half; ++k) {
    const float a = x[2 * k], b = x[2 * k + 1];
    x[2 * k] = a * c[k] - b * s[k];
    x[2 * k + 1] = b * c[k] + a * s[k];
  }
}

void swiglu(float* a, const float* b, int64_t dim) {
  int64_t i = 0;
  for (; i + 8 <= dim; i += 8) {
    const __m256 x = _mm256_loadu_ps(a + i);
    _mm256_storeu_ps(a + i, _mm256_mul_ps(_mm256_mul_ps(x, sigmoid8(x)), _mm256_loadu_ps(b + i)));
  }
  for (; i < dim; ++i) a[i] = silu(a[i]) * b[i];
}

void sigmoid_gate(float* o, const float* g, int64_t dim) {
  int64_t i = 0;
  for (; i + 8 <= dim; i += 8)
    _mm256_storeu_ps(o + i, _mm256_mul_ps(_mm256_loadu_ps(o + i), sigmoid8(_mm256_loadu_ps(g + i))));
  for (; i < dim; ++i) o[i] *= sigmoid(g[i]);
}

void gated_residual(float* x, const float* y, const float* gate, int64_t dim) {
  if (gate) {
#pragma omp simd
    for (int64_t i = 0; i < dim; ++i) x[i] += gate[i] * y[i];
  } else {
#pragma omp simd
    for (int64_t i = 0; i < dim; ++i) x[i] += y[i];
  }
}

}  // namespace

const RowKernels kRowKernelsAvx2 = {
    .isa = Isa::kAvx2,
    .name = "avx2",
    .norm = norm,
    .norm_plain = norm_plain,
    .rotate_pairs = rotate_pairs,
    .swiglu = swiglu,
    .sigmoid_gate = sigmoid_gate,
    .gated_residual = gated_residual,
};

}  // namespace krea2
