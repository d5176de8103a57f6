// The int8 compute mode's GEMM (ops/gemm_kernels.h: avx512-vnni 12x32, avx2-vnni 6x16, avx2 4x16) and the
// dynamic activation quantizer it runs on.
//
// quantize_activations_i8 must be bit-identical to its scalar reference (codes and scales) with and without
// the convrot rotation. Every int8 variant the CPU supports is checked through gemm_xwt (each reached with
// the ISA cap and the int8 compute scope) and, directly through its table, packers + microkernel alone (the
// AVX2 kernel is not reachable through the cap on a CPU with AVX-VNNI).
//
// Reference and bound. The reference quantizes x with the reference quantizer and forms, per depth block b
// of the variant's KC, the exact integer sum S_b (int64). The GEMM computes t_b = fl(fl(fl(S_b) a_s) w_s) (3
// roundings: the int32 -> float conversion and two multiplies) and adds the t_b into y one after another,
// after y0 when accumulating. So |y - (y0 + sum_b S_b a_s w_s)| <= gamma_{nb+3} (|y0| + sum_b |S_b a_s w_s|)
// (nb blocks): only the float scaling and the accumulation across blocks may round, the integer part must be
// exact. A lost, doubled, saturated or wrapped integer term moves an output by far more. With one block,
// scales of 1 and |S| < 2^24 the output must equal S exactly, and the variants must agree bit for bit with
// each other (their epilogues round identically).
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <new>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "cpu/cpu_features.h"
#include "krea2/error.h"
#include "model/weight_encode.h"
#include "ops/gemm.h"
#include "ops/gemm_kernels.h"
#include "ops/int8_activations.h"
#include "ops/linear.h"
#include "support/scoped_isa.h"
#include "support/test_util.h"

namespace krea2 {
namespace {

constexpr double kU = 1.0 / 16777216.0;  // 2^-24
constexpr float kSentinel = 12345.0f;    // y padding the GEMM must not touch

double gamma_n(double n) {
  return n * kU / (1.0 - n * kU);
}

using test::ScopedIsa;

// Sets the int8 variant's blocking at `isa` for a scope and restores it.
class ScopedBlocking {
 public:
  ScopedBlocking(Isa isa, GemmBlocking b) : isa_(isa), saved_(gemm_blocking(isa, Compute::kInt8)) {
    set_gemm_blocking(b, isa, Compute::kInt8);
  }
  ~ScopedBlocking() { set_gemm_blocking(saved_, isa_, Compute::kInt8); }
  ScopedBlocking(const ScopedBlocking&) = delete;
  ScopedBlocking& operator=(const ScopedBlocking&) = delete;

 private:
  Isa isa_;
  GemmBlocking saved_;
};

class ScopedThreads {
 public:
  explicit ScopedThreads(int n) : saved_(omp_get_max_threads()) { omp_set_num_threads(n); }
  ~ScopedThreads() { omp_set_num_threads(saved_); }
  ScopedThreads(const ScopedThreads&) = delete;
  ScopedThreads& operator=(const ScopedThreads&) = delete;

