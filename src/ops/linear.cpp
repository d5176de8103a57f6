#include "ops/linear.h"

#include <cblas.h>
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "ops/gemm.h"
#include "ops/weight_decode.h"
#include "ops/weight_delta.h"
#include "ops/weight_elements.h"
#include "tensor/convert.h"

namespace krea2 {

namespace {

int64_t g_panel_elements = int64_t(32) << 20;
LinearBackend g_backend = LinearBackend::kPackedGemm;

// Below this many rows a product is bandwidth-bound on the weight: read it directly, never widen the whole
// matrix.
constexpr int64_t kDirectMaxRows = 4;


// y rows [0, kM) for weight rows [o_begin, o_end): reads each weight row once, straight from memory, with
// two 8-wide accumulators per x row (one would wait on the FMA latency), and prefetches the rows a few
// ahead: the product is bound by reading the weight.
template <DType kType, int kM>
void direct_rows(const float* x, int64_t ldx, const WeightMatrix& w, const float* bias, float* y, int64_t ldy,
                 bool accumulate, int64_t o_begin, int64_t o_end) {
  constexpr int64_t es = kWeightElementBytes<kType>;
  constexpr int64_t kAhead = 4;  // rows
  const int64_t K = w.cols;
  const auto* base = static_cast<const std::byte*>(w.data);
  for (int64_t o = o_begin; o < o_end; ++o) {
    const std::byte* row = base + o * K * es;
    const std::byte* ahead = base + std::min(o + kAhead, o_end - 1) * K * es;
    __m256 acc0[kM], acc1[kM];
    for (int m = 0; m < kM; ++m) acc0[m] = acc1[m] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= K; i += 16) {
      _mm_prefetch(reinterpret_cast<const char*>(ahead + i * es), _MM_HINT_T0);
      if constexpr (es == 4) _mm_prefetch(reinterpret_cast<const char*>(ahead + i * es + 32), _MM_HINT_T0);
      const __m256 w0 = load8_weights<kType>(row + i * es), w1 = load8_weights<kType>(row + (i + 8) * es);
      for (int m = 0; m < kM; ++m) {
        acc0[m] = _mm256_fmadd_ps(_mm256_loadu_ps(x + m * ldx + i), w0, acc0[m]);
        acc1[m] = _mm256_fmadd_ps(_mm256_loadu_ps(x + m * ldx + i + 8), w1, acc1[m]);
      }
    }
    for (int m = 0; m < kM; ++m) {
      alignas(32) float lanes[8];
      _mm256_store_ps(lanes, _mm256_add_ps(acc0[m], acc1[m]));
      float acc =
          ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
      for (int64_t j = i; j < K; ++j) acc += x[m * ldx + j] * weight_at(w, o, j);
      if (bias) acc += bias[o];
      float& out = y[m * ldy + o];
      out = accumulate ? out + acc : acc;
    }
  }
}

// The same for any other stored weight: each row is dequantized once into a per-thread buffer (K floats, in
// L1/L2) and multiplied from there.
template <int kM>
void direct_rows_decoded(const float* x, int64_t ldx, const WeightMatrix& w, const float* bias, float* y,
                         int64_t ldy, bool accumulate, int64_t o_begin, int64_t o_end) {
  thread_local std::vector<float> row;
  row.resize(size_t(w.cols));
  const WeightMatrix decoded{DType::F32, 1, w.cols, row.data()};
  for (int64_t o = o_begin; o < o_end; ++o) {
    decode_weight_segment(w, o, 0, w.cols, row.data());
    float acc[kM];
    for (int m = 0; m < kM; ++m) acc[m] = accumulate ? y[m * ldy + o] : 0.0f;
    direct_rows<DType::F32, kM>(x, ldx, decoded, nullptr, acc, 1, accumulate, 0, 1);
    for (int m = 0; m < kM; ++m) y[m * ldy + o] = acc[m] + (bias ? bias[o] : 0.0f);
  }
}

template <DType kType>
void direct_rows_m(int64_t M, const float* x, int64_t ldx, const WeightMatrix& w, const float* bias, float* y,
                   int64_t ldy, bool accumulate, int64_t o_begin, int64_t o_end) {
  switch (M) {
    case 1:
      return direct_rows<kType, 1>(x, ldx, w, bias, y, ldy, accumulate, o_begin, o_end);
    case 2:
      return direct_rows<kType, 2>(x, ldx, w, bias, y, ldy, accumulate, o_begin, o_end);
    case 3:
      return direct_rows<kType, 3>(x, ldx, w, bias, y, ldy, accumulate, o_begin, o_end);
    default:
      return direct_rows<kType, 4>(x, ldx, w, bias, y, ldy, accumulate, o_begin, o_end);
  }
}

// Few rows (M <= kDirectMaxRows): each thread takes a contiguous range of weight rows.
void linear_direct(const float* x, int64_t M, int64_t ldx, const WeightMatrix& w, const float* bias, float* y,
                   int64_t ldy, bool accumulate) {
  const bool parallel = w.rows * w.cols >= (int64_t(1) << 16);
  if (!w.is_plain_float()) {
#pragma omp parallel if (parallel)
    {
      const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
      const int64_t o_begin = w.rows * t / nt, o_end = w.rows * (t + 1) / nt;
      switch (M) {
        case 1:
          direct_rows_decoded<1>(x, ldx, w, bias, y, ldy, accumulate, o_begin, o_end);
          break;
        case 2:
          direct_rows_decoded<2>(x, ldx, w, bias, y, ldy, accumulate, o_begin, o_end);
          break;
        case 3:
          direct_rows_decoded<3>(x, ldx, w, bias, y, ldy, accumulate, o_begin, o_end);
          break;
        default:
          direct_rows_decoded<4>(x, ldx, w, bias, y, ldy, accumulate, o_begin, o_end);
          break;
      }
    }
    return;
  }
  with_weight_dtype(w.dtype, "linear", [&](auto type) {
#pragma omp parallel if (parallel)
    {
      const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
      const int64_t o_begin = w.rows * t / nt, o_end = w.rows * (t + 1) / nt;
      direct_rows_m<decltype(type)::value>(M, x, ldx, w, bias, y, ldy, accumulate, o_begin, o_end);
    }
  });
}

void widen_rows_parallel(const WeightMatrix& w, int64_t row0, int64_t nrows, float* dst) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < nrows; ++r) decode_weight_segment(w, row0 + r, 0, w.cols, dst + r * w.cols);
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
  decode_weight_segment(w, o, i, 1, &v);
  return v;
}

