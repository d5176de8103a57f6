// The GEMM's bf16 compute mode (ops/gemm_kernels.h): the vdpbf16ps variant (avx512-bf16 12x32) and the
// emulated ones (the float32 avx2 / avx512 kernels on operands rounded to bf16 when packed), each against a
// float64 reference of the bf16 semantics: x and the weight rounded to bf16 (round to nearest even; BF16
// weights as stored, quantized ones decoded by the reference decoders, then rounded), exact products summed
// in float64. Through the driver (set_isa_cap + GemmComputeScope: every variant this CPU dispatches to), on
// every edge of the register blocks, odd depths, small blockings, several products sharing x with mixed
// weight dtypes, 1 and 2 threads; through the tables directly for the variant the dispatcher does not pick
// here (the emulated avx512 one on a CPU with AVX512_BF16), and native against emulated.
//
// Bound: a bf16 value has 8 significant bits, so every product x^_k w^_k of rounded inputs is exact in
// float32 (16 bits; our values stay far from the float32 range limits, where vdpbf16ps would flush denormal
// products). What remains is float32 summation of these exact terms. The emulated kernels add one term per
// FMA (one rounding each); vdpbf16ps adds a pair of terms per instruction with at most two roundings (one
// per product if it accumulates them one by one, fewer if it adds the pair first), so no term passes more
// roundings than in a sequential chain over its KC block; the driver then adds each block into y (one
// rounding, and y0's when accumulating). Any term goes through at most K + 2 roundings, and the recursive
// summation bound gives |got - ref| <= gamma_{K+2} (sum_k |x^_k w^_k| + |y0|), plus u |ref| as in
// tests/test_gemm_isa.cpp. Rounding the inputs moves each term by up to ~2^-8 relative (errors that add up
// like a random walk over K), far above gamma_{K+2} ~ K 2^-24 for the depths tested: a kernel that skipped
// the rounding of either operand fails the check (BoundSeparatesRoundedInputs).
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "cpu/cpu_features.h"
#include "model/weight_encode.h"
#include "ops/gemm.h"
#include "ops/gemm_kernels.h"
#include "ops/linear.h"
#include "ops/weight_decode.h"
#include "support/scoped_isa.h"
#include "support/test_util.h"

namespace krea2 {
namespace {

constexpr double kU = 1.0 / 16777216.0;  // 2^-24
constexpr float kSentinel = 12345.0f;    // y padding the GEMM must not touch

double gamma_n(double n) {
  return n * kU / (1.0 - n * kU);
}

// The reference rounding, written out: float32 to the nearest bf16, ties to the even one (no NaN or
// infinity in these tests).
float round_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  const uint32_t lsb = (bits >> 16) & 1u;  // lowest bit kept
  bits = (bits + 0x7FFFu + lsb) & 0xFFFF0000u;
  float r;
  std::memcpy(&r, &bits, 4);
  return r;
}

using test::ScopedIsa;

// Sets the bf16 variant's blocking for a scope and restores it.
class ScopedBlocking {
 public:
  ScopedBlocking(Isa isa, GemmBlocking b) : isa_(isa), saved_(gemm_blocking(isa, Compute::kBf16)) {
    set_gemm_blocking(b, isa, Compute::kBf16);
  }
  ~ScopedBlocking() { set_gemm_blocking(saved_, isa_, Compute::kBf16); }
  ScopedBlocking(const ScopedBlocking&) = delete;
  ScopedBlocking& operator=(const ScopedBlocking&) = delete;

 private:
  Isa isa_;
  GemmBlocking saved_;
};

// Sets the thread count for a scope and restores it.
class ScopedThreads {
 public:
  explicit ScopedThreads(int n) : saved_(omp_get_max_threads()) { omp_set_num_threads(n); }
  ~ScopedThreads() { omp_set_num_threads(saved_); }
  ScopedThreads(const ScopedThreads&) = delete;
  ScopedThreads& operator=(const ScopedThreads&) = delete;

 private:
  int saved_;
};

struct Storage {
  DType dtype;
  const char* name;
};
const Storage kF32{DType::F32, "F32"}, kBF16{DType::BF16, "BF16"}, kF16{DType::F16, "F16"},
    kQ8_0{DType::Q8_0, "Q8_0"};
const Storage kStorages[] = {kF32, kBF16, kF16, kQ8_0};

// A weight encoded as `s` from given values, its bytes 2 bytes past 64-byte alignment (the weakest an mmap'd
// 16-bit tensor has), with the reference-decoded values.
struct TestWeight {
  std::vector<std::byte> bytes;
  std::vector<float> decoded;  // N x K
  WeightMatrix w;

