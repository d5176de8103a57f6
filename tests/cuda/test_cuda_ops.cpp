// The CUDA backend's operations (src/cuda/ops.h) against the CPU's references, with the CPU tests' error
// bounds (tests/test_ops.cpp, tests/test_attention.cpp, tests/test_gemm_bf16.cpp): every kernel on edge
// shapes, strided rows, modulation, GQA, masks and causal segments, overwrite and accumulate. On a machine
// without a CUDA device (this project's CPU machines) the kernel tests skip with the reason; the device
// queries and the error path run everywhere.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "cuda/device.h"
#include "cuda/ops.h"
#include "krea2/error.h"
#include "ops/activations.h"
#include "ops/attention.h"
#include "ops/norm.h"
#include "ops/rope.h"
#include "support/test_util.h"
#include "tensor/convert.h"

namespace krea2 {
namespace {

constexpr double kU = 1.0 / 16777216.0;  // 2^-24

using cuda::DeviceBuffer;
using cuda::to_device;

std::vector<float> synced(const DeviceBuffer<float>& d) {
  cuda::check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  return d.download();
}

TEST(CudaDevice, ReportsWhatItFinds) {
  const int n = cuda::device_count();
  const std::string s = cuda::status();
  ASSERT_FALSE(s.empty());
  if (n == 0) {
    EXPECT_NE(s.find("no CUDA device"), std::string::npos) << s;
    return;
  }
  const cuda::DeviceInfo d = cuda::device_info(0);
  EXPECT_FALSE(d.name.empty());
  EXPECT_GT(d.memory_bytes, size_t(0));
  EXPECT_GT(d.major, 0);
  EXPECT_NE(s.find(d.name), std::string::npos) << s;
}

// An allocation that cannot succeed (1 PiB, or any size without a device) throws an Error naming the size.
TEST(CudaDevice, FailedAllocationNamesTheSize) {
  try {
    DeviceBuffer<unsigned char> b(size_t(1) << 50);
    FAIL() << "a 1 PiB device allocation succeeded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cudaMalloc of 1125899906842624 bytes"), std::string::npos)
        << e.what();
  }
}

class CudaOps : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda::device_count() == 0)
      GTEST_SKIP() << "the CUDA kernels are not run on this machine: " << cuda::status();
  }
};

// Bound as tests/test_ops.cpp: (dim/2 + 8) u relative to |(1 + s) v| + |shift|.
TEST_F(CudaOps, RmsNormMatchesReference) {
  uint64_t seed = 1;
  for (int64_t dim : {1, 7, 64, 3072}) {
    for (int64_t rows : {3, 8}) {
      for (bool modulated : {false, true}) {
        SCOPED_TRACE("dim=" + std::to_string(dim) + " rows=" + std::to_string(rows) +
                     (modulated ? " mod" : ""));
        const int64_t ldx = dim + 3, ldo = dim + 5;
        const float eps = 1e-5f;
        const std::vector<float> x = test::random_floats(size_t(rows * ldx), seed++);
        const std::vector<float> w = test::random_floats(size_t(dim), seed++, 0.5f);
        const std::vector<float> sc = test::random_floats(size_t(dim), seed++, 0.5f);
        const std::vector<float> sh = test::random_floats(size_t(dim), seed++);
        std::vector<float> ref(size_t(rows * ldo), 0.0f);
        rms_norm_reference(x.data(), rows, dim, ldx, w.data(), eps, ref.data(), ldo,
                           modulated ? sc.data() : nullptr, modulated ? sh.data() : nullptr);
        const auto dx = to_device(x), dw = to_device(w), ds = to_device(sc), dh = to_device(sh);
        DeviceBuffer<float> dout(size_t(rows * ldo));
        cuda::rms_norm(dx.get(), rows, dim, ldx, dw.get(), eps, dout.get(), ldo,
                       modulated ? ds.get() : nullptr, modulated ? dh.get() : nullptr);
        const std::vector<float> got = synced(dout);
        for (int64_t r = 0; r < rows; ++r) {
          double ss = 0;
          for (int64_t i = 0; i < dim; ++i) ss += double(x[size_t(r * ldx + i)]) * x[size_t(r * ldx + i)];
          const double inv = 1.0 / std::sqrt(ss / double(dim) + double(eps));
          for (int64_t i = 0; i < dim; ++i) {
            const double v = double(x[size_t(r * ldx + i)]) * inv * (1.0 + w[size_t(i)]);
            const double size = modulated
                                    ? std::fabs((1.0 + sc[size_t(i)]) * v) + std::fabs(double(sh[size_t(i)]))
                                    : std::fabs(v);
            const double tol = (double(dim) / 2 + 8) * kU * size + 1e-38;
            ASSERT_LE(std::fabs(double(got[size_t(r * ldo + i)]) - ref[size_t(r * ldo + i)]), tol)
                << r << " " << i;
          }
        }
      }
    }
  }
}