 private:
  int saved_;
};

std::vector<int8_t> random_codes(size_t n, uint64_t seed, int max_code = 127) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> u(-max_code, max_code);
  std::vector<int8_t> v(n);
  for (auto& c : v) c = int8_t(u(rng));
  return v;
}

// ---------------------------------------------------------------------------------------------------------
// The activation quantizer.

// Both quantizers on x; true when codes and scales are bit-identical.
bool quantizers_agree(const std::vector<float>& x, int64_t M, int64_t ldx, int64_t K, int64_t group) {
  SCOPED_TRACE("M=" + std::to_string(M) + " K=" + std::to_string(K) + " G=" + std::to_string(group));
  std::vector<int8_t> q(size_t(M * K), 99), q_ref(size_t(M * K), 77);
  std::vector<float> s(size_t(M), -1.0f), s_ref(size_t(M), -2.0f);
  quantize_activations_i8(x.data(), M, ldx, K, group, q.data(), s.data());
  quantize_activations_i8_reference(x.data(), M, ldx, K, group, q_ref.data(), s_ref.data());
  int64_t bad = 0;
  for (int64_t m = 0; m < M; ++m) {
    if (std::memcmp(&s[size_t(m)], &s_ref[size_t(m)], sizeof(float)) != 0 && bad++ < 5)
      ADD_FAILURE() << "scale of row " << m << ": " << s[size_t(m)] << " vs " << s_ref[size_t(m)];
    for (int64_t k = 0; k < K; ++k)
      if (q[size_t(m * K + k)] != q_ref[size_t(m * K + k)] && bad++ < 5)
        ADD_FAILURE() << "code " << m << "," << k << ": " << int(q[size_t(m * K + k)]) << " vs "
                      << int(q_ref[size_t(m * K + k)]);
  }
  return bad == 0;
}

TEST(QuantizeActivationsI8, MatchesReferenceOnRandomRows) {
  uint64_t seed = 1;
  for (int64_t group : {0, 1, 4, 16, 64, 1024}) {
    for (int64_t K : {1, 4, 7, 8, 12, 16, 64, 100, 192, 1024, 1030, 6144}) {
      if (group > 0 && K % group != 0) continue;
      for (int64_t M : {1, 3, 37}) {
        const int64_t ldx = K + 5;
        std::vector<float> x = test::random_floats(size_t(M * ldx), seed++, 3.0f);
        // A zero row, a row with one huge value, a row of tiny values.
        if (M > 2) {
          std::fill(x.begin(), x.begin() + K, 0.0f);
          x[size_t(ldx + K / 2)] = 1e30f;
          for (int64_t k = 0; k < K; ++k) x[size_t(2 * ldx + k)] *= 1e-30f;
        }
        ASSERT_TRUE(quantizers_agree(x, M, ldx, K, group));
      }
    }
  }
}

// Large enough for the parallel path (M K >= 2^16), and called from inside a parallel region.
TEST(QuantizeActivationsI8, MatchesReferenceInParallel) {
  const int64_t M = 150, K = 4096;
  const std::vector<float> x = test::random_floats(size_t(M * K), 7, 10.0f);
  for (int64_t group : {0, 16, 64, 256}) ASSERT_TRUE(quantizers_agree(x, M, K, K, group));
  bool ok = true;
#pragma omp parallel num_threads(2) reduction(&& : ok)
  ok = quantizers_agree(x, 20, K, K, 16);
  EXPECT_TRUE(ok);
}

// A group that is no power of 4 or does not divide K is refused before any work.
TEST(QuantizeActivationsI8, RejectsBadGroups) {
  const std::vector<float> x(256, 1.0f);
  std::vector<int8_t> q(256);
  std::vector<float> s(2);
  EXPECT_THROW(quantize_activations_i8(x.data(), 2, 128, 128, 8, q.data(), s.data()), Error);
  EXPECT_THROW(quantize_activations_i8(x.data(), 2, 128, 128, 256, q.data(), s.data()), Error);
  EXPECT_THROW(quantize_activations_i8(x.data(), 2, 128, 96, 64, q.data(), s.data()), Error);
}

// Exact halves: with max |x| = 127 the scale is 1 and x / s = x, so x = k + 0.5 must round to even; also
// values just beside the halves and the clamp at 127.
TEST(QuantizeActivationsI8, RoundsTiesToEven) {
  const int64_t K = 64;
  std::vector<float> x(size_t(2 * K));
  for (int64_t k = 0; k < K; ++k) {
    const float half = float(k - 32) + 0.5f;
    x[size_t(k)] = k % 3 == 0 ? half : k % 3 == 1 ? std::nextafter(half, 1e9f) : std::nextafter(half, -1e9f);
    x[size_t(K + k)] = half * 0.75f;  // scale 127 / (max * 0.75): other ties after the division
  }
  x[0] = 127.0f;
  x[1] = -126.5f;
  x[size_t(K)] = -127.0f * 0.75f;
  ASSERT_TRUE(quantizers_agree(x, 2, K, K, 0));
  std::vector<int8_t> q(size_t(2 * K));
  std::vector<float> s(2);
  quantize_activations_i8(x.data(), 2, K, K, 0, q.data(), s.data());
  EXPECT_EQ(s[0], 1.0f);
  EXPECT_EQ(q[1], -126);  // -126.5 to even
  EXPECT_EQ(q[3], -28);   // -28.5 to even
  EXPECT_EQ(q[6], -26);   // -25.5 to even
}

// ---------------------------------------------------------------------------------------------------------
// The GEMM through gemm_xwt.

// An int8 weight (codes N x K, one scale per row), random codes by hand (group 0) or a random float matrix
// quantized by encode_rows with the convrot rotation (group > 0).
struct I8Weight {
  std::vector<int8_t> codes;
  std::vector<float> scales;
  WeightMatrix w;