  TestWeight(const Storage& s, int64_t N, int64_t K, const std::vector<float>& v) {
    const int64_t row_bytes = dtype_row_bytes(s.dtype, K);
    bytes.assign(size_t(N * row_bytes + 128), std::byte{0});
    const auto base = reinterpret_cast<uintptr_t>(bytes.data());
    std::byte* p = bytes.data() + ((64 - base % 64) % 64) + 2;
    std::vector<float> row_scales(static_cast<size_t>(N));
    if (N * K > 0) encode_rows(RowEncoding{s.dtype}, v.data(), N, K, p, row_scales.data());
    w = WeightMatrix{s.dtype, N, K, p};
    decoded.assign(size_t(N * K), 0.0f);
    for (int64_t n = 0; n < N && K > 0; ++n) decode_weight_row_reference(w, n, decoded.data() + n * K);
  }
  TestWeight(const Storage& s, int64_t N, int64_t K, uint64_t seed)
      : TestWeight(s, N, K, test::random_floats(size_t(N * K), seed, 0.5f)) {}
};

// The reference of one output: y0 + sum_k x^_k w^_k over depths [k0, k0 + kc) of x's row m and w's row n,
// the sum of |terms|, and the bound. Unrounded: the inputs as float32 (for the test that the bound separates
// the two).
struct Reference {
  double want, bound;
};
Reference reference(const float* x_row, const float* w_row, int64_t kc, double y0, bool rounded = true) {
  double sum = 0.0, abs_sum = 0.0;
  for (int64_t k = 0; k < kc; ++k) {
    const float xv = rounded ? round_bf16(x_row[k]) : x_row[k];
    const float wv = rounded ? round_bf16(w_row[k]) : w_row[k];
    const double t = double(xv) * double(wv);
    sum += t;
    abs_sum += std::fabs(t);
  }
  const double want = y0 + sum;
  return {want, gamma_n(double(kc + 2)) * (abs_sum + std::fabs(y0)) + kU * std::fabs(want)};
}

// Checks y (M x N, stride ldy; columns past N must still hold kSentinel) against the reference. Returns the
// number of bad elements (the first few are reported).
int64_t check_output(const std::vector<float>& x, int64_t M, int64_t ldx, const TestWeight& tw,
                     const std::vector<float>& y, const std::vector<float>& y0, int64_t ldy,
                     bool accumulate) {
  const int64_t N = tw.w.rows, K = tw.w.cols;
  int64_t bad = 0;
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t n = 0; n < ldy; ++n) {
      const float got = y[size_t(m * ldy + n)];
      if (n >= N) {
        if (got != kSentinel && bad++ < 5) ADD_FAILURE() << "padding written at m=" << m << " n=" << n;
        continue;
      }
      const double base = accumulate ? double(y0[size_t(m * ldy + n)]) : 0.0;
      const Reference r = reference(x.data() + m * ldx, tw.decoded.data() + n * K, K, base);
      if (!(std::fabs(double(got) - r.want) <= r.bound) && bad++ < 5)
        ADD_FAILURE() << "m=" << m << " n=" << n << " got " << got << " want " << r.want << " bound "
                      << r.bound;
    }
  }
  return bad;
}

// y (M x ldy) with random values in the valid columns and kSentinel in the padding.
std::vector<float> initial_y(int64_t M, int64_t N, int64_t ldy, uint64_t seed) {
  std::vector<float> y(size_t(M * ldy), kSentinel);
  const std::vector<float> vals = test::random_floats(size_t(M * N), seed, 4.0f);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) y[size_t(m * ldy + n)] = vals[size_t(m * N + n)];
  return y;
}

// One gemm_xwt call in bf16 mode on a fresh weight; false on a mismatch.
bool check_case(const Storage& s, int64_t M, int64_t N, int64_t K, bool accumulate, uint64_t seed) {
  const GemmComputeScope bf16(Compute::kBf16);
  SCOPED_TRACE(std::string(s.name) + " M=" + std::to_string(M) + " N=" + std::to_string(N) +
               " K=" + std::to_string(K) + (accumulate ? " accumulate" : "") + " gemm " +
               gemm_kernel_name(active_isa(), Compute::kBf16));
  const int64_t ldx = K + 3, ldy = N + 5;
  const std::vector<float> x = test::random_floats(size_t(std::max<int64_t>(M * ldx, 1)), seed);
  const TestWeight tw(s, N, K, seed + 1);
  std::vector<float> y = initial_y(M, N, ldy, seed + 2);
  const std::vector<float> y0 = y;
  gemm_xwt(x.data(), M, ldx, tw.w, y.data(), ldy, accumulate);
  return check_output(x, M, ldx, tw, y, y0, ldy, accumulate) == 0;
}

