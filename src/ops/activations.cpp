#include "ops/activations.h"

#include <cmath>

#include "ops/row_kernels.h"

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

// The in-place activations run their rows through the ISA's row kernels (ops/row_kernels.h).
void swiglu_inplace(float* a, int64_t lda, const float* b, int64_t ldb, int64_t rows, int64_t dim) {
  const RowKernels& k = row_kernels();
#pragma omp parallel for schedule(static) if (rows * dim > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) k.swiglu(a + r * lda, b + r * ldb, dim);
}

void sigmoid_gate_inplace(float* o, int64_t ldo, const float* g, int64_t ldg, int64_t rows, int64_t dim) {
  const RowKernels& k = row_kernels();
#pragma omp parallel for schedule(static) if (rows * dim > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) k.sigmoid_gate(o + r * ldo, g + r * ldg, dim);
}

void gated_residual(float* x, int64_t ldx, const float* y, int64_t ldy, const float* gate, int64_t rows,
                    int64_t dim) {
  const RowKernels& k = row_kernels();
#pragma omp parallel for schedule(static) if (rows * dim > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) k.gated_residual(x + r * ldx, y + r * ldy, gate, dim);
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