  I8Weight(int64_t N, int64_t K, uint64_t seed, int64_t group = 0, int max_code = 127) {
    codes.assign(size_t(N * K), 0);
    scales.assign(size_t(N), 0.0f);
    if (group == 0) {
      codes = random_codes(size_t(N * K), seed, max_code);
      const std::vector<float> s = test::random_floats(size_t(N), seed + 1, 1.0f);
      for (int64_t n = 0; n < N; ++n) scales[size_t(n)] = (1.5f + s[size_t(n)]) / 256.0f;
    } else {
      const std::vector<float> v = test::random_floats(size_t(N * K), seed, 0.5f);
      encode_rows(RowEncoding{DType::I8, 1.0f, group}, v.data(), N, K,
                  reinterpret_cast<std::byte*>(codes.data()), scales.data());
    }
    w = WeightMatrix{DType::I8, N, K, codes.data()};
    w.row_scales = scales.data();
    w.rotation_group = group;
  }
};

// Checks y (M x N, stride ldy; columns past N must still hold kSentinel) = x W^T in int8 compute with depth
// blocks of kc. Returns the number of bad elements (the first few reported).
int64_t check_int8(const std::vector<float>& x, int64_t M, int64_t ldx, const I8Weight& wt,
                   const std::vector<float>& y, const std::vector<float>& y0, int64_t ldy, bool accumulate,
                   int64_t kc) {
  const int64_t N = wt.w.rows, K = wt.w.cols;
  std::vector<int8_t> q(size_t(M * K));
  std::vector<float> sx(static_cast<size_t>(M));
  quantize_activations_i8_reference(x.data(), M, ldx, K, wt.w.rotation_group, q.data(), sx.data());
  int64_t bad = 0;
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t n = 0; n < ldy; ++n) {
      const float got = y[size_t(m * ldy + n)];
      if (n >= N) {
        if (got != kSentinel && bad++ < 5) ADD_FAILURE() << "padding written at m=" << m << " n=" << n;
        continue;
      }
      const double scale = double(sx[size_t(m)]) * double(wt.scales[size_t(n)]);
      const double base = accumulate ? double(y0[size_t(m * ldy + n)]) : 0.0;
      double want = base, magnitude = std::fabs(base);
      int64_t blocks = 0;
      for (int64_t k0 = 0; k0 < K; k0 += kc, ++blocks) {
        int64_t s = 0;
        for (int64_t k = k0; k < std::min(K, k0 + kc); ++k)
          s += int64_t(q[size_t(m * K + k)]) * int64_t(wt.codes[size_t(n * K + k)]);
        want += double(s) * scale;
        magnitude += std::fabs(double(s) * scale);
      }
      const double bound = gamma_n(double(blocks + 3)) * magnitude;
      if (!(std::fabs(double(got) - want) <= bound) && bad++ < 5)
        ADD_FAILURE() << "m=" << m << " n=" << n << " got " << got << " want " << want << " bound " << bound;
    }
  }
  return bad;
}

class GemmInt8 : public ::testing::TestWithParam<test::GemmVariant> {
 protected:
  void SetUp() override {
    if (!isa_supported(isa()))
      GTEST_SKIP() << "the " << isa_name(isa())
                   << " int8 GEMM variant is not tested on this machine: " << isa_missing(isa());
    if (amx() && !test::amx_tests_skipped(cpu_features().amx_int8, "amx_int8").empty())
      GTEST_SKIP() << "the AMX int8 GEMM variant is not tested: "
                   << test::amx_tests_skipped(cpu_features().amx_int8, "amx_int8");
    if (!amx() && isa() == Isa::kAvx512 && !cpu_features().avx512_vnni)
      GTEST_SKIP() << "the avx512 int8 GEMM variant is not tested on this machine: the CPU lacks avx512_vnni";
    isa_.emplace(isa());
    amx_.emplace(amx());
    compute_.emplace(Compute::kInt8);
    ASSERT_EQ(active_isa(), isa());
  }
  int64_t kc(int64_t K) const { return std::min(gemm_blocking(isa(), Compute::kInt8).kc, K); }

  // One gemm_xwt call on a fresh weight; false on a mismatch.
  bool check_case(int64_t M, int64_t N, int64_t K, bool accumulate, uint64_t seed, int64_t group = 0) {
    SCOPED_TRACE("M=" + std::to_string(M) + " N=" + std::to_string(N) + " K=" + std::to_string(K) +
                 " G=" + std::to_string(group) + (accumulate ? " accumulate" : "") + " gemm " +
                 gemm_kernel_name(active_isa(), Compute::kInt8));
    const int64_t ldx = K + 3, ldy = N + 5;
    const std::vector<float> x = test::random_floats(size_t(M * ldx), seed);
    const I8Weight wt(N, K, seed + 1, group);
    std::vector<float> y(size_t(M * ldy), kSentinel);
    const std::vector<float> vals = test::random_floats(size_t(M * N), seed + 2, 4.0f);
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) y[size_t(m * ldy + n)] = vals[size_t(m * N + n)];
    const std::vector<float> y0 = y;
    gemm_xwt(x.data(), M, ldx, wt.w, y.data(), ldy, accumulate);
    return check_int8(x, M, ldx, wt, y, y0, ldy, accumulate, kc(K)) == 0;
  }

  Isa isa() const { return GetParam().isa; }
  bool amx() const { return GetParam().amx; }
  std::optional<ScopedIsa> isa_;
  std::optional<test::ScopedAmx> amx_;
  std::optional<GemmComputeScope> compute_;
};