// Depths per storage: odd, even, not multiples of any KC; Q8_0 in whole blocks of 32.
std::vector<int64_t> depths(const Storage& s) {
  if (s.dtype == DType::Q8_0) return {32, 96, 288, 544};
  return {1, 2, 7, 16, 33, 257, 600, 1025};
}

// The variant gemm_kernels picks for bf16 at `isa` on this CPU.
// The dispatcher keeps the faster of vdpbf16ps and the emulated kernel at avx512 (gemm_dispatch.cpp); this
// suite forces the native one so that its driver-level checks run on vdpbf16ps wherever the CPU has it (the
// emulated AVX-512 table is checked through its table below).
class ForceNativeBf16 : public ::testing::Environment {
 public:
  void SetUp() override { set_bf16_avx512_choice(Bf16Choice::kNative); }
  void TearDown() override { set_bf16_avx512_choice(Bf16Choice::kMeasured); }
};
const ::testing::Environment* const kForceNative = ::testing::AddGlobalTestEnvironment(new ForceNativeBf16);

const GemmKernels& bf16_variant(Isa isa) {
  return gemm_kernels(isa, Compute::kBf16);
}

// ---------------------------------------------------------------------------------------------------------
// Through the driver: every bf16 variant this CPU dispatches to.

class GemmBf16 : public ::testing::TestWithParam<test::GemmVariant> {
 protected:
  void SetUp() override {
    if (!isa_supported(isa()))
      GTEST_SKIP() << "the " << isa_name(isa())
                   << " bf16 GEMM variants are not tested on this machine: " << isa_missing(isa());
    if (amx() && !test::amx_tests_skipped(cpu_features().amx_bf16, "amx_bf16").empty())
      GTEST_SKIP() << "the AMX bf16 GEMM variant is not tested: "
                   << test::amx_tests_skipped(cpu_features().amx_bf16, "amx_bf16");
    isa_.emplace(isa());
    amx_.emplace(amx());
    // The AMX variant is the dispatcher's own pick; the others are forced (ForceNativeBf16).
    if (amx()) set_bf16_avx512_choice(Bf16Choice::kMeasured);
    ASSERT_EQ(active_isa(), isa());
  }
  void TearDown() override { set_bf16_avx512_choice(Bf16Choice::kNative); }
  Isa isa() const { return GetParam().isa; }
  bool amx() const { return GetParam().amx; }
  std::optional<ScopedIsa> isa_;
  std::optional<test::ScopedAmx> amx_;
};

TEST_P(GemmBf16, VariantIsSelected) {
  const std::string name = gemm_kernel_name(isa(), Compute::kBf16);
  const bool native = isa() == Isa::kAvx512 && cpu_features().avx512_bf16;
  // (native: forced for this suite, see main(); without the force the faster microkernel is kept.)
  EXPECT_EQ(name, amx()                 ? "amx-bf16 32x32"
                  : isa() == Isa::kAvx2 ? "avx2 6x16 (bf16 emulated)"
                  : native              ? "avx512-bf16 12x32"
                                        : "avx512 12x32 (bf16 emulated)");
  const GemmKernels& k = bf16_variant(isa());
  EXPECT_EQ(k.compute, Compute::kBf16);
  EXPECT_EQ(k.isa, isa());
  EXPECT_EQ(k.depth_per_word, native ? 2 : 1);
  // The bf16 blocking is the variant's own: mc and nc round up to its MR and NR.
  ScopedBlocking b(isa(), {1, 7, 1, 100});
  const GemmBlocking got = gemm_blocking(isa(), Compute::kBf16);
  EXPECT_EQ(got.mc, k.mr);
  EXPECT_EQ(got.nc, k.nr);
  EXPECT_EQ(got.kc, 7);
  EXPECT_NE(gemm_blocking(isa(), Compute::kF32).kc, 7);
  EXPECT_EQ(gemm_microkernel_flops(isa(), Compute::kBf16), 2 * k.mr * k.nr * kGemmMicrokernelDepth);
  gemm_microkernel_repeat(3, isa(), Compute::kBf16);  // runs on the zero panels
}