// Against the CPU kernel (itself checked against the norm and rope references): each lies within the bound
// of tests/test_ops.cpp, (hd/2 + 16) u (|a| + |b|) per pair, so they differ by at most twice that.
TEST_F(CudaOps, HeadNormRopeMatchesTheCpu) {
  uint64_t seed = 10;
  for (bool with_rope : {false, true}) {
    const int64_t rows = 13, heads = 3, hd = 128, ldx = heads * hd + 4;
    std::vector<float> pos(size_t(rows * 3));
    for (int64_t r = 0; r < rows; ++r)
      for (int a = 0; a < 3; ++a) pos[size_t(r * 3 + a)] = float((r * (a + 1)) % 7);
    const RopeTable table = make_rope_table(pos.data(), rows, {32, 48, 48}, 10000.0);
    std::vector<float> x = test::random_floats(size_t(rows * ldx), seed++, 3.0f);
    const std::vector<float> w = test::random_floats(size_t(hd), seed++, 0.5f);
    const auto dx = to_device(x), dw = to_device(w), dc = to_device(table.cos), ds = to_device(table.sin);
    cuda::head_norm_rope(dx.get(), rows, ldx, heads, hd, dw.get(), 1e-6f, with_rope ? dc.get() : nullptr,
                         with_rope ? ds.get() : nullptr, table.half);
    const std::vector<float> got = synced(dx);
    std::vector<float> cpu = x;
    head_norm_rope(cpu.data(), rows, ldx, heads, hd, w.data(), 1e-6f, with_rope ? &table : nullptr);
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t h = 0; h < heads; ++h) {
        const float* xh = x.data() + r * ldx + h * hd;
        double ss = 0;
        for (int64_t i = 0; i < hd; ++i) ss += double(xh[i]) * xh[i];
        const double inv = 1.0 / std::sqrt(ss / double(hd) + 1e-6);
        for (int64_t p = 0; p < hd / 2; ++p) {
          const double a = xh[2 * p] * inv * (1 + w[size_t(2 * p)]),
                       b = xh[2 * p + 1] * inv * (1 + w[size_t(2 * p + 1)]);
          const double tol = 2 * (double(hd) / 2 + 16) * kU * (std::fabs(a) + std::fabs(b)) + 1e-38;
          for (int64_t e : {2 * p, 2 * p + 1}) {
            const size_t at = size_t(r * ldx + h * hd + e);
            ASSERT_LE(std::fabs(double(got[at]) - cpu[at]), tol)
                << "rope " << with_rope << " " << r << " " << h << " " << e;
          }
        }
      }
      for (int64_t c = heads * hd; c < ldx; ++c) ASSERT_EQ(got[size_t(r * ldx + c)], x[size_t(r * ldx + c)]);
    }
  }
}

// sigmoid / silu within 10 u relative (as on the CPU); x + g y within 2 u (|x| + |g y|).
TEST_F(CudaOps, PointwiseOpsMatchReferences) {
  const int64_t rows = 37, dim = 300, lda = dim + 3, ldb = dim + 7;
  const std::vector<float> a0 = test::random_floats(size_t(rows * lda), 20, 10.0f);
  const std::vector<float> b = test::random_floats(size_t(rows * ldb), 21, 10.0f);
  const std::vector<float> gate = test::random_floats(size_t(dim), 22, 1.5f);
  const auto db = to_device(b), dg = to_device(gate);
  for (int op = 0; op < 4; ++op) {
    SCOPED_TRACE("op " + std::to_string(op));
    auto da = to_device(a0);
    if (op == 0) cuda::sigmoid_gate(da.get(), lda, db.get(), ldb, rows, dim);
    if (op == 1) cuda::swiglu(da.get(), lda, db.get(), ldb, rows, dim);
    if (op == 2) cuda::gated_residual(da.get(), lda, db.get(), ldb, dg.get(), rows, dim);
    if (op == 3) cuda::gated_residual(da.get(), lda, db.get(), ldb, nullptr, rows, dim);
    const std::vector<float> got = synced(da);
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t i = 0; i < lda; ++i) {
        const size_t at = size_t(r * lda + i);
        if (i >= dim) {
          ASSERT_EQ(got[at], a0[at]) << "padding written";
          continue;
        }
        const double x = a0[at], y = b[size_t(r * ldb + i)], g = gate[size_t(i)];
        double want = 0, tol = 0;
        if (op == 0) want = x * sigmoid_reference(y), tol = 10 * kU * std::fabs(want);
        if (op == 1) want = silu_reference(x) * y, tol = 10 * kU * std::fabs(want);
        if (op == 2) want = x + g * y, tol = 2 * kU * (std::fabs(x) + std::fabs(g * y));
        if (op == 3) want = x + y, tol = kU * std::fabs(want);
        ASSERT_LE(std::fabs(double(got[at]) - want), tol + 1e-38) << r << " " << i;
      }
    }
  }
}