TEST_P(GemmInt8, VariantIsSelected) {
  const std::string name = gemm_kernel_name(isa(), Compute::kInt8);
  EXPECT_NE(name.find("int8"), std::string::npos) << name;
  EXPECT_EQ(name.rfind(amx() ? "amx" : isa_name(isa()), 0), 0u) << name;
  if (isa() == Isa::kAvx2) {
    EXPECT_EQ(name.find("vnni") != std::string::npos, cpu_features().avx_vnni) << name;
  }
  EXPECT_EQ(gemm_compute(), Compute::kInt8);
  EXPECT_GT(gemm_microkernel_flops(isa(), Compute::kInt8), 0);
  gemm_microkernel_repeat(3, isa(), Compute::kInt8);  // zero-filled panels: must run cleanly
}

// Edge shapes of every register block (M < MR, M % MR, N < NR, N % NR, K % 4, K past one KC block at the
// defaults), overwrite and accumulate, with and without the rotation.
TEST_P(GemmInt8, EdgeShapes) {
  uint64_t seed = 1;
  for (int64_t K : {1, 2, 3, 5, 7, 16, 64, 257, 1030, 2500}) {
    for (auto [M, N] : {std::pair<int64_t, int64_t>{1, 1},
                        {3, 5},
                        {5, 17},
                        {7, 15},
                        {11, 31},
                        {12, 32},
                        {13, 33},
                        {25, 70},
                        {100, 100}}) {
      if (!check_case(M, N, K, seed % 2 == 0, seed)) return;  // one failing case is enough
      ++seed;
    }
  }
  for (int64_t group : {16, 64})
    for (int64_t K : {64, 1024 + 64 * 3})
      for (auto [M, N] : {std::pair<int64_t, int64_t>{5, 17}, {13, 33}, {50, 70}}) {
        ASSERT_TRUE(check_case(M, N, K, seed % 2 == 0, seed, group));
        ++seed;
      }
}

// Small blocks: many MC / KC / NC blocks per product, KC not a multiple of 4 (words straddle blocks), one
// depth per block.
TEST_P(GemmInt8, SmallBlocking) {
  for (const GemmBlocking& b : {GemmBlocking{24, 40, 64, int64_t(1) << 20}, GemmBlocking{12, 1, 32, 1 << 20},
                                GemmBlocking{12, 6, 32, 1 << 20}, GemmBlocking{36, 67, 96, 1 << 20},
                                GemmBlocking{12, 256, 32, 2000}}) {
    ScopedBlocking scoped(isa(), b);
    SCOPED_TRACE("kc=" + std::to_string(b.kc) + " pack_limit=" + std::to_string(b.pack_limit));
    uint64_t seed = 100;
    for (int64_t K : {7, 129, 300}) {
      ASSERT_TRUE(check_case(37, 75, K, seed % 2 == 0, seed));
      ++seed;
      ASSERT_TRUE(check_case(12, 96, K, true, seed++));
      ASSERT_TRUE(check_case(5, 3, K, false, seed++));
    }
  }
}

// One KC block, scales of 1 (max |x| = 127 with integer x, so x's codes are x itself; row scales 1) and
// |sum| < 2^24: every output is the exact integer dot product.
TEST_P(GemmInt8, ExactIntegerProducts) {
  const int64_t M = 29, N = 45, K = 1000;  // |sum| <= 1000 * 127^2 < 2^24
  ScopedBlocking scoped(isa(), {48, K, 64, int64_t(1) << 20});
  const std::vector<int8_t> xc = random_codes(size_t(M * K), 5);
  std::vector<float> x(xc.begin(), xc.end());
  for (int64_t m = 0; m < M; ++m) x[size_t(m * K + m)] = m % 2 ? 127.0f : -127.0f;  // scale exactly 1
  I8Weight wt(N, K, 6);
  std::fill(wt.scales.begin(), wt.scales.end(), 1.0f);
  for (bool accumulate : {false, true}) {
    std::vector<float> y(size_t(M * N), 3.0f);
    gemm_xwt(x.data(), M, K, wt.w, y.data(), N, accumulate);
    int64_t bad = 0;
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        int64_t s = 0;
        for (int64_t k = 0; k < K; ++k) s += int64_t(x[size_t(m * K + k)]) * wt.codes[size_t(n * K + k)];
        const float want = float(s + (accumulate ? 3 : 0));  // exact: |s| + 3 < 2^24
        if (y[size_t(m * N + n)] != want && bad++ < 5)
          ADD_FAILURE() << "m=" << m << " n=" << n << " got " << y[size_t(m * N + n)] << " want " << want;
      }
    ASSERT_EQ(bad, 0) << (accumulate ? "accumulate" : "overwrite");
  }
}

