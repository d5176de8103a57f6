// Linear layers: y = x W^T (+ bias), W (out, in) row-major, stored F32 / BF16 / F16 (usually inside the
// mmap). Products go to our packed GEMM (ops/gemm.h), which reads F32 weights in place and widens BF16/F16
// to float32 while packing, so no float32 copy of a weight exists. OpenBLAS sgemm stays selectable for
// comparison (LinearBackend). Few-row products (the timestep path) read the weight directly.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <span>
#include <vector>

#include "krea2/tensor.h"

namespace krea2 {

struct WeightDelta;

// A weight as stored: rows of `dtype` (a float type, fp8, I8 or a ggml block format; cols a multiple of its
// block), row-major, used in place. The stored values are decoded to float32 while a product packs them
// (ops/weight_decode.h), then dequantized: w = decoded * scale * row_scales[o], and for int8 convrot rotated
// back: w_row = (q s) R^T with R the block Hadamard rotation of `rotation_group` inputs. The raw rows stay
// reachable for kernels that later compute on the stored codes directly.
struct WeightMatrix {
  DType dtype = DType::F32;
  int64_t rows = 0;  // out features
  int64_t cols = 0;  // in features
  const void* data = nullptr;
  float scale = 1.0f;                  // per tensor (ComfyUI scaled fp8)
  const float* row_scales = nullptr;   // per output row (int8), or null
  int64_t rotation_group = 0;          // convrot group size G (a power of 4), 0 = none; I8 only
  const WeightDelta* delta = nullptr;  // adapter terms linear() adds (ops/weight_delta.h), or null
  bool empty() const { return data == nullptr; }
  int64_t row_bytes() const { return dtype_row_bytes(dtype, cols); }
  // Stored F32 / BF16 / F16 values used as they are (no scale, no rotation): the kernels read these directly.
  bool is_plain_float() const {
    return (dtype == DType::F32 || dtype == DType::BF16 || dtype == DType::F16) && scale == 1.0f &&
           row_scales == nullptr && rotation_group == 0;
  }
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
void linear_many(const float* x, int64_t M, int64_t ldx, std::span<const LinearProduct> products,
                 LinearScratch& scratch);

// Plain scalar reference (double accumulation).
void linear_reference(const float* x, int64_t M, int64_t ldx, const WeightMatrix& w, const float* bias,
                      float* y, int64_t ldy);

// Reads element (o, i) of a weight as float32.
float weight_at(const WeightMatrix& w, int64_t o, int64_t i);

}  // namespace krea2