void linear(const float* x, int64_t M, int64_t ldx, const WeightMatrix& w, const float* bias, float* y,
            int64_t ldy, LinearScratch& scratch, bool accumulate) {
  if (M <= 0 || w.rows <= 0) return;
  if (w.delta) {
    linear_with_delta(x, M, ldx, w, bias, y, ldy, scratch, accumulate);
    return;
  }
  if (w.cols == 0) {
    for (int64_t m = 0; m < M; ++m)
      for (int64_t o = 0; o < w.rows; ++o) {
        float b = bias ? bias[o] : 0.0f;
        y[m * ldy + o] = accumulate ? y[m * ldy + o] + b : b;
      }
    return;
  }
  check_weight_matrix(w, "linear");
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
  if (w.dtype == DType::F32 && w.is_plain_float() && reinterpret_cast<uintptr_t>(w.data) % alignof(float) == 0) {
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

void linear_many(const float* x, int64_t M, int64_t ldx, std::initializer_list<LinearProduct> products,
                 LinearScratch& scratch) {
  linear_many(x, M, ldx, std::span<const LinearProduct>(products.begin(), products.size()), scratch);
}

void linear_many(const float* x, int64_t M, int64_t ldx, std::span<const LinearProduct> products,
                 LinearScratch& scratch) {
  for (const LinearProduct& p : products)
    if (p.w->delta) {
      linear_many_with_delta(x, M, ldx, products, scratch);
      return;
    }
  if (g_backend != LinearBackend::kPackedGemm || M <= kDirectMaxRows) {
    for (const LinearProduct& p : products) linear(x, M, ldx, *p.w, nullptr, p.y, p.ldy, scratch);
    return;
  }
  std::vector<GemmProduct> gemm;
  for (const LinearProduct& p : products) gemm.push_back({*p.w, p.y, p.ldy});
  gemm_xwt_many(x, M, ldx, gemm, false);
}

void linear_reference(const float* x, int64_t M, int64_t ldx, const WeightMatrix& w, const float* bias,
                      float* y, int64_t ldy) {
  std::vector<float> row(size_t(w.cols));
  for (int64_t o = 0; o < w.rows; ++o) {
    decode_weight_row_reference(w, o, row.data());
    for (int64_t m = 0; m < M; ++m) {
      double acc = bias ? bias[o] : 0.0;
      for (int64_t i = 0; i < w.cols; ++i) acc += double(x[m * ldx + i]) * double(row[size_t(i)]);
      y[m * ldy + o] = float(acc);
    }
  }
}

}  // namespace krea2