// The error model of tests/test_attention.cpp: |gpu - ref| <= 2 u max|v| (max|q| max|k| + sqrt(L) + 1).
void check_attention(const AttentionShape& shape, const std::vector<Segment>& segments, int64_t rows,
                     bool masked, uint64_t seed) {
  const int64_t hd = shape.head_dim, qw = shape.num_heads * hd, kw = shape.num_kv_heads * hd, ld = qw + 5;
  const std::vector<float> q = test::random_floats(size_t(rows * ld), seed, 1.5f);
  const std::vector<float> k = test::random_floats(size_t(rows * ld), seed + 1, 1.5f);
  const std::vector<float> v = test::random_floats(size_t(rows * ld), seed + 2);
  std::vector<uint8_t> valid(size_t(rows), 1);
  if (masked)
    for (int64_t r = 0; r < rows; ++r) valid[size_t(r)] = (r * 7 + 3) % 5 != 0;
  const float sentinel = 12345.0f;
  std::vector<float> ref(size_t(rows * ld), sentinel);
  attention_reference(q.data(), ld, k.data(), ld, v.data(), ld, ref.data(), ld, shape, segments,
                      masked ? valid.data() : nullptr);
  const auto dq = to_device(q), dk = to_device(k), dv = to_device(v), dref = to_device(ref);
  const auto dvalid = to_device(valid);
  DeviceBuffer<float> dout = to_device(std::vector<float>(size_t(rows * ld), sentinel));
  cuda::attention(dq.get(), ld, dk.get(), ld, dv.get(), ld, dout.get(), ld, shape, segments,
                  masked ? dvalid.get() : nullptr);
  const std::vector<float> got = synced(dout);
  double max_q = 0, max_k = 0, max_v = 0;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t h = 0; h < shape.num_heads; ++h) {
      double n = 0;
      for (int64_t d = 0; d < hd; ++d)
        n += double(q[size_t(r * ld + h * hd + d)]) * q[size_t(r * ld + h * hd + d)];
      max_q = std::max(max_q, std::sqrt(n));
    }
    for (int64_t h = 0; h < shape.num_kv_heads; ++h) {
      double n = 0;
      for (int64_t d = 0; d < hd; ++d)
        n += double(k[size_t(r * ld + h * hd + d)]) * k[size_t(r * ld + h * hd + d)];
      max_k = std::max(max_k, std::sqrt(n));
    }
    for (int64_t c = 0; c < kw; ++c) max_v = std::max(max_v, double(std::fabs(v[size_t(r * ld + c)])));
  }
  int64_t max_len = 0;
  for (const Segment& s : segments) max_len = std::max(max_len, s.length);
  const double tol = 2.0 * kU * max_v * (max_q * max_k + std::sqrt(double(max_len)) + 1.0);
  for (size_t e = 0; e < got.size(); ++e) {
    if (ref[e] == sentinel) {
      ASSERT_EQ(got[e], sentinel) << "written outside the segments at " << e;
      continue;
    }
    ASSERT_LE(std::fabs(double(got[e]) - ref[e]), tol) << "element " << e;
  }
}

