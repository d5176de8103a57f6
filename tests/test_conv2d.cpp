// conv2d (tiles of a channels-last input region through the GEMM's register blocks, ops/conv2d_kernels.h)
// against its scalar double-accumulation reference: 3x3 and 1x1, with and without the fused nearest x2
// upsample, odd map sizes, channel counts that are not multiples of the SIMD widths, outputs narrower than
// and not a multiple of the microkernel's NR, accumulate, no bias, forced tile sizes and depth blocks,
// weights packed in advance (PackedConv2d), every ISA variant the CPU has.
#include <gtest/gtest.h>

#include <cmath>
#include <optional>
#include <string>

#include "ops/conv2d.h"
#include "ops/conv2d_onednn.h"
#include "support/scoped_isa.h"
#include "support/test_util.h"

namespace krea2 {
namespace {

constexpr double kUnitRoundoff = 0x1p-24;

struct Case {
  int64_t height, width, in, out, kernel;
  bool upsample, accumulate, bias;
};

// How check() runs conv2d: the weights as given (packed inside the call), packed in advance for the active
// ISA, or packed in advance for another ISA (conv2d then packs again for the one active).
enum class Weights { kPlain, kPacked, kPackedOtherIsa };

// Runs conv2d and the reference on random data; every output must lie within the float32 dot-product bound.
// Error model: each output is a sum of n = kernel^2 * in products plus the bias (plus y itself when
// accumulating), computed in float with any order of additions (the GEMM's blocking and FMAs). The classical
// bound is |fl(s) - s| <= gamma_{n+1} * sum |terms|, gamma_m = m u / (1 - m u), u = 2^-24, with the sum of
// absolute terms obtained exactly by running the reference on |x|, |w|, |b|. The one rounding of the
// reference's double result to float adds u |s|. Real bugs (a wrong tap, a shifted tile, a missed pad) move
// outputs by O(sum |terms|), thousands of times this bound.
void check(const Case& c, uint64_t seed, Weights mode = Weights::kPlain) {
  SCOPED_TRACE(::testing::Message() << c.height << "x" << c.width << " in " << c.in << " out " << c.out
                                    << " k " << c.kernel << (c.upsample ? " up" : "")
                                    << (c.accumulate ? " acc" : "") << (c.bias ? "" : " no-bias"));
  const int64_t K = c.kernel * c.kernel * c.in;
  const int64_t H = c.upsample ? 2 * c.height : c.height, W = c.upsample ? 2 * c.width : c.width;
  const std::vector<float> x = test::random_floats(size_t(c.height * c.width * c.in), seed);
  const std::vector<float> w = test::random_floats(size_t(c.out * K), seed + 1, 1.0f / std::sqrt(float(K)));
  const std::vector<float> b = test::random_floats(size_t(c.out), seed + 2, 0.5f);
  const std::vector<float> y0 = test::random_floats(size_t(H * W * c.out), seed + 3);
  Conv2dWeights cw{c.in, c.out, c.kernel, w.data(), c.bias ? b.data() : nullptr};
  std::vector<float> got = c.accumulate ? y0 : std::vector<float>(y0.size(), 1e30f);
  std::vector<float> ref = c.accumulate ? y0 : std::vector<float>(y0.size(), 0.0f);
  if (mode == Weights::kPlain) {
    conv2d(x.data(), c.height, c.width, cw, got.data(), c.upsample, c.accumulate);
  } else {
    const Isa other = active_isa() == Isa::kAvx512 ? Isa::kAvx2 : Isa::kAvx512;
    const PackedConv2d packed(cw, mode == Weights::kPacked || !isa_supported(other) ? active_isa() : other);
    EXPECT_GT(packed.bytes(), 0);
    conv2d(x.data(), c.height, c.width, packed, got.data(), c.upsample, c.accumulate);
  }
  conv2d_reference(x.data(), c.height, c.width, cw, ref.data(), c.upsample, c.accumulate);
  std::vector<float> ax(x.size()), aw(w.size()), ab(b.size()), abs_sum(y0.size());
  for (size_t i = 0; i < x.size(); ++i) ax[i] = std::fabs(x[i]);
  for (size_t i = 0; i < w.size(); ++i) aw[i] = std::fabs(w[i]);
  for (size_t i = 0; i < b.size(); ++i) ab[i] = std::fabs(b[i]);
  std::vector<float> ay0(y0.size());
  for (size_t i = 0; i < y0.size(); ++i) ay0[i] = std::fabs(y0[i]);
  if (c.accumulate) abs_sum = ay0;
  Conv2dWeights aw_c{c.in, c.out, c.kernel, aw.data(), c.bias ? ab.data() : nullptr};
  conv2d_reference(ax.data(), c.height, c.width, aw_c, abs_sum.data(), c.upsample, c.accumulate);
  const double m = double(K + 2) * kUnitRoundoff, gamma = m / (1.0 - m);
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs(double(got[i]) - ref[i]);
    const double bound = gamma * abs_sum[i] + kUnitRoundoff * std::fabs(ref[i]) + 1e-30;
    ASSERT_LE(err, bound) << "output " << i << " (pixel " << i / size_t(c.out) << ", channel "
                          << i % size_t(c.out) << "): got " << got[i] << ", reference " << ref[i];
    worst = std::max(worst, err / bound);
  }
  ::testing::Test::RecordProperty("worst_error_over_bound", std::to_string(worst));
}

TEST(Conv2d, ThreeByThreeOddSizes) {
  const Case cases[] = {
      {7, 5, 13, 19, 3, false, false, true},   {1, 1, 3, 2, 3, false, false, true},
      {3, 11, 5, 3, 3, false, false, true},    {1, 9, 17, 33, 3, false, false, false},
      {10, 14, 16, 32, 3, false, false, true}, {33, 29, 37, 70, 3, false, false, true},
      {21, 19, 8, 3, 3, false, true, true},
  };
  uint64_t seed = 1;
  for (const Case& c : cases) check(c, seed += 10);
}

TEST(Conv2d, FusedUpsample) {
  const Case cases[] = {
      {5, 7, 32, 16, 3, true, false, true}, {1, 1, 5, 7, 3, true, false, true},
      {9, 4, 19, 10, 3, true, true, true},  {17, 13, 24, 12, 3, true, false, false},
      {3, 5, 6, 9, 1, true, false, true},
  };
  uint64_t seed = 100;
  for (const Case& c : cases) check(c, seed += 10);
}

TEST(Conv2d, OneByOne) {
  const Case cases[] = {
      {10, 14, 16, 16, 1, false, false, true},
      {7, 3, 13, 39, 1, false, true, true},
      {1, 1, 1, 1, 1, false, false, false},
      {40, 37, 96, 192, 1, false, false, true},
  };
  uint64_t seed = 200;
  for (const Case& c : cases) check(c, seed += 10);
}

// Many small tiles (and tile edges inside image rows) give the same products.
TEST(Conv2d, ForcedTileSizes) {
  for (int64_t rows : {1, 7, 48, 100}) {
    SCOPED_TRACE(rows);
    set_conv2d_tile_rows(rows);
    check({23, 17, 11, 21, 3, false, false, true}, 300 + uint64_t(rows));
    check({12, 9, 20, 10, 3, true, true, true}, 400 + uint64_t(rows));
  }
  set_conv2d_tile_rows(0);
  EXPECT_EQ(conv2d_tile_rows(), 0);
}

using test::ScopedIsa;

// Sets the conv blocking for a scope and restores the defaults.
class ScopedConvBackend {
 public:
  explicit ScopedConvBackend(ConvBackend b) : saved_(conv2d_backend()) { set_conv2d_backend(b); }
  ~ScopedConvBackend() { set_conv2d_backend(saved_); }
  ScopedConvBackend(const ScopedConvBackend&) = delete;
  ScopedConvBackend& operator=(const ScopedConvBackend&) = delete;

