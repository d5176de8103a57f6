// Linear layers: y = x W^T (+ bias), W (out, in) row-major, stored F32 / BF16 / F16 (usually inside the
// mmap). F32 products go to OpenBLAS sgemm, straight from the weight's memory. Compressed weights (BF16/F16)
// go to our packed GEMM (ops/gemm.h), which widens them to float32 while packing, so no float32 copy of a
// weight exists (the older path, widening a panel of rows into a scratch buffer and calling sgemm, stays
// selectable for comparison). Few-row products (the timestep path) read the weight directly.
#pragma once
#include <cstdint>
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

enum class CompressedPath { kPackWiden, kWidenThenSgemm };
void set_compressed_path(CompressedPath path);
CompressedPath compressed_path();

// kWidenThenSgemm only: largest number of weight elements widened at once (a panel of whole output rows).
// Default 32M floats (128 MiB).
void set_linear_panel_elements(int64_t elements);
int64_t linear_panel_elements();

// y[m, o] = sum_i x[m, i] * W[o, i] + bias[o] (bias may be null). x: M rows, stride ldx; y: stride ldy.
// If accumulate, y += result instead of y = result.
void linear(const float* x, int64_t M, int64_t ldx, const WeightMatrix& w, const float* bias, float* y,
            int64_t ldy, LinearScratch& scratch, bool accumulate = false);

// Plain scalar reference (double accumulation).
void linear_reference(const float* x, int64_t M, int64_t ldx, const WeightMatrix& w, const float* bias,
                      float* y, int64_t ldy);

// Reads element (o, i) of a weight as float32.
float weight_at(const WeightMatrix& w, int64_t o, int64_t i);

}  // namespace krea2
