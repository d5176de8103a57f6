// Linear layers: y = x W^T (+ bias), W (out, in) row-major, stored F32 / BF16 / F16 (usually inside the
// mmap). Products go to our packed GEMM (ops/gemm.h), which reads F32 weights in place and widens BF16/F16
// to float32 while packing, so no float32 copy of a weight exists. OpenBLAS sgemm stays selectable for
// comparison (LinearBackend). Few-row products (the timestep path) read the weight directly.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <vector>

#include "krea2/tensor.h"

namespace krea2 {

struct WeightMatrix {
  DType dtype = DType::F32;
  int64_t rows = 0;  // out features
  int64_t cols = 0;  // in features
  const void* data = nullptr;
  bool empty() const { return data == nullptr; }
};

struct LinearScratch {
  std::vector<float> widened;
};

// The matrix product behind linear() for more than 4 rows.
enum class LinearBackend {
  // gemm_xwt (ops/gemm.h) for every weight dtype: the default. Inside the forward on the target machine it
  // measured faster than OpenBLAS (its threads share the work dynamically); on single products the two trade
  // places from run to run.
  kPackedGemm,
  // OpenBLAS sgemm: F32 weights straight from memory, BF16/F16 widened a panel at a time into scratch first.
  kOpenBlas,
};
void set_linear_backend(LinearBackend backend);
LinearBackend linear_backend();

// kOpenBlas only: largest number of weight elements widened at once (a panel of whole output rows).
// Default 32M floats (128 MiB).
void set_linear_panel_elements(int64_t elements);
int64_t linear_panel_elements();

// y[m, o] = sum_i x[m, i] * W[o, i] + bias[o] (bias may be null). x: M rows, stride ldx; y: stride ldy.
// If accumulate, y += result instead of y = result.
void linear(const float* x, int64_t M, int64_t ldx, const WeightMatrix& w, const float* bias, float* y,
            int64_t ldy, LinearScratch& scratch, bool accumulate = false);

// Several products of the same x without bias, y_j = x W_j^T (all W_j with the same number of columns). With
// the packed GEMM they run as one gemm_xwt_many call (x packed once, one thread team for all columns);
// otherwise one linear() each.
struct LinearProduct {
  const WeightMatrix* w;
  float* y;
  int64_t ldy;
};
void linear_many(const float* x, int64_t M, int64_t ldx, std::initializer_list<LinearProduct> products,
                 LinearScratch& scratch);

// Plain scalar reference (double accumulation).
void linear_reference(const float* x, int64_t M, int64_t ldx, const WeightMatrix& w, const float* bias,
                      float* y, int64_t ldy);

// Reads element (o, i) of a weight as float32.
float weight_at(const WeightMatrix& w, int64_t o, int64_t i);

}  // namespace krea2