 private:
  ConvBackend saved_;
};

class ScopedConvBlocking {
 public:
  explicit ScopedConvBlocking(Conv2dBlocking b) { set_conv2d_blocking(b); }
  ~ScopedConvBlocking() { set_conv2d_blocking({}); }
  ScopedConvBlocking(const ScopedConvBlocking&) = delete;
  ScopedConvBlocking& operator=(const ScopedConvBlocking&) = delete;
};

// Every variant (AVX2 6x16, AVX-512 12x32) over the shapes that reach its edges: outputs narrower than NR
// (3, the VAE's conv_out) and not a multiple of it, maps narrower than MR and 1 pixel, rows of the region
// that wrap inside a register block, channel counts off the SIMD widths, 3x3 and 1x1, upsample, accumulate,
// no bias.
class Conv2dIsa : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override {
    if (!isa_supported(GetParam()))
      GTEST_SKIP() << "the " << isa_name(GetParam())
                   << " conv2d variant is not tested on this machine: " << isa_missing(GetParam());
    isa_.emplace(GetParam());
    ASSERT_EQ(active_isa(), GetParam());
  }
  std::optional<ScopedIsa> isa_;
  ScopedConvBackend own_{ConvBackend::kOwn};  // our kernels, also for pre-packed weights
};

const Case kIsaCases[] = {
    {1, 1, 3, 2, 3, false, false, true},    {1, 1, 5, 3, 3, true, true, false},
    {1, 1, 7, 40, 1, false, false, true},   {1, 13, 9, 33, 3, false, false, true},
    {13, 1, 9, 17, 3, false, true, true},   {5, 5, 16, 32, 3, false, false, true},
    {7, 11, 13, 3, 3, false, false, true},  {7, 11, 13, 3, 3, false, true, false},
    {9, 14, 24, 64, 3, true, false, true},  {6, 7, 19, 45, 3, true, true, true},
    {12, 12, 96, 96, 3, false, true, true}, {11, 17, 33, 70, 1, false, false, true},
    {8, 9, 40, 20, 1, true, true, false},   {31, 27, 20, 48, 3, false, false, true},
    {25, 26, 17, 3, 3, false, false, true}, {4, 30, 160, 24, 3, false, false, true},
};