// All codes at +-127 in a single block of 16384 depths: |sum| = 16384 * 127^2 (and, with the +128 offset of
// the VNNI kernels, 16384 * 255 * 127 before the correction) must neither saturate nor wrap.
TEST_P(GemmInt8, ExtremeCodesDoNotSaturate) {
  const int64_t M = 14, N = 34, K = 16384;
  ScopedBlocking scoped(isa(), {48, K, 64, int64_t(1) << 24});
  std::vector<float> x(size_t(M * K));
  for (int64_t m = 0; m < M; ++m)
    for (int64_t k = 0; k < K; ++k) {
      // Rows of +127, of -127, of alternating pairs (the AVX2 kernel's int16 pair sums at +-2 * 127^2).
      const int64_t pattern = m % 3;
      x[size_t(m * K + k)] = pattern == 0 ? 1.0f : pattern == 1 ? -1.0f : ((k / 2) % 2 ? -1.0f : 1.0f);
    }
  I8Weight wt(N, K, 9);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k) {
      const int64_t pattern = n % 3;
      wt.codes[size_t(n * K + k)] = int8_t(pattern == 0   ? 127
                                           : pattern == 1 ? -127
                                                          : ((k / 2) % 2 ? -127 : 127));
    }
  std::vector<float> y(size_t(M * N), kSentinel), y0 = y;
  gemm_xwt(x.data(), M, K, wt.w, y.data(), N, false);
  EXPECT_EQ(check_int8(x, M, K, wt, y, y0, N, false, K), 0);
  // The largest sum is 16384 * 127^2 * (1/127) * w_scale: check one directly.
  EXPECT_NEAR(y[0], double(K) * 127.0 * wt.scales[0], 1e-5 * double(K) * 127.0 * wt.scales[0]);
}

// Large enough products for the whole team (column chunks, rows split for narrow N), and row phases.
TEST_P(GemmInt8, ThreadsAndRowPhases) {
  const GemmBlocking d = gemm_blocking(isa(), Compute::kInt8);
  for (int64_t limit : {d.pack_limit, int64_t(50 * 300)}) {
    ScopedBlocking scoped(isa(), {d.mc, d.kc, d.nc, limit});
    SCOPED_TRACE("pack_limit=" + std::to_string(limit));
    for (int threads : {1, 2}) {
      SCOPED_TRACE("threads=" + std::to_string(threads));
      ScopedThreads t(threads);
      ASSERT_TRUE(check_case(250, 333, 300, false, 300));
      ASSERT_TRUE(check_case(301, 32, 600, true, 301));
      ASSERT_TRUE(check_case(130, 500, 1100, false, 302));
      ASSERT_TRUE(check_case(64, 200, 272, true, 303, 16));
    }
  }
}

