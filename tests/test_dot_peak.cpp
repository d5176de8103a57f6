// The dot-product peaks: the chains compute what the instructions define (so the loop that is timed is the
// one named, with its operands in the right places), the peaks are positive and finite where the CPU has the
// unit, and a missing unit is named.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <vector>

#include "bench/dot_peak.h"
#include "bench/dot_peak_chains.h"

namespace krea2 {
namespace {

class DotPeakTest : public ::testing::TestWithParam<DotUnit> {
 protected:
  void SetUp() override {
    if (!dot_unit_supported(GetParam()))
      GTEST_SKIP() << dot_unit_name(GetParam()) << " not run: " << dot_unit_missing(GetParam());
  }
};

// Accumulator (chain j, lane l) starts at a value of its own, so a lane or chain left out or mixed up shows.
int32_t start_value(int j, int l) {
  return 100 * j + l;
}

TEST_P(DotPeakTest, ChainsComputeTheDotProduct) {
  const DotChains& chains = dot_chains(GetParam());
  ASSERT_GT(chains.chains, 0);
  const bool bf16 = GetParam() == DotUnit::kBf16Avx512;
  std::vector<uint32_t> acc(size_t(chains.chains) * size_t(chains.lanes));
  for (int j = 0; j < chains.chains; ++j)
    for (int l = 0; l < chains.lanes; ++l) {
      const int32_t v = start_value(j, l);
      acc[size_t(j) * chains.lanes + l] = bf16 ? std::bit_cast<uint32_t>(float(v)) : uint32_t(v);
    }
  constexpr int64_t kIters = 1000;
  if (bf16) {
    // a = (1, 2), b = (0.5, 0.25) as bf16 pairs, the even element in the low half: 1 x 0.5 + 2 x 0.25 = 1
    // (pairing the even element of one with the odd of the other would give 1.25). Exact in float32.
    chains.run(kIters, 0x40003F80u, 0x3E803F00u, acc.data());
  } else {
    // a = u8 (1, 2, 3, 200), b = s8 (-1, 1, -2, 1), the first byte the lowest: -1 + 2 - 6 + 200 = 195 (with
    // the signedness swapped: 255 + 2 + 762 - 56 = 963).
    chains.run(kIters, 0xC8030201u, 0x01FE01FFu, acc.data());
  }
  const int32_t per_iter = bf16 ? 1 : 195;
  for (int j = 0; j < chains.chains; ++j)
    for (int l = 0; l < chains.lanes; ++l) {
      const uint32_t got = acc[size_t(j) * chains.lanes + l];
      const int32_t want = start_value(j, l) + int32_t(kIters) * per_iter;
      if (bf16)
        ASSERT_EQ(std::bit_cast<float>(got), float(want)) << "chain " << j << " lane " << l;
      else
        ASSERT_EQ(int32_t(got), want) << "chain " << j << " lane " << l;
    }
}

TEST_P(DotPeakTest, PeakIsPositiveAndFinite) {
  const double gops = measure_dot_peak_gops(1, GetParam());
  EXPECT_GT(gops, 0.0);
  EXPECT_TRUE(std::isfinite(gops));
  // The timed loop of the same instructions, as a kernel ceiling would use it.
  const double s = dot_chains_seconds(1, 1 << 16, GetParam());
  EXPECT_GT(s, 0.0);
  EXPECT_TRUE(std::isfinite(s));
}

INSTANTIATE_TEST_SUITE_P(Units, DotPeakTest, ::testing::ValuesIn(kDotUnits),
                         [](const ::testing::TestParamInfo<DotUnit>& info) {
                           switch (info.param) {
                             case DotUnit::kBf16Avx512:
                               return std::string("Bf16Avx512");
                             case DotUnit::kInt8Avx512:
                               return std::string("Int8Avx512");
                             case DotUnit::kInt8AvxVnni:
                               return std::string("Int8AvxVnni");
                           }
                           return std::string("Unknown");
                         });

TEST(DotPeak, InstructionOpsCountTwoPerMultiplyAdd) {
  EXPECT_EQ(dot_instruction_ops(DotUnit::kBf16Avx512), 64);   // 16 lanes x 2 products x 2
  EXPECT_EQ(dot_instruction_ops(DotUnit::kInt8Avx512), 128);  // 16 lanes x 4 products x 2
  EXPECT_EQ(dot_instruction_ops(DotUnit::kInt8AvxVnni), 64);  // 8 lanes x 4 products x 2
}

TEST(DotPeak, MissingFeaturesAreNamed) {
  CpuFeatures f;
  f.avx2 = f.fma = f.f16c = f.os_ymm = true;
  f.avx512f = f.avx512bw = f.avx512vl = f.avx512dq = f.os_zmm = true;
  f.avx512_bf16 = f.avx512_vnni = f.avx_vnni = true;
  for (DotUnit u : kDotUnits) EXPECT_EQ(dot_unit_missing(u, f), "") << dot_unit_name(u);
  CpuFeatures no_bf16 = f;
  no_bf16.avx512_bf16 = false;
  EXPECT_EQ(dot_unit_missing(DotUnit::kBf16Avx512, no_bf16), "the CPU lacks avx512_bf16");
  EXPECT_EQ(dot_unit_missing(DotUnit::kInt8Avx512, no_bf16), "");
  CpuFeatures no_avx512 = f;  // e.g. Alder Lake: AVX-VNNI without AVX-512
  no_avx512.avx512f = no_avx512.avx512bw = no_avx512.avx512vl = no_avx512.avx512dq = false;
  no_avx512.avx512_bf16 = no_avx512.avx512_vnni = false;
  EXPECT_EQ(dot_unit_missing(DotUnit::kInt8Avx512, no_avx512),
            "the CPU lacks avx512f, avx512bw, avx512vl, avx512dq, avx512_vnni");
  EXPECT_EQ(dot_unit_missing(DotUnit::kInt8AvxVnni, no_avx512), "");
  CpuFeatures no_vnni = f;
  no_vnni.avx_vnni = false;
  EXPECT_EQ(dot_unit_missing(DotUnit::kInt8AvxVnni, no_vnni), "the CPU lacks avx_vnni");
}

}  // namespace
}  // namespace krea2