// Every storage over the edge shapes, default blocking, overwrite and accumulate.
TEST_P(GemmBf16, EveryStorageAndEdgeShape) {
  uint64_t seed = 1;
  for (const Storage& s : kStorages) {
    for (int64_t K : depths(s)) {
      for (auto [M, N] :
           {std::pair<int64_t, int64_t>{1, 1}, {5, 17}, {11, 31}, {12, 32}, {13, 33}, {25, 70}, {100, 100}}) {
        const bool acc = (seed % 2) == 0;
        if (!check_case(s, M, N, K, acc, seed++)) return;  // one failing case is enough
      }
    }
  }
}

// Small blocks: many MC / KC / NC blocks per product with edges inside every block; odd KC (depth blocks
// start at odd depths, so BF16 weight pairs are read at 2-byte offsets and each block ends in a half-empty
// word); one depth per block.
TEST_P(GemmBf16, SmallBlocking) {
  for (const GemmBlocking& b : {GemmBlocking{24, 40, 64, int64_t(1) << 20}, GemmBlocking{36, 7, 96, 1 << 20},
                                GemmBlocking{12, 1, 32, 1 << 20}}) {
    ScopedBlocking scoped(isa(), b);
    SCOPED_TRACE("kc=" + std::to_string(b.kc));
    uint64_t seed = 100;
    for (const Storage& s : kStorages) {
      const int64_t K = s.dtype == DType::Q8_0 ? 96 : 101;
      ASSERT_TRUE(check_case(s, 37, 75, K, seed % 2 == 0, seed));
      ++seed;
      ASSERT_TRUE(check_case(s, 12, 96, K, true, seed++));
    }
  }
}

// Large enough products for the whole team (column chunks, rows split for narrow N), and row phases.
TEST_P(GemmBf16, ThreadsAndRowPhases) {
  const GemmBlocking d = gemm_blocking(isa(), Compute::kBf16);
  for (int64_t limit : {int64_t(24) << 20, int64_t(50 * 300)}) {
    ScopedBlocking scoped(isa(), {d.mc, d.kc, d.nc, limit});
    SCOPED_TRACE("pack_limit=" + std::to_string(limit));
    for (int threads : {1, 2}) {
      SCOPED_TRACE("threads=" + std::to_string(threads));
      const ScopedThreads t(threads);
      ASSERT_TRUE(check_case(kF32, 250, 333, 300, false, 300));
      ASSERT_TRUE(check_case(kBF16, 301, 32, 601, true, 301));
      ASSERT_TRUE(check_case(kF16, 77, 260, 1100, true, 302));
      ASSERT_TRUE(check_case(kQ8_0, 130, 500, 320, false, 303));
    }
  }
}

// Several products sharing x, mixed storages and widths, on 1 and 2 threads.
TEST_P(GemmBf16, ManyProductsMixedStorage) {
  const GemmComputeScope bf16(Compute::kBf16);
  const int64_t M = 53, K = 544;
  const std::vector<float> x = test::random_floats(size_t(M * K), 900);
  const std::vector<std::pair<int64_t, Storage>> shapes = {{100, kF32}, {32, kQ8_0}, {77, kBF16},
                                                           {300, kF16}, {1, kBF16},  {45, kQ8_0}};
  for (int threads : {1, 2}) {
    const ScopedThreads t(threads);
    for (bool acc : {false, true}) {
      SCOPED_TRACE(std::string(acc ? "accumulate" : "overwrite") + " threads=" + std::to_string(threads));
      std::vector<TestWeight> ws;
      std::vector<std::vector<float>> ys;
      for (size_t j = 0; j < shapes.size(); ++j) {
        ws.emplace_back(shapes[j].second, shapes[j].first, K, 910 + j);
        ys.push_back(initial_y(M, shapes[j].first, shapes[j].first + int64_t(j), 920 + j));
      }
      const std::vector<std::vector<float>> y0s = ys;
      std::vector<GemmProduct> products;
      for (size_t j = 0; j < shapes.size(); ++j)
        products.push_back({ws[j].w, ys[j].data(), shapes[j].first + int64_t(j)});
      gemm_xwt_many(x.data(), M, K, products, acc);
      for (size_t j = 0; j < shapes.size(); ++j) {
        SCOPED_TRACE("product " + std::to_string(j) + " " + shapes[j].second.name);
        EXPECT_EQ(check_output(x, M, K, ws[j], ys[j], y0s[j], shapes[j].first + int64_t(j), acc), 0);
      }
    }
  }
}

