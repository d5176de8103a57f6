#include "ops/activations.h"

#include <cmath>

#include "ops/simd.h"

namespace krea2 {

namespace {
constexpr int64_t kParallelMin = 1 << 15;  // elements below which threads cost more than they save
}

float gelu_tanh(float x) {
  const float k = 0.7978845608028654f;  // sqrt(2 / pi)
  return 0.5f * x * (1.0f + std::tanh(k * (x + 0.044715f * x * x * x)));
}

float sigmoid(float x) {
  return 1.0f / (1.0f + std::exp(-x));
}
float silu(float x) {
  return x / (1.0f + std::exp(-x));
}

void gelu_tanh_inplace(float* x, int64_t n) {
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) x[i] = gelu_tanh(x[i]);
}

// The in-place activations run 8 lanes at a time through sigmoid8 (ops/simd.h), the scalar functions above
// for the tail.
void swiglu_inplace(float* a, int64_t lda, const float* b, int64_t ldb, int64_t rows, int64_t dim) {
#pragma omp parallel for schedule(static) if (rows * dim > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    float* ar = a + r * lda;
    const float* br = b + r * ldb;
    int64_t i = 0;
    for (; i + 8 <= dim; i += 8) {
      const __m256 x = _mm256_loadu_ps(ar + i);
      _mm256_storeu_ps(ar + i, _mm256_mul_ps(_mm256_mul_ps(x, sigmoid8(x)), _mm256_loadu_ps(br + i)));
    }
    for (; i < dim; ++i) ar[i] = silu(ar[i]) * br[i];
  }
}

void sigmoid_gate_inplace(float* o, int64_t ldo, const float* g, int64_t ldg, int64_t rows, int64_t dim) {
#pragma omp parallel for schedule(static) if (rows * dim > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    float* orow = o + r * ldo;
    const float* grow = g + r * ldg;
    int64_t i = 0;
    for (; i + 8 <= dim; i += 8)
      _mm256_storeu_ps(orow + i,
                       _mm256_mul_ps(_mm256_loadu_ps(orow + i), sigmoid8(_mm256_loadu_ps(grow + i))));
    for (; i < dim; ++i) orow[i] *= sigmoid(grow[i]);
  }
}

void gated_residual(float* x, int64_t ldx, const float* y, int64_t ldy, const float* gate, int64_t rows,
                    int64_t dim) {
#pragma omp parallel for schedule(static) if (rows * dim > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    float* xr = x + r * ldx;
    const float* yr = y + r * ldy;
    if (gate) {
#pragma omp simd
      for (int64_t i = 0; i < dim; ++i) xr[i] += gate[i] * yr[i];
    } else {
#pragma omp simd
      for (int64_t i = 0; i < dim; ++i) xr[i] += yr[i];
    }
  }
}

double gelu_tanh_reference(double x) {
  return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
}
double sigmoid_reference(double x) {
  return 1.0 / (1.0 + std::exp(-x));
}
double silu_reference(double x) {
  return x * sigmoid_reference(x);
}

}  // namespace krea2
