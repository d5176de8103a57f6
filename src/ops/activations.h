// Element-wise activations and the fused memory-bound steps of a block (gate, SwiGLU, gated residual).
#pragma once
#include <cstdint>

namespace krea2 {

float gelu_tanh(float x);  // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
float silu(float x);       // x * sigmoid(x)
float sigmoid(float x);

void gelu_tanh_inplace(float* x, int64_t n);

// a[r, i] = silu(a[r, i]) * b[r, i] over rows x dim (row strides lda, ldb).
void swiglu_inplace(float* a, int64_t lda, const float* b, int64_t ldb, int64_t rows, int64_t dim);

// o[r, i] *= sigmoid(g[r, i]).
void sigmoid_gate_inplace(float* o, int64_t ldo, const float* g, int64_t ldg, int64_t rows, int64_t dim);

// x[r, i] += gate[i] * y[r, i] (gate may be null: plain residual).
void gated_residual(float* x, int64_t ldx, const float* y, int64_t ldy, const float* gate, int64_t rows,
                    int64_t dim);

// Double-precision references, for tests.
double gelu_tanh_reference(double x);
double silu_reference(double x);
double sigmoid_reference(double x);

}  // namespace krea2
