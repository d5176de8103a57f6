#include "ops/linear.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cstring>

#include "ops/gemm.h"
#include "tensor/convert.h"

namespace krea2 {

namespace {

int64_t g_panel_elements = int64_t(32) << 20;
LinearBackend g_backend = LinearBackend::kPackedGemm;

// Below this many rows a product is bandwidth-bound on the weight: read it directly, never widen the whole
// matrix.
constexpr int64_t kDirectMaxRows = 4;

const std::byte* row_ptr(const WeightMatrix& w, int64_t o) {
  return static_cast<const std::byte*>(w.data) + size_t(o) * size_t(w.cols) * dtype_size(w.dtype);
}

void linear_direct(const float* x, int64_t M, int64_t ldx, const WeightMatrix& w, const float* bias, float* y,
                   int64_t ldy, bool accumulate) {
#pragma omp parallel
  {
    std::vector<float> row(size_t(w.cols));
#pragma omp for schedule(static)
    for (int64_t o = 0; o < w.rows; ++o) {
      widen_to_f32(w.dtype, row_ptr(w, o), row.data(), size_t(w.cols));
      for (int64_t m = 0; m < M; ++m) {
        const float* xm = x + m * ldx;
        float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
        for (int64_t i = 0; i < w.cols; ++i) acc += xm[i] * row[size_t(i)];
        if (bias) acc += bias[o];
        float& out = y[m * ldy + o];
        out = accumulate ? out + acc : acc;
      }
    }
  }
}

void widen_rows_parallel(const WeightMatrix& w, int64_t row0, int64_t nrows, float* dst) {
  const int64_t n = nrows * w.cols;
  const int64_t chunk = 1 << 16;
#pragma omp parallel for schedule(static)
  for (int64_t start = 0; start < n; start += chunk) {
    int64_t len = std::min(chunk, n - start);
    widen_to_f32(w.dtype, row_ptr(w, row0) + size_t(start) * dtype_size(w.dtype), dst + start, size_t(len));
  }
}

}  // namespace

void set_linear_backend(LinearBackend backend) {
  g_backend = backend;
}
LinearBackend linear_backend() {
  return g_backend;
}

void set_linear_panel_elements(int64_t elements) {
  g_panel_elements = std::max<int64_t>(elements, 1);
}
int64_t linear_panel_elements() {
  return g_panel_elements;
}

float weight_at(const WeightMatrix& w, int64_t o, int64_t i) {
  float v;
  widen_to_f32(w.dtype, row_ptr(w, o) + size_t(i) * dtype_size(w.dtype), &v, 1);
  return v;
}

void linear(const float* x, int64_t M, int64_t ldx, const WeightMatrix& w, const float* bias, float* y,
            int64_t ldy, LinearScratch& scratch, bool accumulate) {
  if (M <= 0 || w.rows <= 0) return;
  if (w.cols == 0) {
    for (int64_t m = 0; m < M; ++m)
      for (int64_t o = 0; o < w.rows; ++o) {
        float b = bias ? bias[o] : 0.0f;
        y[m * ldy + o] = accumulate ? y[m * ldy + o] + b : b;
      }
    return;
  }
  if (M <= kDirectMaxRows) {
    linear_direct(x, M, ldx, w, bias, y, ldy, accumulate);
    return;
  }
  // Bias first, so that sgemm accumulates onto it (beta = 1).
  float beta = accumulate ? 1.0f : 0.0f;
  if (bias) {
#pragma omp parallel for schedule(static)
    for (int64_t m = 0; m < M; ++m) {
      float* ym = y + m * ldy;
      if (accumulate) {
        for (int64_t o = 0; o < w.rows; ++o) ym[o] += bias[o];
      } else {
        std::memcpy(ym, bias, size_t(w.rows) * sizeof(float));
      }
    }
    beta = 1.0f;
  }
  if (g_backend == LinearBackend::kPackedGemm) {
    // Our GEMM reads F32 weights in place and widens BF16/F16 while packing: no float32 copy of a weight.
    gemm_xwt(x, M, ldx, w, y, ldy, beta != 0.0f);
    return;
  }
  if (w.dtype == DType::F32 && reinterpret_cast<uintptr_t>(w.data) % alignof(float) == 0) {
    const auto k = blasint(w.cols);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, blasint(M), blasint(w.rows), k, 1.0f, x,
                blasint(ldx), static_cast<const float*>(w.data), k, beta, y, blasint(ldy));
    return;
  }
  const int64_t panel_rows = std::clamp<int64_t>(g_panel_elements / w.cols, 1, w.rows);
  scratch.widened.resize(size_t(panel_rows * w.cols));
  for (int64_t row0 = 0; row0 < w.rows; row0 += panel_rows) {
    const int64_t nrows = std::min(panel_rows, w.rows - row0);
    widen_rows_parallel(w, row0, nrows, scratch.widened.data());
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, blasint(M), blasint(nrows), blasint(w.cols), 1.0f, x,
                blasint(ldx), scratch.widened.data(), blasint(w.cols), beta, y + row0, blasint(ldy));
  }
}

void linear_reference(const float* x, int64_t M, int64_t ldx, const WeightMatrix& w, const float* bias,
                      float* y, int64_t ldy) {
  for (int64_t m = 0; m < M; ++m)
    for (int64_t o = 0; o < w.rows; ++o) {
      double acc = bias ? bias[o] : 0.0;
      for (int64_t i = 0; i < w.cols; ++i) acc += double(x[m * ldx + i]) * double(weight_at(w, o, i));
      y[m * ldy + o] = float(acc);
    }
}

}  // namespace krea2
