// Every GEMM variant this CPU supports (ops/gemm_kernels.h: avx2 6x16, avx512 12x32), each selected through
// the ISA cap, against a float64 reference on every weight storage type: F32 / BF16 / F16 read in place (at
// the weakest alignment an mmap gives), per-tensor scaled F32, Q8_0, Q4_0, Q5_1, Q4_K, Q6_K, Q2_K, F8_E4M3 /
// F8_E5M2 with their tensor scale, and I8 convrot (row scales + Hadamard rotation). Shapes hit every edge of
// both register blocks (M < MR, M % MR, N % NR, N < NR), K not a multiple of KC (default and small
// blockings), accumulate on and off, row phases, several products sharing x, both thread counts. A variant
// the CPU lacks is skipped with the missing feature named.
//
// Reference and bound as in test_gemm.cpp: the weight is decoded by the scalar reference decoders
// (decode_weight_row_reference; the GEMM's own decoders are bit-identical to them, tests/test_decode.cpp),
// the product summed in float64, and each output must lie within gamma_{K+2} (sum_k |x_k w_k| + |y0|) +
// u |ref| of it: the GEMM forms every output as per-KC-block FMA chains added into y, at most K + 2 roundings
// per term for any KC.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "cpu/cpu_features.h"
#include "model/weight_encode.h"
#include "ops/gemm.h"
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

using test::ScopedIsa;

// Sets a variant's blocking for a scope and restores it.
class ScopedBlocking {
 public:
  ScopedBlocking(Isa isa, GemmBlocking b) : isa_(isa), saved_(gemm_blocking(isa)) {
    set_gemm_blocking(b, isa);
  }
  ~ScopedBlocking() { set_gemm_blocking(saved_, isa_); }
  ScopedBlocking(const ScopedBlocking&) = delete;
  ScopedBlocking& operator=(const ScopedBlocking&) = delete;

 private:
  Isa isa_;
  GemmBlocking saved_;
};

// How a test weight is stored.
struct Storage {
  DType dtype;
  const char* name;
  int64_t rotation_group = 0;  // I8 convrot
  float extra_scale = 1.0f;    // F32 with a per-tensor scale (not plain: goes through the decoder)
};

const Storage kStorages[] = {{DType::F32, "F32"},
                             {DType::BF16, "BF16"},
                             {DType::F16, "F16"},
                             {DType::F32, "F32 scaled", 0, 0.75f},
                             {DType::Q8_0, "Q8_0"},
                             {DType::Q4_0, "Q4_0"},
                             {DType::Q5_1, "Q5_1"},
                             {DType::Q4_K, "Q4_K"},
                             {DType::Q6_K, "Q6_K"},
                             {DType::Q2_K, "Q2_K"},
                             {DType::F8_E4M3, "F8_E4M3"},
                             {DType::F8_E5M2, "F8_E5M2"},
                             {DType::I8, "I8 convrot G16", 16}};

// A weight encoded as `s`, its bytes at an odd offset past 64-byte alignment (2 bytes: the weakest an mmap'd
// 16-bit tensor has), with the reference-decoded values.
struct TestWeight {
  std::vector<std::byte> bytes;
  std::vector<float> row_scales;
  std::vector<float> decoded;  // N x K
  WeightMatrix w;

  TestWeight(const Storage& s, int64_t N, int64_t K, uint64_t seed) {
    const std::vector<float> v = test::random_floats(size_t(N * K), seed, 0.5f);
    RowEncoding enc{s.dtype, 1.0f, s.rotation_group};
    if (s.dtype == DType::F8_E4M3 || s.dtype == DType::F8_E5M2) {
      float max_abs = 0;
      for (float f : v) max_abs = std::max(max_abs, std::fabs(f));
      enc.scale = fp8_tensor_scale(s.dtype, max_abs);
    }
    const int64_t row_bytes = dtype_row_bytes(s.dtype, K);
    bytes.assign(size_t(N * row_bytes + 128), std::byte{0});
    const auto base = reinterpret_cast<uintptr_t>(bytes.data());
    std::byte* p = bytes.data() + ((64 - base % 64) % 64) + 2;
    row_scales.assign(size_t(N), 0.0f);
    if (N * K > 0) encode_rows(enc, v.data(), N, K, p, row_scales.data());
    w = WeightMatrix{s.dtype, N, K, p};
    w.scale = enc.scale * s.extra_scale;
    if (s.dtype == DType::I8) {
      w.row_scales = row_scales.data();
      w.rotation_group = s.rotation_group;
    }
    decoded.assign(size_t(N * K), 0.0f);
    for (int64_t n = 0; n < N && K > 0; ++n) decode_weight_row_reference(w, n, decoded.data() + n * K);
  }
};

