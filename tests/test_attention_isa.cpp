// Every attention kernel variant the CPU supports (forced with set_isa_cap) against the scalar reference, on
// many shapes: head dims 4..128 (multiples of 16 and not), GQA ratios 1..8, segment lengths around and off
// the tile sizes (48 queries, 96 keys; the AVX-512 blocks of 8 keys x 48 queries and 12 queries x 32
// columns), masks including fully masked segments and key tiles. Variants the CPU lacks are skipped with
// the missing feature named. Also checks that the AVX-512 variant reproduces the AVX2 one bit for bit (same
// math and summation order by design).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "cpu/cpu_features.h"
#include "ops/attention.h"
#include "support/test_util.h"

namespace krea2 {
namespace {

constexpr float kSentinel = 12345.5f;

struct Case {
  std::string name;
  AttentionShape shape;
  std::vector<Segment> segments;
  int64_t rows = 0;
  int mask = 0;  // 0: none; 1: ~30 % random; 2: random plus fully masked segments and key tiles
  float qk_scale = 1.0f;
};

std::vector<Case> make_cases() {
  std::vector<Case> cases;
  // Lengths off the tile sizes, tiny and multi-tile, with gap rows between segments.
  const std::vector<Segment> mixed = {{1, 1},    {2, 7},    {10, 13},   {23, 47}, {71, 50},
                                      {122, 95}, {217, 97}, {315, 193}, {509, 17}};
  for (int hd : {4, 5, 8, 12, 15, 16, 20, 24, 31, 32, 40, 48, 56, 64, 72, 80, 96, 100, 112, 120, 128}) {
    for (int ratio : {1, 2, 3, 4, 6, 8}) {
      if (hd > 64 && ratio == 6) continue;  // keep the run short; large dims still see 1, 2, 3, 4, 8
      const int kv = ratio >= 6 ? 1 : 2;
      Case c;
      c.name = "hd" + std::to_string(hd) + "_gqa" + std::to_string(ratio);
      c.shape = {ratio * kv, kv, hd};
      c.segments = mixed;
      c.rows = 527;
      c.mask = (hd + ratio) % 3;
      c.qk_scale = hd % 2 ? 2.0f : 1.0f;
      cases.push_back(c);
    }
  }
  // The main-block shape at a short length, and the text-fusion layout (many 12-row segments).
  cases.push_back({"main_48x12x128", {48, 12, 128}, {{0, 200}}, 200, 0, 1.0f});
  std::vector<Segment> tiny;
  for (int i = 0; i < 60; ++i) tiny.push_back({12 * i, 12});
  cases.push_back({"text_fusion_tiny", {20, 20, 128}, tiny, 720, 1, 1.0f});
  // Peaky and extreme scores: the running max jumps between key tiles, exp2 underflows.
  cases.push_back({"extreme_scores", {2, 1, 32}, {{0, 300}, {300, 10}}, 310, 0, 12.0f});
  cases.push_back({"long_segment", {4, 1, 64}, {{0, 1000}}, 1000, 2, 1.0f});
  // Causal (the text encoder's decoder layers): the Qwen3-VL shape, and mixed lengths with key masks.
  cases.push_back({"causal_32x8x128", {32, 8, 128}, {{0, 300, true}}, 300, 1, 1.0f});
  std::vector<Segment> causal_mixed = mixed;
  for (Segment& s : causal_mixed) s.causal = true;
  cases.push_back({"causal_mixed_hd16", {4, 2, 16}, causal_mixed, 527, 2, 1.0f});
  cases.push_back({"causal_mixed_hd40", {3, 1, 40}, causal_mixed, 527, 0, 2.0f});
  return cases;
}

const std::vector<Case>& cases() {
  static const std::vector<Case> c = make_cases();
  return c;
}

struct Inputs {
  std::vector<float> buf;
  std::vector<uint8_t> valid;
  int64_t ld = 0, q_off = 0, k_off = 0, v_off = 0;
  int64_t ldo = 0, col0 = 4;
  double tolerance = 0;
};

// q, k, v are unaligned column slices of one wide buffer; the output a slice of a sentinel-filled one.
Inputs make_inputs(const Case& c, uint64_t seed) {
  Inputs in;
  const int hd = c.shape.head_dim;
  const int64_t qw = int64_t(c.shape.num_heads) * hd, kw = int64_t(c.shape.num_kv_heads) * hd;
  in.q_off = 3, in.k_off = in.q_off + qw + 5, in.v_off = in.k_off + kw + 2, in.ld = in.v_off + kw + 7;
  in.ldo = qw + 9;
  in.buf = test::random_floats(size_t(c.rows * in.ld), seed);
  for (int64_t r = 0; r < c.rows; ++r)
    for (int64_t col = in.q_off; col < in.v_off; ++col) in.buf[size_t(r * in.ld + col)] *= c.qk_scale;
  if (c.mask) {
    const std::vector<float> u = test::random_floats(size_t(c.rows), seed + 7);
    in.valid.resize(size_t(c.rows));
    for (int64_t r = 0; r < c.rows; ++r) in.valid[size_t(r)] = u[size_t(r)] > -0.4f;
    if (c.mask == 2) {
      for (const Segment& s : c.segments) {
        if (s.length == 13 || s.length == 95)  // whole segments masked: their outputs must be exact zeros
          std::fill_n(in.valid.begin() + s.begin, s.length, 0);
        if (s.length > 2 * 96)  // a whole key tile in the middle of a long segment
          std::fill_n(in.valid.begin() + s.begin + 96, 96, 0);
      }
    }
  }
  // The error model of tests/test_attention.cpp: 2u max|v| (max|q| max|k| + sqrt(L) + 1).
  double max_q = 0, max_k = 0, max_v = 0;
  int64_t max_len = 0;
  for (const Segment& s : c.segments) max_len = std::max(max_len, s.length);
  for (int64_t r = 0; r < c.rows; ++r) {
    const float* row = in.buf.data() + r * in.ld;
    for (int h = 0; h < c.shape.num_heads; ++h) {
      double n = 0;
      for (int d = 0; d < hd; ++d) n += double(row[in.q_off + h * hd + d]) * row[in.q_off + h * hd + d];
      max_q = std::max(max_q, std::sqrt(n));
    }
    for (int h = 0; h < c.shape.num_kv_heads; ++h) {
      double n = 0;
      for (int d = 0; d < hd; ++d) n += double(row[in.k_off + h * hd + d]) * row[in.k_off + h * hd + d];
      max_k = std::max(max_k, std::sqrt(n));
    }
    max_v = std::max(max_v, test::max_abs(row + in.v_off, size_t(kw)));
  }
  in.tolerance = 2.0 * 0x1p-24 * max_v * (max_q * max_k + std::sqrt(double(max_len)) + 1.0);
  return in;
}

std::vector<float> run_fast(const Case& c, const Inputs& in) {
  std::vector<float> out(size_t(c.rows * in.ldo), kSentinel);
  const float* b = in.buf.data();
  attention(b + in.q_off, in.ld, b + in.k_off, in.ld, b + in.v_off, in.ld, out.data() + in.col0, in.ldo,
            c.shape, c.segments, in.valid.empty() ? nullptr : in.valid.data());
  return out;
}

std::vector<float> run_reference(const Case& c, const Inputs& in) {
  std::vector<float> out(size_t(c.rows * in.ldo), kSentinel);
  const float* b = in.buf.data();
  attention_reference(b + in.q_off, in.ld, b + in.k_off, in.ld, b + in.v_off, in.ld, out.data() + in.col0,
                      in.ldo, c.shape, c.segments, in.valid.empty() ? nullptr : in.valid.data());
  return out;
}

// Restores the cap after each test so later tests in this binary see the default level.
class IsaTest : public ::testing::Test {
 protected:
  void TearDown() override { set_isa_cap(detected_isa()); }
  // Forces `isa`; false (and the test is skipped) when the CPU lacks it.
  bool force(Isa isa) {
    if (!isa_supported(isa)) return false;
    set_isa_cap(isa);
    EXPECT_EQ(active_isa(), isa);
    EXPECT_EQ(std::string(attention_kernels_name()).rfind(isa_name(isa), 0), 0u) << attention_kernels_name();
    return true;
  }
};

class AttentionIsa : public IsaTest, public ::testing::WithParamInterface<std::tuple<Isa, size_t>> {};

TEST_P(AttentionIsa, MatchesReference) {
  const auto [isa, index] = GetParam();
  if (!force(isa)) GTEST_SKIP() << isa_name(isa) << " attention kernels not run: " << isa_missing(isa);
  const Case& c = cases()[index];
  const Inputs in = make_inputs(c, 1000 + index);
  const std::vector<float> fast = run_fast(c, in), ref = run_reference(c, in);

  const int64_t qw = int64_t(c.shape.num_heads) * c.shape.head_dim;
  std::vector<uint8_t> covered(size_t(c.rows), 0);
  for (const Segment& s : c.segments) std::fill_n(covered.begin() + s.begin, s.length, 1);
  double max_diff = 0;
  int64_t bad_margin = 0, non_finite = 0, nonzero_masked = 0;
  for (int64_t r = 0; r < c.rows; ++r) {
    for (int64_t col = 0; col < in.ldo; ++col) {
      const float f = fast[size_t(r * in.ldo + col)], g = ref[size_t(r * in.ldo + col)];
      if (!covered[size_t(r)] || col < in.col0 || col >= in.col0 + qw) {
        bad_margin += f != kSentinel;
        continue;
      }
      non_finite += !std::isfinite(f);
      nonzero_masked += g == 0.0f && f != 0.0f;  // the reference gives exact zeros only for empty segments
      max_diff = std::max(max_diff, std::fabs(double(f) - double(g)));
    }
  }
  EXPECT_EQ(bad_margin, 0) << "values written outside the segments / the output slice";
  EXPECT_EQ(non_finite, 0);
  EXPECT_EQ(nonzero_masked, 0) << "fully masked segments must give exact zeros";
  EXPECT_LE(max_diff, in.tolerance) << c.name;
}

INSTANTIATE_TEST_SUITE_P(All, AttentionIsa,
                         ::testing::Combine(::testing::ValuesIn(kIsaLevels),
                                            ::testing::Range(size_t(0), cases().size())),
                         [](const ::testing::TestParamInfo<AttentionIsa::ParamType>& info) {
                           return std::string(isa_name(std::get<0>(info.param))) + "_" +
                                  cases()[std::get<1>(info.param)].name;
                         });

// AVX-512 and AVX2 evaluate the same float operations in the same order, so their outputs are identical.
TEST_F(IsaTest, Avx512ReproducesAvx2BitForBit) {
  if (!isa_supported(Isa::kAvx512))
    GTEST_SKIP() << "avx512 attention kernels not run: " << isa_missing(Isa::kAvx512);
  for (size_t i = 0; i < cases().size(); i += 5) {
    const Case& c = cases()[i];
    const Inputs in = make_inputs(c, 77 + i);
    ASSERT_TRUE(force(Isa::kAvx2));
    const std::vector<float> a = run_fast(c, in);
    ASSERT_TRUE(force(Isa::kAvx512));
    const std::vector<float> b = run_fast(c, in);
    int64_t differ = 0;
    for (size_t j = 0; j < a.size(); ++j) differ += a[j] != b[j];
    EXPECT_EQ(differ, 0) << c.name;
  }
}

}  // namespace
}  // namespace krea2