// Rounding is to nearest with ties to even, in x and in F32 / F16 weights (BF16 weights are taken as
// stored): single products, exact in every variant. 1 + 2^-8 lies halfway between the bf16 values 1 and
// 1 + 2^-7 (goes to 1, the even one; truncation would agree, so the next cases tell them apart);
// 1 + 3 2^-8 halfway between 1 + 2^-7 and 1 + 2^-6 (goes up to the even 1 + 2^-6); 1 + 2^-8 + 2^-10 just
// above a tie (up); -(1 + 3 2^-8) (the sign does not matter).
TEST_P(GemmBf16, RoundsToNearestEven) {
  const GemmComputeScope bf16(Compute::kBf16);
  const float t = 1.0f / 256.0f;
  const std::vector<float> in = {1.0f + t, 1.0f + 3 * t, 1.0f + t + t / 4, -(1.0f + 3 * t)};
  const std::vector<float> out = {1.0f, 1.0f + 4 * t, 1.0f + 2 * t, -(1.0f + 4 * t)};
  const int64_t n = int64_t(in.size());
  // x = in (one row each) times a weight of ones.
  {
    const TestWeight ones(kF32, 1, 1, std::vector<float>{1.0f});
    std::vector<float> y(static_cast<size_t>(n));
    gemm_xwt(in.data(), n, 1, ones.w, y.data(), 1, false);
    for (int64_t i = 0; i < n; ++i) EXPECT_EQ(y[size_t(i)], out[size_t(i)]) << "x = " << in[size_t(i)];
  }
  // x = 1 times weights in (one row each), F32 and F16 (all four values are F16 values).
  for (const Storage& s : {kF32, kF16}) {
    const TestWeight w(s, n, 1, in);
    const float one = 1.0f;
    std::vector<float> y(static_cast<size_t>(n));
    gemm_xwt(&one, 1, 1, w.w, y.data(), n, false);
    for (int64_t i = 0; i < n; ++i)
      EXPECT_EQ(y[size_t(i)], out[size_t(i)]) << s.name << " w = " << in[size_t(i)];
  }
}

// The check can fail: on random data nearly every output of a product with unrounded float32 inputs lies
// outside the bound around the bf16 reference, while the GEMM's lie inside.
TEST_P(GemmBf16, BoundSeparatesRoundedInputs) {
  const GemmComputeScope bf16(Compute::kBf16);
  const int64_t M = 13, N = 33, K = 64;
  const std::vector<float> x = test::random_floats(size_t(M * K), 7);
  const TestWeight tw(kF32, N, K, 8);
  std::vector<float> y(size_t(M * N));
  gemm_xwt(x.data(), M, K, tw.w, y.data(), N, false);
  int64_t bad = 0, unrounded_outside = 0;
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t n = 0; n < N; ++n) {
      const float* xr = x.data() + m * K;
      const float* wr = tw.decoded.data() + n * K;
      const Reference r = reference(xr, wr, K, 0.0);
      const Reference f32 = reference(xr, wr, K, 0.0, false);
      bad += !(std::fabs(double(y[size_t(m * N + n)]) - r.want) <= r.bound);
      unrounded_outside += !(std::fabs(f32.want - r.want) <= r.bound);
    }
  }
  EXPECT_EQ(bad, 0);
  EXPECT_GE(unrounded_outside, M * N * 9 / 10);
}