// Several products sharing x in int8 mode: I8 weights without and with rotations (each group quantizes x
// its own way) beside float weights, which must come out exactly as the float32 GEMM makes them.
TEST_P(GemmInt8, ManyProductsMixingI8AndFloat) {
  const int64_t M = 53, K = 512;
  const std::vector<float> x = test::random_floats(size_t(M * K), 900);
  const std::vector<float> wf = test::random_floats(size_t(77 * K), 901);
  const std::vector<float> wf2 = test::random_floats(size_t(40 * K), 902);
  std::vector<I8Weight> i8;
  i8.emplace_back(100, K, 910, 0);
  i8.emplace_back(33, K, 911, 16);
  i8.emplace_back(64, K, 912, 64);
  i8.emplace_back(31, K, 913, 16);
  const WeightMatrix f32{DType::F32, 77, K, wf.data()};
  WeightMatrix scaled{DType::F32, 40, K, wf2.data()};
  scaled.scale = 0.5f;  // not plain: goes through the decoder
  for (int threads : {1, 2}) {
    ScopedThreads t(threads);
    for (bool acc : {false, true}) {
      SCOPED_TRACE(std::string(acc ? "accumulate" : "overwrite") + " threads=" + std::to_string(threads));
      // Output j: i8[0], f32, i8[1], i8[2], scaled, i8[3].
      const std::vector<const WeightMatrix*> ws = {&i8[0].w, &f32, &i8[1].w, &i8[2].w, &scaled, &i8[3].w};
      std::vector<std::vector<float>> ys;
      for (size_t j = 0; j < ws.size(); ++j) {
        const int64_t ldy = ws[j]->rows + int64_t(j);
        std::vector<float> y(size_t(M * ldy), kSentinel);
        const std::vector<float> v = test::random_floats(size_t(M * ldy), 920 + j);
        for (int64_t m = 0; m < M; ++m)
          for (int64_t n = 0; n < ws[j]->rows; ++n) y[size_t(m * ldy + n)] = v[size_t(m * ldy + n)];
        ys.push_back(std::move(y));
      }
      const std::vector<std::vector<float>> y0s = ys;
      std::vector<GemmProduct> products;
      for (size_t j = 0; j < ws.size(); ++j)
        products.push_back({*ws[j], ys[j].data(), ws[j]->rows + int64_t(j)});
      gemm_xwt_many(x.data(), M, K, products, acc);
      size_t next_i8 = 0;
      for (size_t j = 0; j < ws.size(); ++j) {
        SCOPED_TRACE("product " + std::to_string(j));
        const int64_t ldy = ws[j]->rows + int64_t(j);
        // Each product alone: the float ones in float32 mode, the I8 ones in int8 mode; bit-identical.
        std::vector<float> alone = y0s[j];
        if (ws[j]->dtype == DType::I8) {
          EXPECT_EQ(check_int8(x, M, K, i8[next_i8++], ys[j], y0s[j], ldy, acc, kc(K)), 0);
          gemm_xwt(x.data(), M, K, *ws[j], alone.data(), ldy, acc);
        } else {
          GemmComputeScope f(Compute::kF32);
          gemm_xwt(x.data(), M, K, *ws[j], alone.data(), ldy, acc);
        }
        EXPECT_EQ(std::memcmp(alone.data(), ys[j].data(), alone.size() * sizeof(float)), 0);
      }
    }
  }
}

