// gemm_xwt (packed 6x16 microkernel GEMM) against linear_reference (double accumulation) for F32 / BF16 / F16
// weights over shapes that hit every edge: M % 6, N % 16, K % 8 (vector packing tail), K % KC, K = 0, row
// strides wider than the rows, accumulate, weights at the weakest alignment an mmap gives (F32 4-byte, 16-bit
// 2-byte), small block sizes (many jc / pc / ic blocks), both thread splits and concurrent callers.
//
// Tolerance. u = 2^-24. gemm_xwt forms each output as a tree of float32 operations: per KC block a chain of
// FMAs from zero (one rounding per term), then the block sums added into y one after another, after an
// optional y0 (accumulate). Every product x_k w_k therefore passes through at most kc + ceil(K / kc) + 1 <=
// K + 2 roundings, so by the standard summation-tree bound (Higham, Accuracy and Stability, 4.2) the error
// is at most gamma_{K+2} (sum_k |x_k w_k| + |y0|), gamma_n = n u / (1 - n u): c = 1 in c K u sum|x w|, no
// fudge needed. The reference is exact up to its own final float rounding (u |ref|), which is added. A real
// bug (a dropped or doubled term, a wrong stride, a stale panel) moves an output by a whole term, far
// above this. The typical (random-sign) error is ~sqrt(K) u rms(term), so rel L2 is also checked against
// 4 sqrt(K + 2) u (~1e-6 for K in the hundreds).
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "ops/gemm.h"
#include "ops/linear.h"
#include "support/test_util.h"
#include "tensor/convert.h"

namespace krea2 {
namespace {

constexpr double kU = 1.0 / 16777216.0;  // 2^-24
constexpr float kSentinel = 12345.0f;    // y padding that gemm_xwt must not touch

double gamma_n(double n) {
  return n * kU / (1.0 - n * kU);
}

// A weight matrix whose data sits at `misalign` bytes past a 64-byte boundary (mmap'd tensors are only
// element-aligned), values as stored in `dtype`.
struct TestWeight {
  std::vector<unsigned char> bytes;
  WeightMatrix w;