TEST_P(Conv2dIsa, EdgeShapes) {
  uint64_t seed = 1000;
  for (const Case& c : kIsaCases) check(c, seed += 10);
}

// Tiles of a few pixels (regions that wrap mid-row, tiles narrower than MR), depth blocks of one channel up
// to whole taps, each tap's channels split unevenly.
TEST_P(Conv2dIsa, ForcedBlocking) {
  const Conv2dBlocking blockings[] = {{1, 1, 1},      {5, 3, 7},    {13, 13, 16}, {40, 12, 48},
                                      {100, 7, 1000}, {24, 24, 50}, {0, 0, 0}};
  for (const Conv2dBlocking& b : blockings) {
    SCOPED_TRACE(::testing::Message()
                 << "tile " << b.tile_pixels << " width " << b.tile_width << " depth " << b.depth);
    const ScopedConvBlocking scope(b);
    EXPECT_EQ(conv2d_blocking().tile_pixels, b.tile_pixels);
    check({11, 9, 37, 35, 3, false, false, true}, 2000 + uint64_t(b.tile_pixels));
    check({6, 5, 21, 3, 3, true, true, true}, 2100 + uint64_t(b.tile_pixels));
    check({7, 8, 50, 33, 1, false, true, false}, 2200 + uint64_t(b.tile_pixels));
  }
}

// Weights packed in advance give the same products, also when packed for another ISA than the active one
// (conv2d packs again for the call).
TEST_P(Conv2dIsa, PackedWeights) {
  uint64_t seed = 3000;
  for (const Case& c : kIsaCases) {
    check(c, seed += 10, Weights::kPacked);
    check(c, seed += 10, Weights::kPackedOtherIsa);
  }
}

// Large enough to run on the whole team (many tiles shared dynamically).
TEST_P(Conv2dIsa, ManyTiles) {
  check({40, 37, 24, 40, 3, false, true, true}, 4000);
  check({21, 30, 16, 24, 3, true, false, true}, 4010, Weights::kPacked);
}

INSTANTIATE_TEST_SUITE_P(Variants, Conv2dIsa, ::testing::ValuesIn(kIsaLevels),
                         [](const ::testing::TestParamInfo<Isa>& info) {
                           return std::string(isa_name(info.param));
                         });

TEST(Conv2d, PackedConv2dReportsItsWeights) {
  const std::vector<float> w = test::random_floats(size_t(5 * 9 * 4), 7);
  const Conv2dWeights cw{4, 5, 3, w.data(), nullptr};
  const PackedConv2d p(cw);
  EXPECT_FALSE(p.empty());
  EXPECT_EQ(p.isa(), active_isa());
  EXPECT_EQ(p.weights().weight, w.data());
  EXPECT_EQ(p.bytes() % int64_t(9 * 4 * sizeof(float)), 0);
  EXPECT_GE(p.bytes(), int64_t(5 * 9 * 4 * sizeof(float)));
  EXPECT_TRUE(PackedConv2d().empty());
}

TEST(Conv2d, BadArgumentsThrow) {
  const float w[9] = {};
  EXPECT_THROW(conv2d(w, 1, 1, Conv2dWeights{1, 1, 2, w, nullptr}, nullptr), std::invalid_argument);
  EXPECT_THROW(conv2d(w, 0, 1, Conv2dWeights{1, 1, 3, w, nullptr}, nullptr), std::invalid_argument);
  EXPECT_THROW(conv2d(w, 1, 1, PackedConv2d(), nullptr), std::invalid_argument);
  EXPECT_THROW(PackedConv2d(Conv2dWeights{1, 1, 2, w, nullptr}), std::invalid_argument);
}

}  // namespace
}  // namespace krea2