// Native (vdpbf16ps) against emulated (float32 FMAs on rounded operands) through the driver: the avx512 and
// avx2 caps reach one each on a CPU with AVX512_BF16. Each lies within the bound of the reference, so they
// lie within twice the bound of each other.
TEST_P(GemmBf16, NativeAgreesWithEmulated) {
  if (isa() != Isa::kAvx512 || !cpu_features().avx512_bf16)
    GTEST_SKIP() << "needs the native variant: "
                 << (isa() != Isa::kAvx512 ? "run at the avx512 level" : "the CPU lacks avx512_bf16");
  const GemmComputeScope bf16(Compute::kBf16);
  const int64_t M = 97, N = 150, K = 1037;
  const std::vector<float> x = test::random_floats(size_t(M * K), 40);
  for (const Storage& s : {kF32, kBF16, kF16}) {
    SCOPED_TRACE(s.name);
    const TestWeight tw(s, N, K, 41);
    std::vector<float> native(size_t(M * N)), emulated(size_t(M * N));
    gemm_xwt(x.data(), M, K, tw.w, native.data(), N, false);
    {
      const ScopedIsa avx2(Isa::kAvx2);
      ASSERT_EQ(std::string(gemm_kernel_name(active_isa(), Compute::kBf16)), "avx2 6x16 (bf16 emulated)");
      gemm_xwt(x.data(), M, K, tw.w, emulated.data(), N, false);
    }
    int64_t bad = 0;
    for (int64_t m = 0; m < M; ++m) {
      for (int64_t n = 0; n < N; ++n) {
        const Reference r = reference(x.data() + m * K, tw.decoded.data() + n * K, K, 0.0);
        const float a = native[size_t(m * N + n)], b = emulated[size_t(m * N + n)];
        if (!(std::fabs(double(a) - double(b)) <= 2 * r.bound) && bad++ < 5)
          ADD_FAILURE() << "m=" << m << " n=" << n << " native " << a << " emulated " << b;
      }
    }
    EXPECT_EQ(bad, 0);
  }
}

INSTANTIATE_TEST_SUITE_P(Variants, GemmBf16, ::testing::ValuesIn(test::kGemmVariants),
                         [](const ::testing::TestParamInfo<test::GemmVariant>& info) {
                           return test::variant_name(info.param);
                         });

// ---------------------------------------------------------------------------------------------------------
// Through the tables: all three bf16 variants, whichever the dispatcher picks, with their own packers and
// kernel (the driver's edge handling redone here: full tiles into a local buffer, valid part copied).

enum class Table { kAvx2, kAvx512, kAvx512Bf16, kAmx };
struct TableCase {
  Table table;
  const char* name;
};
const TableCase kTables[] = {{Table::kAvx2, "avx2_emulated"},
                             {Table::kAvx512, "avx512_emulated"},
                             {Table::kAvx512Bf16, "avx512_bf16"},
                             {Table::kAmx, "amx_bf16"}};

const GemmKernels& table_of(Table t) {
  switch (t) {
    case Table::kAvx2:
      return kGemmKernelsBf16Avx2;
    case Table::kAvx512:
      return kGemmKernelsBf16Avx512;
    case Table::kAvx512Bf16:
      return kGemmKernelsBf16Avx512Bf16;
    case Table::kAmx:
      break;
  }
  return kGemmKernelsBf16Amx;
}

// A 64-byte aligned float buffer.
struct AlignedFloats {
  float* p;
  explicit AlignedFloats(int64_t n)
      : p(static_cast<float*>(std::aligned_alloc(64, size_t((n + 15) / 16 * 64)))) {
    std::fill(p, p + (n + 15) / 16 * 16, -7.0f);  // junk where the packers must write
  }
  ~AlignedFloats() { std::free(p); }
  AlignedFloats(const AlignedFloats&) = delete;
  AlignedFloats& operator=(const AlignedFloats&) = delete;
};

// y (M x w.rows, stride ldy) (+)= x (M rows, stride ldx) times all rows of w over depths [k0, k0 + kc),
// through table k: its packers, then its kernel on every tile (into a local tile holding y when adding).
void table_product(const GemmKernels& k, const float* x, int64_t M, int64_t ldx, const WeightMatrix& w,
                   int64_t k0, int64_t kc, float* y, int64_t ldy, bool add) {
  const int64_t N = w.rows;
  const int64_t m_panels = (M + k.mr - 1) / k.mr, n_panels = (N + k.nr - 1) / k.nr;
  const int64_t a_words = gemm_a_panel_words(k, kc), b_words = gemm_b_panel_words(k, kc);
  AlignedFloats a(m_panels * a_words + kGemmPackSlack), b(n_panels * b_words);
  k.pack_a(GemmLhs{x, nullptr, nullptr, ldx}, 0, M, k0, kc, a.p);
  const GemmPackB pack = w.dtype == DType::F32    ? k.pack_b_f32
                         : w.dtype == DType::BF16 ? k.pack_b_bf16
                                                  : k.pack_b_f16;
  pack(static_cast<const unsigned char*>(w.data), w.cols, 0, N, k0, kc, b.p);
  alignas(64) float tile[kGemmMaxTile];
  for (int64_t ip = 0; ip < m_panels; ++ip) {
    for (int64_t jp = 0; jp < n_panels; ++jp) {
      const int64_t rows = std::min(k.mr, M - ip * k.mr), cols = std::min(k.nr, N - jp * k.nr);
      float* c = y + ip * k.mr * ldy + jp * k.nr;
      std::fill(tile, tile + kGemmMaxTile, 0.0f);
      for (int64_t i = 0; i < rows; ++i)
        for (int64_t j = 0; j < cols; ++j) tile[i * k.nr + j] = c[i * ldy + j];
      k.kernel(kc, a.p + ip * a_words, b.p + jp * b_words, tile, k.nr, add);
      for (int64_t i = 0; i < rows; ++i)
        for (int64_t j = 0; j < cols; ++j) c[i * ldy + j] = tile[i * k.nr + j];
    }
  }
}