// Checks y (M x N, stride ldy; columns past N must still hold kSentinel) against the float64 product.
// Returns the number of bad elements (the first few are reported).
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
      double sum = 0.0, abs_sum = 0.0;
      for (int64_t k = 0; k < K; ++k) {
        const double t = double(x[size_t(m * ldx + k)]) * double(tw.decoded[size_t(n * K + k)]);
        sum += t;
        abs_sum += std::fabs(t);
      }
      const double base = accumulate ? double(y0[size_t(m * ldy + n)]) : 0.0;
      const double want = base + sum;
      const double bound = gamma_n(double(K + 2)) * (abs_sum + std::fabs(base)) + kU * std::fabs(want);
      if (!(std::fabs(double(got) - want) <= bound) && bad++ < 5)
        ADD_FAILURE() << "m=" << m << " n=" << n << " got " << got << " want " << want << " bound " << bound;
    }
  }
  return bad;
}

// One gemm_xwt call on a fresh weight; false on a mismatch.
bool check_case(const Storage& s, int64_t M, int64_t N, int64_t K, bool accumulate, uint64_t seed) {
  SCOPED_TRACE(std::string(s.name) + " M=" + std::to_string(M) + " N=" + std::to_string(N) +
               " K=" + std::to_string(K) + (accumulate ? " accumulate" : "") + " gemm " + gemm_kernel_name());
  const int64_t ldx = K + 3, ldy = N + 5;
  const std::vector<float> x = test::random_floats(size_t(std::max<int64_t>(M * ldx, 1)), seed);
  const TestWeight tw(s, N, K, seed + 1);
  std::vector<float> y(size_t(M * ldy), kSentinel);
  const std::vector<float> vals = test::random_floats(size_t(M * N), seed + 2, 4.0f);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) y[size_t(m * ldy + n)] = vals[size_t(m * N + n)];
  const std::vector<float> y0 = y;
  gemm_xwt(x.data(), M, ldx, tw.w, y.data(), ldy, accumulate);
  return check_output(x, M, ldx, tw, y, y0, ldy, accumulate) == 0;
}

// Depths per storage: whole blocks (32 for the legacy formats, 256 for the K formats, the group for convrot),
// not multiples of the default KC (256) where the block allows.
std::vector<int64_t> depths(const Storage& s) {
  const int64_t unit = s.rotation_group ? s.rotation_group : dtype_block_elements(s.dtype);
  if (unit == 1) return {1, 7, 16, 257, 600};
  if (unit == 256) return {256, 768};
  return {unit, 3 * unit, 9 * unit + (unit == 32 ? 0 : unit), 17 * unit};
}

class GemmIsa : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override {
    if (!isa_supported(GetParam()))
      GTEST_SKIP() << "the " << isa_name(GetParam())
                   << " GEMM variant is not tested on this machine: " << isa_missing(GetParam());
    isa_.emplace(GetParam());
    ASSERT_EQ(active_isa(), GetParam());
  }
  std::optional<ScopedIsa> isa_;
};

TEST_P(GemmIsa, VariantIsSelected) {
  const std::string name = gemm_kernel_name();
  EXPECT_EQ(name.rfind(isa_name(GetParam()), 0), 0u) << name;
  // mc and nc round up to the variant's MR and NR: 1 becomes one register block.
  ScopedBlocking b(GetParam(), {1, 7, 1, 100});
  const GemmBlocking got = gemm_blocking();
  const int64_t mr = got.mc, nr = got.nc;
  EXPECT_EQ(gemm_microkernel_flops(), 2 * mr * nr * kGemmMicrokernelDepth);
  EXPECT_EQ(mr * nr, GetParam() == Isa::kAvx512 ? 12 * 32 : 6 * 16);
}