namespace krea2 {
namespace {

// oneDNN's kernels behind conv2d(PackedConv2d) (builds with oneDNN): the direct kernel within the same
// float32 dot-product bound as ours (check()); the Winograd kernel, whose transforms round differently,
// within the project's accuracy rule (rel L2 <= 1e-5, max |error| <= 1e-4 max |ref|, as the upstream
// fixtures), on the channel counts it takes (multiples of 16) and the VAE's cases: fused upsample,
// accumulate, no bias.
class Conv2dOnednn : public ::testing::TestWithParam<ConvBackend> {
 protected:
  void SetUp() override {
    if (!onednn_available())
      GTEST_SKIP() << "this build has no oneDNN (libdnnl-dev): its conv path is not tested";
    backend_.emplace(GetParam());
  }
  std::optional<ScopedConvBackend> backend_;
};

const Case kOnednnCases[] = {
    {9, 14, 16, 16, 3, false, false, true},  {12, 10, 32, 48, 3, false, true, true},
    {10, 13, 48, 32, 3, true, false, true},  {16, 16, 96, 96, 3, false, true, false},
    {7, 9, 64, 16, 3, true, true, true},     {20, 12, 16, 3, 3, false, false, true},
    {11, 17, 13, 20, 3, false, false, true}, {8, 6, 24, 32, 3, true, true, true},
};

void check_rel_l2(const Case& c, uint64_t seed) {
  SCOPED_TRACE(::testing::Message() << c.height << "x" << c.width << " in " << c.in << " out " << c.out
                                    << (c.upsample ? " up" : "") << (c.accumulate ? " acc" : ""));
  const int64_t K = 9 * c.in, H = c.upsample ? 2 * c.height : c.height,
                W = c.upsample ? 2 * c.width : c.width;
  const std::vector<float> x = test::random_floats(size_t(c.height * c.width * c.in), seed);
  const std::vector<float> w = test::random_floats(size_t(c.out * K), seed + 1, 1.0f / std::sqrt(float(K)));
  const std::vector<float> b = test::random_floats(size_t(c.out), seed + 2, 0.5f);
  const std::vector<float> y0 = test::random_floats(size_t(H * W * c.out), seed + 3);
  const Conv2dWeights cw{c.in, c.out, 3, w.data(), c.bias ? b.data() : nullptr};
  std::vector<float> got = c.accumulate ? y0 : std::vector<float>(y0.size(), 1e30f);
  std::vector<float> ref = c.accumulate ? y0 : std::vector<float>(y0.size(), 0.0f);
  conv2d(x.data(), c.height, c.width, PackedConv2d(cw), got.data(), c.upsample, c.accumulate);
  conv2d_reference(x.data(), c.height, c.width, cw, ref.data(), c.upsample, c.accumulate);
  double num = 0, den = 0, max_err = 0, max_ref = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double d = double(got[i]) - ref[i];
    num += d * d, den += double(ref[i]) * ref[i];
    max_err = std::max(max_err, std::fabs(d)), max_ref = std::max(max_ref, std::fabs(double(ref[i])));
  }
  EXPECT_LE(std::sqrt(num / den), 1e-5);
  EXPECT_LE(max_err, 1e-4 * max_ref);
}

TEST_P(Conv2dOnednn, AgainstReference) {
  const int64_t before = onednn_conv2d_runs(GetParam()),
                before_any =
                    onednn_conv2d_runs(ConvBackend::kOnednn) + onednn_conv2d_runs(ConvBackend::kWinograd);
  uint64_t seed = 5000;
  for (const Case& c : kOnednnCases) {
    if (GetParam() == ConvBackend::kOnednn) {
      check(c, seed += 10, Weights::kPacked);
    } else {
      check_rel_l2(c, seed += 10);
    }
  }
  // The backend ran (not only a fallback to ours). oneDNN's Winograd kernels need AVX-512 (and see the ISA
  // cap); below it its direct kernel stands in.
  if (GetParam() == ConvBackend::kOnednn || active_isa() == Isa::kAvx512) {
    EXPECT_GT(onednn_conv2d_runs(GetParam()), before);
  } else {
    EXPECT_GT(onednn_conv2d_runs(ConvBackend::kOnednn) + onednn_conv2d_runs(ConvBackend::kWinograd),
              before_any);
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, Conv2dOnednn,
                         ::testing::Values(ConvBackend::kOnednn, ConvBackend::kWinograd),
                         [](const ::testing::TestParamInfo<ConvBackend>& info) {
                           return std::string(conv_backend_name(info.param));
                         });

TEST(Conv2dOnednn, BackendNames) {
  EXPECT_STREQ(conv_backend_name(ConvBackend::kWinograd), "winograd");
  if (!onednn_available()) {
    EXPECT_THROW(set_conv2d_backend(ConvBackend::kWinograd), std::invalid_argument);
  }
}

}  // namespace
}  // namespace krea2