class GemmBf16Table : public ::testing::TestWithParam<TableCase> {
 protected:
  void SetUp() override {
    const Table t = GetParam().table;
    if (t != Table::kAvx2 && !isa_supported(Isa::kAvx512))
      GTEST_SKIP() << GetParam().name << " is not tested on this machine: " << isa_missing(Isa::kAvx512);
    if (t == Table::kAvx512Bf16 && !cpu_features().avx512_bf16)
      GTEST_SKIP() << GetParam().name << " is not tested on this machine: the CPU lacks avx512_bf16";
    if (t == Table::kAmx && !test::amx_tests_skipped(cpu_features().amx_bf16, "amx_bf16").empty())
      GTEST_SKIP() << GetParam().name
                   << " is not tested: " << test::amx_tests_skipped(cpu_features().amx_bf16, "amx_bf16");
  }
  const GemmKernels& k() const { return table_of(GetParam().table); }
};

// The emulated tables repeat their float32 table's block, blocking and prefetch choice (they call its
// kernel and packers, whose panel layout they round in place).
TEST_P(GemmBf16Table, Fields) {
  const GemmKernels& t = k();
  EXPECT_EQ(t.compute, Compute::kBf16);
  EXPECT_EQ(t.pack_b_i8, nullptr);
  EXPECT_LE(t.mr * t.nr, kGemmMaxTile);
  if (GetParam().table == Table::kAmx) {  // room to pad the depths to a whole tile row (32)
    EXPECT_EQ(t.isa, Isa::kAvx512);
    EXPECT_EQ(t.depth_per_word, 2);
    EXPECT_EQ(t.a_extra, t.mr * 16);
    EXPECT_EQ(t.b_extra, t.nr * 16);
    return;
  }
  EXPECT_EQ(t.a_extra, 0);
  EXPECT_EQ(t.b_extra, 0);
  if (GetParam().table == Table::kAvx512Bf16) {
    EXPECT_EQ(t.isa, Isa::kAvx512);
    EXPECT_EQ(t.depth_per_word, 2);
    return;
  }
  const GemmKernels& f32 = GetParam().table == Table::kAvx2 ? kGemmKernelsAvx2 : kGemmKernelsAvx512;
  EXPECT_EQ(t.isa, f32.isa);
  EXPECT_EQ(t.depth_per_word, 1);
  EXPECT_EQ(t.mr, f32.mr);
  EXPECT_EQ(t.nr, f32.nr);
  EXPECT_EQ(t.blocking.mc, f32.blocking.mc);
  EXPECT_EQ(t.blocking.kc, f32.blocking.kc);
  EXPECT_EQ(t.blocking.nc, f32.blocking.nc);
  EXPECT_EQ(t.blocking.pack_limit, f32.blocking.pack_limit);
  EXPECT_EQ(t.prefetch_weights, f32.prefetch_weights);
  EXPECT_EQ(std::string(t.name), std::string(f32.name) + " (bf16 emulated)");
}