  TestWeight(DType dtype, int64_t N, int64_t K, uint64_t seed, size_t misalign) {
    const std::vector<float> v = test::random_floats(size_t(N * K), seed);
    const size_t es = dtype == DType::F32 ? 4 : 2;
    bytes.assign(v.size() * es + 128, 0);
    auto base = reinterpret_cast<uintptr_t>(bytes.data());
    unsigned char* p = bytes.data() + ((64 - base % 64) % 64) + misalign;
    for (size_t i = 0; i < v.size(); ++i) {
      if (dtype == DType::F32) {
        std::memcpy(p + 4 * i, &v[i], 4);
      } else {
        const uint16_t h = dtype == DType::BF16 ? f32_to_bf16(v[i]) : f32_to_f16(v[i]);
        std::memcpy(p + 2 * i, &h, 2);
      }
    }
    w = WeightMatrix{dtype, N, K, p};
  }
};

struct Case {
  int64_t M, N, K;
  DType dtype;
  bool accumulate;
  int64_t x_pad = 0;  // ldx = K + x_pad
  int64_t y_pad = 0;  // ldy = N + y_pad
};

std::string describe(const Case& c) {
  return "M=" + std::to_string(c.M) + " N=" + std::to_string(c.N) + " K=" + std::to_string(c.K) + " " +
         std::string(dtype_name(c.dtype)) + (c.accumulate ? " accumulate" : "") +
         " x_pad=" + std::to_string(c.x_pad) + " y_pad=" + std::to_string(c.y_pad);
}

// Runs one case; returns false (with gtest failures recorded) on a mismatch.
bool check_case(const Case& c, uint64_t seed) {
  SCOPED_TRACE(describe(c));
  const int64_t ldx = c.K + c.x_pad, ldy = c.N + c.y_pad;
  const std::vector<float> x = test::random_floats(size_t(std::max<int64_t>(c.M * ldx, 1)), seed);
  const TestWeight tw(c.dtype, c.N, c.K, seed + 1, c.dtype == DType::F32 ? 4 : 2);
  const WeightMatrix& w = tw.w;

  // y0: random in the product's columns, a sentinel in the padding.
  std::vector<float> y(size_t(c.M * ldy), kSentinel);
  const std::vector<float> y0_vals = test::random_floats(size_t(c.M * c.N), seed + 2, 4.0f);
  for (int64_t m = 0; m < c.M; ++m) {
    for (int64_t n = 0; n < c.N; ++n) y[m * ldy + n] = y0_vals[m * c.N + n];
  }
  const std::vector<float> y0 = y;

  std::vector<float> ref(size_t(c.M * c.N), 0.0f);
  if (c.K > 0) linear_reference(x.data(), c.M, ldx, w, nullptr, ref.data(), c.N);
  gemm_xwt(x.data(), c.M, ldx, w, y.data(), ldy, c.accumulate);

  std::vector<float> wf(size_t(c.N * c.K));
  widen_to_f32(w.dtype, w.data, wf.data(), wf.size());
  std::vector<float> got(size_t(c.M * c.N)), want(size_t(c.M * c.N));
  int64_t bad = 0;
  for (int64_t m = 0; m < c.M; ++m) {
    for (int64_t n = 0; n < ldy; ++n) {
      const float g = y[m * ldy + n];
      if (n >= c.N) {  // padding untouched
        if (g != kSentinel && bad++ < 5) ADD_FAILURE() << "padding written at m=" << m << " n=" << n;
        continue;
      }
      double abs_sum = 0.0;
      for (int64_t k = 0; k < c.K; ++k) abs_sum += std::fabs(double(x[m * ldx + k]) * wf[n * c.K + k]);
      const double base = c.accumulate ? double(y0[m * ldy + n]) : 0.0;
      const double expect = base + double(ref[m * c.N + n]);
      const double bound = gamma_n(double(c.K + 2)) * (abs_sum + std::fabs(base)) + kU * std::fabs(expect);
      if (!(std::fabs(double(g) - expect) <= bound) && bad++ < 5) {
        ADD_FAILURE() << "m=" << m << " n=" << n << " got " << g << " want " << expect << " bound " << bound;
      }
      got[m * c.N + n] = g;
      want[m * c.N + n] = float(expect);
    }
  }
  // The typical-error check is a statistic: only meaningful over many outputs (one output can cancel).
  if (c.M * c.N >= 64 && c.K > 0) {
    const double rel = test::rel_l2(got.data(), want.data(), got.size());
    EXPECT_LE(rel, 4.0 * std::sqrt(double(c.K + 2)) * kU);
  }
  return bad == 0;
}

void run_grid(DType dtype) {
  const int64_t Ms[] = {1, 5, 6, 7, 13, 100, 300};
  const int64_t Ns[] = {1, 15, 16, 17, 33, 100, 257};
  const int64_t Ks[] = {0, 1, 7, 256, 257, 700};
  uint64_t seed = 1;
  for (int64_t M : Ms) {
    for (int64_t N : Ns) {
      for (int64_t K : Ks) {
        for (bool acc : {false, true}) {
          // Alternate tight and padded strides across cases.
          const int64_t pad = int64_t(seed % 3 == 0 ? 0 : seed % 3 == 1 ? 3 : 17);
          if (!check_case({M, N, K, dtype, acc, pad, (pad * 7) % 5}, seed++))
            return;  // one failing case is enough
        }
      }
    }
  }
}

TEST(Gemm, F32Grid) {
  run_grid(DType::F32);
}
TEST(Gemm, BF16Grid) {
  run_grid(DType::BF16);
}
TEST(Gemm, F16Grid) {
  run_grid(DType::F16);
}

// Tiny blocks: many NC / KC / MC blocks per call, each with edges, and the k tail of every block.
TEST(Gemm, SmallBlocking) {
  const GemmBlocking saved = gemm_blocking();
  set_gemm_blocking({12, 20, 32, saved.pack_limit});
  for (DType dt : {DType::F32, DType::BF16, DType::F16}) {
    check_case({37, 75, 131, dt, false, 1, 3}, 100);
    check_case({37, 75, 131, dt, true, 0, 0}, 101);
    check_case({6, 16, 41, dt, false, 0, 0}, 102);
  }
  set_gemm_blocking({6, 1, 16, saved.pack_limit});  // one k per block: the deepest summation tree
  check_case({13, 33, 29, DType::F32, true, 2, 2}, 103);
  set_gemm_blocking(saved);
  EXPECT_EQ(gemm_blocking().kc, saved.kc);
}

TEST(Gemm, RejectsBadBlocking) {
  EXPECT_THROW(set_gemm_blocking({0, 256, 1024, 1 << 20}), std::invalid_argument);
  EXPECT_THROW(set_gemm_blocking({6, 256, 1024, 0}), std::invalid_argument);
}

// Work sharing: one or two column chunks (N = 16, 64, 100: the rows are split across the team too, in
// uneven parts), many chunks narrowing to a ragged last one (N = 1000, 333), all large enough products to run
// on the whole team.
TEST(Gemm, ColumnChunks) {
  for (DType dt : {DType::F32, DType::BF16}) {
    check_case({600, 16, 300, dt, false, 0, 0}, 200);
    check_case({1001, 64, 640, dt, true, 1, 0}, 203);
    check_case({23, 100, 3000, dt, false, 0, 2}, 204);
    check_case({24, 1000, 300, dt, true, 5, 1}, 201);
    check_case({250, 333, 600, dt, false, 0, 0}, 202);
  }
}

// A small pack limit splits x into row phases: uneven ones, one-panel ones, and a limit below one row.
TEST(Gemm, RowPhases) {
  const GemmBlocking saved = gemm_blocking();
  for (int64_t limit : {int64_t(1), int64_t(6 * 300), int64_t(50 * 300), int64_t(137 * 300)}) {
    SCOPED_TRACE("pack_limit=" + std::to_string(limit));
    set_gemm_blocking({saved.mc, saved.kc, saved.nc, limit});
    for (DType dt : {DType::F32, DType::BF16}) {
      check_case({250, 333, 300, dt, false, 0, 0}, 400 + uint64_t(limit));
      check_case({31, 70, 300, dt, true, 3, 2}, 500 + uint64_t(limit));
    }
  }
  set_gemm_blocking(saved);
}

// Several products sharing x: different widths (narrow, wide, ragged) and dtypes, accumulate on and off,
// row phases; each y must equal its own product (same bounds as check_case, via linear_reference).
TEST(Gemm, ManyProductsShareX) {
  const GemmBlocking saved = gemm_blocking();
  for (int64_t limit : {saved.pack_limit, int64_t(40 * 200)}) {
    set_gemm_blocking({saved.mc, saved.kc, saved.nc, limit});
    for (bool acc : {false, true}) {
      SCOPED_TRACE(std::string(acc ? "accumulate" : "overwrite") + " pack_limit=" + std::to_string(limit));
      const int64_t M = 131, K = 200;
      const std::vector<float> x = test::random_floats(size_t(M * K), 900);
      const std::vector<std::pair<int64_t, DType>> shapes = {
          {300, DType::BF16}, {16, DType::F32}, {77, DType::F16}, {1000, DType::F32}, {1, DType::BF16}};
      std::vector<TestWeight> ws;
      std::vector<std::vector<float>> ys, y0s;
      std::vector<GemmProduct> products;
      for (size_t j = 0; j < shapes.size(); ++j) {
        ws.emplace_back(shapes[j].second, shapes[j].first, K, 910 + j, j % 3);
        const int64_t ldy = shapes[j].first + int64_t(j);
        ys.push_back(test::random_floats(size_t(M * ldy), 920 + j));
      }
      y0s = ys;
      for (size_t j = 0; j < shapes.size(); ++j)
        products.push_back({ws[j].w, ys[j].data(), shapes[j].first + int64_t(j)});
      gemm_xwt_many(x.data(), M, K, products, acc);
      for (size_t j = 0; j < shapes.size(); ++j) {
        const int64_t N = shapes[j].first, ldy = N + int64_t(j);
        std::vector<float> ref(size_t(M * N));
        linear_reference(x.data(), M, K, ws[j].w, nullptr, ref.data(), N);
        int bad = 0;
        for (int64_t m = 0; m < M; ++m)
          for (int64_t n = 0; n < ldy; ++n) {
            const float got = ys[j][size_t(m * ldy + n)], before = y0s[j][size_t(m * ldy + n)];
            if (n >= N) {
              if (got != before && bad++ < 3) ADD_FAILURE() << "product " << j << " padding written";
              continue;
            }
            double abs_sum = 0.0;
            for (int64_t k = 0; k < K; ++k)
              abs_sum += std::fabs(double(x[size_t(m * K + k)]) * weight_at(ws[j].w, n, k));
            const double base = acc ? double(before) : 0.0;
            const double want = base + double(ref[size_t(m * N + n)]);
            const double bound = gamma_n(double(K + 2)) * (abs_sum + std::fabs(base)) + kU * std::fabs(want);
            if (!(std::fabs(double(got) - want) <= bound) && bad++ < 3)
              ADD_FAILURE() << "product " << j << " m=" << m << " n=" << n << " got " << got << " want "
                            << want;
          }
        EXPECT_EQ(bad, 0) << "product " << j;
      }
    }
  }
  set_gemm_blocking(saved);
}

TEST(Gemm, ManyProductsNeedOneDepth) {
  const std::vector<float> w1(8, 1.0f), w2(9, 1.0f);
  std::vector<float> x(8, 1.0f), y1(2), y2(3);
  const std::vector<GemmProduct> products = {{WeightMatrix{DType::F32, 2, 4, w1.data()}, y1.data(), 2},
                                             {WeightMatrix{DType::F32, 3, 3, w2.data()}, y2.data(), 3}};
  EXPECT_THROW(gemm_xwt_many(x.data(), 2, 4, products, false), std::invalid_argument);
}

// Concurrent callers (each inside a parallel region runs single-threaded on its own thread_local buffers).
TEST(Gemm, ConcurrentCallers) {
  int failures = 0;
#pragma omp parallel num_threads(4) reduction(+ : failures)
  {
    const int t = omp_get_thread_num();
    const Case c{20 + 7 * t, 40 + 9 * t, 300 + 11 * t, t % 2 ? DType::BF16 : DType::F32, t % 2 == 0, t, 1};
    if (!check_case(c, 300 + uint64_t(t))) ++failures;
  }
  EXPECT_EQ(failures, 0);
}

TEST(Gemm, RejectsUnsupportedDtype) {
  const std::vector<int32_t> data(4, 1);
  const WeightMatrix w{DType::I32, 2, 2, data.data()};
  std::vector<float> x(4, 1.0f), y(4, 0.0f);
  EXPECT_THROW(gemm_xwt(x.data(), 2, 2, w, y.data(), 2, false), std::invalid_argument);
}

}  // namespace
}  // namespace krea2