// All supported variants give bit-identical outputs at equal KC (their epilogues round identically).
TEST(GemmInt8Variants, AgreeBitForBit) {
  if (!isa_supported(Isa::kAvx512) || !cpu_features().avx512_vnni)
    GTEST_SKIP() << "needs two int8 variants: the CPU lacks "
                 << (isa_supported(Isa::kAvx512) ? "avx512_vnni" : isa_missing(Isa::kAvx512));
  ScopedIsa native_cap(Isa::kAvx512);
  GemmComputeScope int8(Compute::kInt8);
  const int64_t M = 61, N = 99, K = 777;
  const std::vector<float> x = test::random_floats(size_t(M * K), 40);
  const I8Weight wt(N, K, 41, 0);
  for (bool amx : {false, true}) {
    if (amx && !test::amx_tests_skipped(cpu_features().amx_int8, "amx_int8").empty()) continue;
    const test::ScopedAmx amx_scope(amx);
    for (int64_t kc : {int64_t(100), int64_t(1024)}) {
      ScopedBlocking native(Isa::kAvx512, {36, kc, 64, int64_t(1) << 20});
      ScopedBlocking avx2(Isa::kAvx2, {36, kc, 64, int64_t(1) << 20});
      for (bool acc : {false, true}) {
        std::vector<float> y512(size_t(M * N), 0.5f), y2 = y512;
        gemm_xwt(x.data(), M, K, wt.w, y512.data(), N, acc);
        {
          ScopedIsa cap(Isa::kAvx2);
          gemm_xwt(x.data(), M, K, wt.w, y2.data(), N, acc);
        }
        EXPECT_EQ(std::memcmp(y512.data(), y2.data(), y2.size() * sizeof(float)), 0)
            << gemm_kernel_name(Isa::kAvx512, Compute::kInt8) << " vs "
            << gemm_kernel_name(Isa::kAvx2, Compute::kInt8) << " kc=" << kc << (acc ? " accumulate" : "");
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Variants, GemmInt8, ::testing::ValuesIn(test::kGemmVariants),
                         [](const ::testing::TestParamInfo<test::GemmVariant>& info) {
                           return test::variant_name(info.param);
                         });

// ---------------------------------------------------------------------------------------------------------
// Each int8 table's packers and microkernel alone, including the AVX2 kernel that the cap cannot reach on a
// CPU with AVX-VNNI.

struct Table {
  const GemmKernels* kernels;
  const char* feature;  // what the CPU needs
  bool (*supported)();
};

const Table kTables[] = {
    {&kGemmKernelsInt8Avx2, "avx2", [] { return isa_supported(Isa::kAvx2); }},
    {&kGemmKernelsInt8AvxVnni, "avx_vnni",
     [] { return isa_supported(Isa::kAvx2) && cpu_features().avx_vnni; }},
    {&kGemmKernelsInt8Avx512Vnni, "avx512_vnni",
     [] { return isa_supported(Isa::kAvx512) && cpu_features().avx512_vnni; }},
    {&kGemmKernelsInt8Amx, "amx_int8",
     [] {
       return isa_supported(Isa::kAvx512) &&
              test::amx_tests_skipped(cpu_features().amx_int8, "amx_int8").empty();
     }},
};

void PrintTo(const Table& t, std::ostream* os) {
  *os << t.kernels->name;
}

struct AlignedFloats {
  explicit AlignedFloats(size_t n) : data(new (std::align_val_t(64)) float[n]), size(n) {
    std::fill(data.get(), data.get() + n, -7.0f);
  }
  struct Deleter {
    void operator()(float* p) const { ::operator delete[](p, std::align_val_t(64)); }
  };
  std::unique_ptr<float[], Deleter> data;
  size_t size;
};

class GemmInt8Table : public ::testing::TestWithParam<Table> {
 protected:
  void SetUp() override {
    if (GetParam().kernels == &kGemmKernelsInt8Amx && !GetParam().supported())
      GTEST_SKIP() << GetParam().kernels->name
                   << " is not tested: " << test::amx_tests_skipped(cpu_features().amx_int8, "amx_int8");
    if (!GetParam().supported())
      GTEST_SKIP() << GetParam().kernels->name << " is not tested on this machine: the CPU lacks "
                   << GetParam().feature;
  }

  // One tile: rows x cols outputs of depth kc starting at depth k0 of x codes (M x ld) and weight codes;
  // returns the kernel's full MR x NR tile (add: onto `init`).
  std::vector<float> run_tile(const std::vector<int8_t>& xq, const std::vector<float>& xs, int64_t ld,
                              const std::vector<int8_t>& wq, const std::vector<float>& ws, int64_t K,
                              int64_t m0, int64_t rows, int64_t n0, int64_t cols, int64_t k0, int64_t kc,
                              bool add, float init) {
    const GemmKernels& k = *GetParam().kernels;
    AlignedFloats a(size_t(gemm_a_panel_words(k, kc) + kGemmPackSlack));
    AlignedFloats b(size_t(gemm_b_panel_words(k, kc)));
    k.pack_a(GemmLhs{nullptr, xq.data(), xs.data(), ld}, m0, rows, k0, kc, a.data.get());
    k.pack_b_i8(wq.data(), ws.data(), K, n0, cols, k0, kc, b.data.get());
    std::vector<float> tile(size_t(k.mr * k.nr), init);
    k.kernel(kc, a.data.get(), b.data.get(), tile.data(), k.nr, add);
    return tile;
  }
};

// Scales of 1, one block: each output is the exact dot product (|sum| < 2^24); padding rows and columns 0.
TEST_P(GemmInt8Table, ExactTiles) {
  const GemmKernels& k = *GetParam().kernels;
  uint64_t seed = 1;
  for (int64_t kc : {1, 2, 3, 4, 5, 31, 32, 33, 63, 64, 65, 127, 1000}) {
    for (int64_t rows : {int64_t(1), k.mr - 1, k.mr}) {
      for (int64_t cols : {int64_t(1), k.nr - 1, k.nr}) {
        SCOPED_TRACE(std::string(k.name) + " kc=" + std::to_string(kc) + " rows=" + std::to_string(rows) +
                     " cols=" + std::to_string(cols));
        const int64_t K = kc + 9, k0 = 5, m0 = 2, n0 = 3;  // offsets into wider operands
        const int64_t M = m0 + rows + 1, N = n0 + cols + 2;
        const std::vector<int8_t> xq = random_codes(size_t(M * K), seed++);
        const std::vector<int8_t> wq = random_codes(size_t(N * K), seed++);
        const std::vector<float> xs(size_t(M), 1.0f), ws(size_t(N), 1.0f);
        for (bool add : {false, true}) {
          const std::vector<float> tile =
              run_tile(xq, xs, K, wq, ws, K, m0, rows, n0, cols, k0, kc, add, 3.0f);
          int64_t bad = 0;
          for (int64_t i = 0; i < k.mr; ++i)
            for (int64_t j = 0; j < k.nr; ++j) {
              int64_t s = 0;
              if (i < rows && j < cols)
                for (int64_t d = k0; d < k0 + kc; ++d)
                  s += int64_t(xq[size_t((m0 + i) * K + d)]) * wq[size_t((n0 + j) * K + d)];
              const float want = float(s + (add ? 3 : 0));  // exact: |s| + 3 < 2^24
              if (tile[size_t(i * k.nr + j)] != want && bad++ < 5)
                ADD_FAILURE() << "i=" << i << " j=" << j << " got " << tile[size_t(i * k.nr + j)] << " want "
                              << want << (add ? " add" : "");
            }
          ASSERT_EQ(bad, 0);
        }
      }
    }
  }
}

// Codes at +-127 everywhere (all equal, all opposite, alternating pairs: the AVX2 kernel's int16 pair sums
// reach +-2 * 127^2) over 1000 depths: exact sums, no saturation.
TEST_P(GemmInt8Table, ExtremeTiles) {
  const GemmKernels& k = *GetParam().kernels;
  const int64_t kc = 1000, K = kc, rows = k.mr, cols = k.nr;
  std::vector<int8_t> xq(size_t(rows * K)), wq(size_t(cols * K));
  auto code = [](int64_t pattern, int64_t d) {
    return int8_t(pattern == 0   ? 127
                  : pattern == 1 ? -127
                  : pattern == 2 ? ((d / 2) % 2 ? -127 : 127)
                                 : (d % 2 ? -127 : 127));
  };
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t d = 0; d < K; ++d) xq[size_t(i * K + d)] = code(i % 4, d);
  for (int64_t j = 0; j < cols; ++j)
    for (int64_t d = 0; d < K; ++d) wq[size_t(j * K + d)] = code((j / 4) % 4, d);
  const std::vector<float> xs(size_t(rows), 1.0f), ws(size_t(cols), 1.0f);
  const std::vector<float> tile = run_tile(xq, xs, K, wq, ws, K, 0, rows, 0, cols, 0, kc, false, 0.0f);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) {
      int64_t s = 0;
      for (int64_t d = 0; d < kc; ++d) s += int64_t(xq[size_t(i * K + d)]) * wq[size_t(j * K + d)];
      ASSERT_EQ(tile[size_t(i * k.nr + j)], float(s)) << k.name << " i=" << i << " j=" << j;
    }
}

// Random scales: every table's tile equals fl(fl(fl(S) a_s) w_s) (then + c, rounded once more) bit for bit,
// so the variants agree exactly with each other.
TEST_P(GemmInt8Table, EpilogueRoundsAsSpecified) {
  const GemmKernels& k = *GetParam().kernels;
  const int64_t kc = 1500, K = kc, rows = k.mr, cols = k.nr - 3;
  const std::vector<int8_t> xq = random_codes(size_t(rows * K), 70), wq = random_codes(size_t(cols * K), 71);
  std::vector<float> xs = test::random_floats(size_t(rows), 72, 0.1f),
                     ws = test::random_floats(size_t(cols), 73);
  for (bool add : {false, true}) {
    const std::vector<float> tile = run_tile(xq, xs, K, wq, ws, K, 0, rows, 0, cols, 0, kc, add, 3.0f);
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) {
        int64_t s = 0;
        for (int64_t d = 0; d < kc; ++d) s += int64_t(xq[size_t(i * K + d)]) * wq[size_t(j * K + d)];
        volatile float p = float(s) * xs[size_t(i)];  // volatile: no contraction of the test's own arithmetic
        p = p * ws[size_t(j)];
        const float want = add ? 3.0f + p : float(p);
        ASSERT_EQ(tile[size_t(i * k.nr + j)], want) << k.name << " i=" << i << " j=" << j << " s=" << s;
      }
  }
}

// gemm_microkernel_repeat's zero-filled panels give zeros (no NaN from 0 * 0 scales, nothing read beyond).
TEST_P(GemmInt8Table, ZeroPanels) {
  const GemmKernels& k = *GetParam().kernels;
  const int64_t kc = kGemmMicrokernelDepth;
  AlignedFloats a(size_t(gemm_a_panel_words(k, kc))), b(size_t(gemm_b_panel_words(k, kc)));
  std::fill(a.data.get(), a.data.get() + a.size, 0.0f);
  std::fill(b.data.get(), b.data.get() + b.size, 0.0f);
  std::vector<float> tile(size_t(k.mr * k.nr), 1.0f);
  k.kernel(kc, a.data.get(), b.data.get(), tile.data(), k.nr, false);
  for (float v : tile) ASSERT_EQ(v, 0.0f);
}

INSTANTIATE_TEST_SUITE_P(Tables, GemmInt8Table, ::testing::ValuesIn(kTables),
                         [](const ::testing::TestParamInfo<Table>& info) {
                           std::string n = info.param.feature;
                           return n;
                         });

}  // namespace
}  // namespace krea2