TEST_F(CudaOps, AttentionMatchesReference) {
  uint64_t seed = 30;
  for (int hd : {32, 64, 128}) {
    SCOPED_TRACE("head_dim " + std::to_string(hd));
    check_attention({4, 4, hd}, {{0, 37, false}}, 37, false, seed++);
    check_attention({4, 2, hd}, {{0, 37, false}, {37, 70, false}}, 110, true,
                    seed++);                                                          // GQA, mask, a gap row
    check_attention({8, 2, hd}, {{3, 64, true}, {70, 33, true}}, 103, true, seed++);  // causal segments
  }
  // A segment with no valid key gets zeros, never NaN (all keys masked: rows 0..9 of a mask of zeros).
  const AttentionShape shape{2, 1, 64};
  const int64_t rows = 10, ld = 2 * 64;
  const auto q = to_device(test::random_floats(size_t(rows * ld), 40));
  const auto kv = to_device(test::random_floats(size_t(rows * ld), 41));
  const auto none = to_device(std::vector<uint8_t>(size_t(rows), 0));
  DeviceBuffer<float> out = to_device(std::vector<float>(size_t(rows * ld), 7.0f));
  cuda::attention(q.get(), ld, kv.get(), ld, kv.get(), ld, out.get(), ld, shape, {{0, rows, false}},
                  none.get());
  for (float f : synced(out)) ASSERT_EQ(f, 0.0f);
}

// Checked before anything runs on a device, so this runs everywhere.
TEST(CudaAttention, RejectsUnsupportedShapes) {
  EXPECT_THROW(cuda::attention(nullptr, 0, nullptr, 0, nullptr, 0, nullptr, 0, {2, 1, 256}, {}), Error);
  EXPECT_THROW(cuda::attention(nullptr, 0, nullptr, 0, nullptr, 0, nullptr, 0, {3, 2, 64}, {}), Error);
}

// float32: the recursive-summation bound gamma_{K+2} (sum |x w| + |y0|) (tests/test_gemm_isa.cpp); bf16: the
// same on the operands rounded to bf16 (tests/test_gemm_bf16.cpp).
TEST_F(CudaOps, GemmMatchesReference) {
  for (bool bf16 : {false, true}) {
    for (auto [M, N, K] : {std::tuple<int64_t, int64_t, int64_t>{1, 1, 1}, {37, 70, 300}, {128, 256, 1024}}) {
      for (bool acc : {false, true}) {
        SCOPED_TRACE(std::string(bf16 ? "bf16" : "f32") + " M=" + std::to_string(M) +
                     " N=" + std::to_string(N) + " K=" + std::to_string(K) + (acc ? " accumulate" : ""));
        std::vector<float> x = test::random_floats(size_t(M * K), uint64_t(M + N + K));
        std::vector<float> w = test::random_floats(size_t(N * K), uint64_t(M * N + K), 0.5f);
        const int64_t ldy = N + 3;
        const std::vector<float> y0 = test::random_floats(size_t(M * ldy), 7);
        DeviceBuffer<float> dy = to_device(y0);
        if (bf16) {
          std::vector<uint16_t> xb(x.size()), wb(w.size());
          for (size_t i = 0; i < x.size(); ++i) x[i] = bf16_to_f32(xb[i] = f32_to_bf16(x[i]));
          for (size_t i = 0; i < w.size(); ++i) w[i] = bf16_to_f32(wb[i] = f32_to_bf16(w[i]));
          const auto dx = to_device(xb), dw = to_device(wb);
          cuda::gemm_xwt(reinterpret_cast<const __nv_bfloat16*>(dx.get()), M, K,
                         reinterpret_cast<const __nv_bfloat16*>(dw.get()), N, dy.get(), ldy, acc);
        } else {
          const auto dx = to_device(x), dw = to_device(w);
          cuda::gemm_xwt(dx.get(), M, K, dw.get(), N, dy.get(), ldy, acc);
        }
        const std::vector<float> got = synced(dy);
        const double gamma = double(K + 2) * kU / (1.0 - double(K + 2) * kU);
        for (int64_t m = 0; m < M; ++m) {
          for (int64_t n = 0; n < ldy; ++n) {
            const size_t at = size_t(m * ldy + n);
            if (n >= N) {
              ASSERT_EQ(got[at], y0[at]) << "padding written";
              continue;
            }
            double want = acc ? double(y0[at]) : 0.0, terms = acc ? std::fabs(double(y0[at])) : 0.0;
            for (int64_t k = 0; k < K; ++k) {
              const double t = double(x[size_t(m * K + k)]) * w[size_t(n * K + k)];
              want += t;
              terms += std::fabs(t);
            }
            ASSERT_LE(std::fabs(double(got[at]) - want), gamma * terms + kU * std::fabs(want) + 1e-30)
                << m << " " << n;
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace krea2