// Every storage over the edge shapes, default blocking, overwrite and accumulate.
TEST_P(GemmIsa, EveryStorageAndEdgeShape) {
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

// Small blocks: many MC / KC / NC blocks per product (KC not a multiple of the block size of most formats, so
// the decoder sees misaligned segments), edges inside every block; and one depth per block.
TEST_P(GemmIsa, SmallBlocking) {
  for (const GemmBlocking& b :
       {GemmBlocking{24, 40, 64, int64_t(1) << 20}, GemmBlocking{12, 1, 32, 1 << 20}}) {
    ScopedBlocking scoped(GetParam(), b);
    SCOPED_TRACE("kc=" + std::to_string(b.kc));
    uint64_t seed = 100;
    for (const Storage& s : kStorages) {
      const int64_t K = depths(s)[1];
      ASSERT_TRUE(check_case(s, 37, 75, K, seed % 2 == 0, seed));
      ++seed;
      if (b.kc > 1) {
        ASSERT_TRUE(check_case(s, 12, 96, K, true, seed++));
      }
    }
  }
}

// Large enough products for the whole team (column chunks, rows split for narrow N), and row phases.
TEST_P(GemmIsa, ThreadsAndRowPhases) {
  for (int64_t limit : {int64_t(24) << 20, int64_t(50 * 300)}) {
    ScopedBlocking scoped(GetParam(), {gemm_blocking().mc, gemm_blocking().kc, gemm_blocking().nc, limit});
    SCOPED_TRACE("pack_limit=" + std::to_string(limit));
    for (int threads : {1, 2}) {
      SCOPED_TRACE("threads=" + std::to_string(threads));
      const int saved = omp_get_max_threads();
      omp_set_num_threads(threads);
      bool ok = true;
      ok = ok && check_case(kStorages[0], 250, 333, 300, false, 300);
      ok = ok && check_case(kStorages[1], 301, 32, 600, true, 301);
      ok = ok && check_case(kStorages[4], 130, 500, 320, false, 302);  // Q8_0
      ok = ok && check_case(kStorages[7], 77, 260, 512, true, 303);    // Q4_K
      ok = ok && check_case(kStorages[12], 64, 200, 272, false, 304);  // I8 convrot
      omp_set_num_threads(saved);
      ASSERT_TRUE(ok);
    }
  }
}

// Several products sharing x, mixed storages and widths.
TEST_P(GemmIsa, ManyProductsMixedStorage) {
  const int64_t M = 53, K = 512;
  const std::vector<float> x = test::random_floats(size_t(M * K), 900);
  const std::vector<std::pair<int64_t, int>> shapes = {{100, 0},  {32, 4}, {77, 7},
                                                       {300, 10}, {1, 12}, {45, 2}};
  for (bool acc : {false, true}) {
    SCOPED_TRACE(acc ? "accumulate" : "overwrite");
    std::vector<TestWeight> ws;
    std::vector<std::vector<float>> ys;
    std::vector<GemmProduct> products;
    for (size_t j = 0; j < shapes.size(); ++j) {
      ws.emplace_back(kStorages[size_t(shapes[j].second)], shapes[j].first, K, 910 + j);
      const int64_t ldy = shapes[j].first + int64_t(j);
      std::vector<float> y(size_t(M * ldy), kSentinel);
      const std::vector<float> v = test::random_floats(size_t(M * ldy), 920 + j);
      for (int64_t m = 0; m < M; ++m)
        for (int64_t n = 0; n < shapes[j].first; ++n) y[size_t(m * ldy + n)] = v[size_t(m * ldy + n)];
      ys.push_back(std::move(y));
    }
    const std::vector<std::vector<float>> y0s = ys;
    for (size_t j = 0; j < shapes.size(); ++j)
      products.push_back({ws[j].w, ys[j].data(), shapes[j].first + int64_t(j)});
    gemm_xwt_many(x.data(), M, K, products, acc);
    for (size_t j = 0; j < shapes.size(); ++j) {
      SCOPED_TRACE("product " + std::to_string(j) + " " + kStorages[size_t(shapes[j].second)].name);
      EXPECT_EQ(check_output(x, M, K, ws[j], ys[j], y0s[j], shapes[j].first + int64_t(j), acc), 0);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Variants, GemmIsa, ::testing::ValuesIn(kIsaLevels),
                         [](const ::testing::TestParamInfo<Isa>& info) {
                           return std::string(isa_name(info.param));
                         });

}  // namespace
}  // namespace krea2