// Tiles with every edge, depth blocks starting at odd depths (BF16 pairs read at 2-byte offsets) and of odd
// length, overwrite and add, each float storage; only the block's depths may be read.
TEST_P(GemmBf16Table, PackersAndKernel) {
  const GemmKernels& t = k();
  struct Shape {
    int64_t M, N, k0, kc;
  };
  const Shape shapes[] = {{1, 1, 0, 1},
                          {t.mr - 1, t.nr - 1, 3, 37},
                          {t.mr, t.nr, 0, 64},
                          {t.mr + 1, 2 * t.nr + 3, 5, 255},
                          {3 * t.mr, t.nr, 0, 600},
                          {2 * t.mr - 1, t.nr + 1, 1, 2}};
  uint64_t seed = 500;
  for (const Storage& s : {kF32, kBF16, kF16}) {
    for (const Shape& sh : shapes) {
      for (bool add : {false, true}) {
        SCOPED_TRACE(std::string(s.name) + " M=" + std::to_string(sh.M) + " N=" + std::to_string(sh.N) +
                     " k0=" + std::to_string(sh.k0) + " kc=" + std::to_string(sh.kc) + (add ? " add" : ""));
        const int64_t K = sh.k0 + sh.kc + 3, ldx = K + 1, ldy = sh.N + 2;
        // Depths outside the block are NaN in both operands: a packer reading past kc (the upper half of an
        // odd kc's last word) or before k0 turns outputs into NaN.
        const auto outside = [&](int64_t k) { return k < sh.k0 || k >= sh.k0 + sh.kc; };
        std::vector<float> x = test::random_floats(size_t(sh.M * ldx), seed++);
        std::vector<float> wv = test::random_floats(size_t(sh.N * K), seed++, 0.5f);
        for (int64_t m = 0; m < sh.M; ++m)
          for (int64_t k = 0; k < ldx; ++k)
            if (outside(k)) x[size_t(m * ldx + k)] = NAN;
        for (int64_t n = 0; n < sh.N; ++n)
          for (int64_t k = 0; k < K; ++k)
            if (outside(k)) wv[size_t(n * K + k)] = NAN;
        const TestWeight tw(s, sh.N, K, wv);
        std::vector<float> y = initial_y(sh.M, sh.N, ldy, seed++);
        const std::vector<float> y0 = y;
        table_product(t, x.data(), sh.M, ldx, tw.w, sh.k0, sh.kc, y.data(), ldy, add);
        int64_t bad = 0;
        for (int64_t m = 0; m < sh.M; ++m) {
          for (int64_t n = 0; n < ldy; ++n) {
            const float got = y[size_t(m * ldy + n)];
            if (n >= sh.N) {
              EXPECT_EQ(got, kSentinel);
              continue;
            }
            const double base = add ? double(y0[size_t(m * ldy + n)]) : 0.0;
            const Reference r =
                reference(x.data() + m * ldx + sh.k0, tw.decoded.data() + n * K + sh.k0, sh.kc, base);
            if (!(std::fabs(double(got) - r.want) <= r.bound) && bad++ < 5)
              ADD_FAILURE() << "m=" << m << " n=" << n << " got " << got << " want " << r.want;
          }
        }
        ASSERT_EQ(bad, 0);
      }
    }
  }
}

// The other tables on the same operands agree with this one within twice the bound (each lies within the
// bound of the reference).
TEST_P(GemmBf16Table, AgreesWithTheOtherTables) {
  const int64_t M = 29, N = 70, K = 777;
  const std::vector<float> x = test::random_floats(size_t(M * K), 600);
  for (const Storage& s : {kF32, kBF16, kF16}) {
    const TestWeight tw(s, N, K, 601);
    std::vector<float> mine(size_t(M * N));
    table_product(k(), x.data(), M, K, tw.w, 0, K, mine.data(), N, false);
    for (const TableCase& other : kTables) {
      if (other.table == GetParam().table) continue;
      if (other.table != Table::kAvx2 && !isa_supported(Isa::kAvx512)) continue;
      if (other.table == Table::kAvx512Bf16 && !cpu_features().avx512_bf16) continue;
      if (other.table == Table::kAmx && !test::amx_tests_skipped(cpu_features().amx_bf16, "amx_bf16").empty())
        continue;
      SCOPED_TRACE(std::string(s.name) + " against " + other.name);
      std::vector<float> theirs(size_t(M * N));
      table_product(table_of(other.table), x.data(), M, K, tw.w, 0, K, theirs.data(), N, false);
      int64_t bad = 0;
      for (int64_t m = 0; m < M; ++m) {
        for (int64_t n = 0; n < N; ++n) {
          const Reference r = reference(x.data() + m * K, tw.decoded.data() + n * K, K, 0.0);
          const float a = mine[size_t(m * N + n)], b = theirs[size_t(m * N + n)];
          if (!(std::fabs(double(a) - double(b)) <= 2 * r.bound) && bad++ < 5)
            ADD_FAILURE() << "m=" << m << " n=" << n << " " << a << " vs " << b;
        }
      }
      EXPECT_EQ(bad, 0);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Tables, GemmBf16Table, ::testing::ValuesIn(kTables),
                         [](const ::testing::TestParamInfo<TableCase>& info) {
                           return std::string(info.param.name);
                         });

}  // namespace
}  // namespace krea2
