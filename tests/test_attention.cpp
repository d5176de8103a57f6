// Tiled attention (ops/attention.h) against the scalar double-precision reference: head dims, GQA / MQA,
// strided operands, segments (odd, tiny, many, long), key masks, and the rows it must leave alone.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "krea2/error.h"
#include "ops/attention.h"
#include "support/test_util.h"

namespace krea2 {
namespace {

constexpr float kSentinel = 12345.5f;
constexpr double kUnitRoundoff = 0x1p-24;  // float32

struct Problem {
  AttentionShape shape;
  int64_t rows = 0;
  std::vector<Segment> segments;
  std::vector<uint8_t> key_valid;  // empty: no mask
  float qk_scale = 1.0f;           // q and k are uniform(-qk_scale, qk_scale): larger means a peakier softmax
  uint64_t seed = 1;
};

struct Outcome {
  std::vector<float> fast, ref;  // whole output buffers (with the sentinel-filled margins)
  int64_t ldo = 0, col0 = 0;     // row stride and first column of the output slice
  double tolerance = 0;
};

// Runs both implementations on one problem. q, k and v are column slices of a single wide buffer (row stride
// larger than each width, unaligned column offsets), and the output is a slice of a wider sentinel-filled
// buffer, so the test also covers strides and writes outside the slice.
Outcome run(const Problem& p) {
  const int hd = p.shape.head_dim;
  const int64_t qw = int64_t(p.shape.num_heads) * hd, kw = int64_t(p.shape.num_kv_heads) * hd;
  const int64_t q_off = 3, k_off = q_off + qw + 5, v_off = k_off + kw + 2, ld = v_off + kw + 7;
  std::vector<float> in = test::random_floats(size_t(p.rows * ld), p.seed);
  for (int64_t r = 0; r < p.rows; ++r)
    for (int64_t c = q_off; c < v_off; ++c) in[size_t(r * ld + c)] *= p.qk_scale;
  const float* q = in.data() + q_off;
  const float* k = in.data() + k_off;
  const float* v = in.data() + v_off;

  Outcome o;
  o.col0 = 4;
  o.ldo = qw + 9;
  o.fast.assign(size_t(p.rows * o.ldo), kSentinel);
  o.ref = o.fast;
  const uint8_t* mask = p.key_valid.empty() ? nullptr : p.key_valid.data();
  attention(q, ld, k, ld, v, ld, o.fast.data() + o.col0, o.ldo, p.shape, p.segments, mask);
  attention_reference(q, ld, k, ld, v, ld, o.ref.data() + o.col0, o.ldo, p.shape, p.segments, mask);

  // Error model (u = 2^-24; the fast kernel accumulates in float, the reference in double):
  //  * a score is a float dot product of head_dim terms, scaled by 1/sqrt(head_dim); its rounding errors add
  //    up like a random walk, |d score| ~ u * sqrt(head_dim) * sum_d |q_d k_d| / sqrt(head_dim) <= u |q| |k|
  //    (Cauchy-Schwarz). A score error e scales that key's probability by (1 + e), so the output (a convex
  //    combination of v rows) moves by <= ~e * max|v|. The exp2 polynomial (<= 1.4 u) and folding the scale
  //    into q (~2 u) are of the same order and covered by the constant below.
  //  * the float sums over L keys of p * v and of p: ~ u * sqrt(L) * max|v| (random walk again).
  // So |fast - ref| <~ u * max|v| * (max|q| max|k| + sqrt(L) + 1), with a factor 2 for the maximum over up to
  // ~10^6 outputs. Observed errors are 1-3 float ulps of the outputs, 15-100x below this bound; real bugs
  // (a wrong kv head, a missed rescale, a mask slip) give errors of 1e-3 and more.
  double max_q = 0, max_k = 0, max_v = 0;
  for (int64_t r = 0; r < p.rows; ++r) {
    for (int h = 0; h < p.shape.num_heads; ++h) {
      double n = 0;
      for (int d = 0; d < hd; ++d)
        n += double(q[r * ld + int64_t(h) * hd + d]) * q[r * ld + int64_t(h) * hd + d];
      max_q = std::max(max_q, std::sqrt(n));
    }
    for (int h = 0; h < p.shape.num_kv_heads; ++h) {
      double n = 0;
      for (int d = 0; d < hd; ++d)
        n += double(k[r * ld + int64_t(h) * hd + d]) * k[r * ld + int64_t(h) * hd + d];
      max_k = std::max(max_k, std::sqrt(n));
    }
    max_v = std::max(max_v, test::max_abs(v + r * ld, size_t(kw)));
  }
  int64_t max_len = 0;
  for (const Segment& s : p.segments) max_len = std::max(max_len, s.length);
  o.tolerance = 2.0 * kUnitRoundoff * max_v * (max_q * max_k + std::sqrt(double(max_len)) + 1.0);
  return o;
}

// Compares fast against reference inside the segments and checks that everything else still holds the
// sentinel.
void check(const Problem& p, const Outcome& o) {
  const int64_t qw = int64_t(p.shape.num_heads) * p.shape.head_dim;
  std::vector<uint8_t> covered(size_t(p.rows), 0);
  for (const Segment& s : p.segments) std::fill_n(covered.begin() + s.begin, s.length, 1);
  double max_diff = 0, max_ref = 0;
  int64_t bad_margin = 0, non_finite = 0;
  for (int64_t r = 0; r < p.rows; ++r) {
    const float* f = o.fast.data() + r * o.ldo;
    const float* g = o.ref.data() + r * o.ldo;
    for (int64_t c = 0; c < o.ldo; ++c) {
      const bool inside = covered[size_t(r)] && c >= o.col0 && c < o.col0 + qw;
      if (!inside) {
        bad_margin += f[c] != kSentinel;
        continue;
      }
      non_finite += !std::isfinite(f[c]);
      max_diff = std::max(max_diff, std::fabs(double(f[c]) - double(g[c])));
      max_ref = std::max(max_ref, std::fabs(double(g[c])));
    }
  }
  EXPECT_EQ(bad_margin, 0) << "values written outside the segments / the output slice";
  EXPECT_EQ(non_finite, 0);
  EXPECT_LE(max_diff, o.tolerance) << "max |ref| " << max_ref;
  EXPECT_GT(max_ref, 0.0);
}

void run_and_check(const Problem& p) {
  const Outcome o = run(p);
  check(p, o);
}

Problem make(int heads, int kv_heads, int head_dim, std::vector<Segment> segments, int64_t rows = -1) {
  Problem p;
  p.shape = {heads, kv_heads, head_dim};
  p.segments = std::move(segments);
  if (rows < 0) {
    rows = 0;
    for (const Segment& s : p.segments) rows = std::max(rows, s.begin + s.length);
  }
  p.rows = rows;
  return p;
}

// Lengths around the tile sizes (48 queries, 96 keys) plus tiny ones; gap rows (0 and 5) outside segments.
std::vector<Segment> mixed_segments() {
  return {{1, 1}, {2, 3}, {6, 48}, {54, 49}, {103, 97}, {201, 130}, {332, 12}};
}

class HeadDim : public ::testing::TestWithParam<int> {};

TEST_P(HeadDim, MatchesReference) {
  Problem p = make(4, 2, GetParam(), mixed_segments(), 345);
  p.seed = uint64_t(GetParam());
  run_and_check(p);
}

INSTANTIATE_TEST_SUITE_P(Attention, HeadDim, ::testing::Values(1, 5, 8, 16, 20, 24, 64, 96, 128, 136, 256));

TEST(Attention, MultiQuery) {
  Problem p = make(8, 1, 64, mixed_segments(), 345);
  run_and_check(p);
}

TEST(Attention, GroupedQuery48x12) {
  // The main-block ratio (4 query heads per kv head) at full head dim.
  Problem p = make(48, 12, 128, {{0, 150}, {150, 7}});
  run_and_check(p);
}

TEST(Attention, GroupedQueryUnevenBlocks) {
  // 6 query heads per kv head: the work items split a group into two blocks of 3.
  Problem p = make(12, 2, 32, {{0, 200}});
  run_and_check(p);
}

TEST(Attention, GroupedQueryLargeGroup) {
  // 10 query heads per kv head: blocks of 4, 4 and 2.
  Problem p = make(10, 1, 16, {{0, 100}, {100, 20}});
  run_and_check(p);
}

TEST(Attention, EqualHeads) {
  Problem p = make(20, 20, 128, {{0, 100}, {100, 12}, {112, 3}});
  run_and_check(p);
}

TEST(Attention, PeakySoftmax) {
  // Scores with a std of ~3 -- peaked rows, where the running max moves a lot between key tiles.
  Problem p = make(4, 2, 64, mixed_segments(), 345);
  p.qk_scale = 3.0f;
  run_and_check(p);
}

TEST(Attention, ExtremeScores) {
  // Score std ~50, differences of a few hundred: exp underflows (the kernel's exp2 clamps at 2^-126) and the
  // running max jumps by far more than the float exponent range between key tiles.
  Problem p = make(2, 1, 32, {{0, 300}, {300, 10}});
  p.qk_scale = 12.0f;
  run_and_check(p);
}

TEST(Attention, SegmentsOutOfOrderWithGaps) {
  Problem p = make(6, 3, 24, {{300, 61}, {5, 1}, {100, 150}, {20, 3}, {40, 55}}, 400);
  run_and_check(p);
}

TEST(Attention, ManyTinySegments) {
  // Text fusion layout: 500 tokens x 12 tapped layers, every token its own segment.
  std::vector<Segment> segments;
  for (int i = 0; i < 500; ++i) segments.push_back({12 * i, 12});
  Problem p = make(20, 20, 128, segments);
  run_and_check(p);
}

TEST(Attention, ManyVeryShortSegments) {
  std::vector<Segment> segments;
  int64_t row = 0;
  for (int i = 0; i < 300; ++i) {
    const int64_t len = 1 + (i * 7) % 11;  // lengths 1..11
    segments.push_back({row, len});
    row += len + (i % 5 == 0);  // an occasional gap row
  }
  Problem p = make(8, 4, 16, segments, row + 1);
  run_and_check(p);
}

TEST(Attention, LongSegment) {
  Problem p = make(4, 1, 64, {{0, 1100}});
  run_and_check(p);
}

TEST(Attention, FullyMaskedSegmentGivesZerosAndSparesTheOthers) {
  Problem p = make(4, 2, 32, {{0, 40}, {40, 150}, {190, 12}, {202, 5}});
  p.key_valid.assign(size_t(p.rows), 1);
  std::fill_n(p.key_valid.begin() + 40, 150, 0);  // the long segment: all keys masked (two key tiles)
  std::fill_n(p.key_valid.begin() + 202, 5, 0);   // a tiny one too
  p.key_valid[3] = p.key_valid[17] = 0;           // partial mask elsewhere
  const Outcome o = run(p);
  check(p, o);
  const int64_t qw = int64_t(p.shape.num_heads) * p.shape.head_dim;
  for (const Segment& s : {p.segments[1], p.segments[3]})
    for (int64_t r = s.begin; r < s.begin + s.length; ++r)
      for (int64_t c = 0; c < qw; ++c)
        ASSERT_EQ(o.fast[size_t(r * o.ldo + o.col0 + c)], 0.0f) << r << "," << c;
}

TEST(Attention, PartialMasks) {
  Problem p = make(6, 2, 40, mixed_segments(), 345);
  p.key_valid.resize(size_t(p.rows));
  std::vector<float> u = test::random_floats(size_t(p.rows), 99);
  for (int64_t r = 0; r < p.rows; ++r) p.key_valid[size_t(r)] = u[size_t(r)] > -0.4f;  // ~30 % masked
  p.key_valid[1] = 1;                                                                  // the 1-row segment
  run_and_check(p);
}

TEST(Attention, MaskedWholeKeyTiles) {
  // In a 300-row segment: the first key tile (rows 0..95) and the third (192..287) fully masked, so the first
  // tile that is processed is not the first tile, and a later one is skipped between processed ones.
  Problem p = make(4, 1, 64, {{0, 300}});
  p.key_valid.assign(300, 1);
  std::fill_n(p.key_valid.begin(), 96, 0);
  std::fill_n(p.key_valid.begin() + 192, 96, 0);
  run_and_check(p);
}

TEST(Attention, SingleValidKeyFarIntoALongSegment) {
  Problem p = make(2, 1, 8, {{0, 500}});
  p.key_valid.assign(500, 0);
  p.key_valid[437] = 1;
  const Outcome o = run(p);
  check(p, o);
}

// Causal segments: query i sees keys 0..i of its segment, across tile boundaries (48 queries, 96 keys).
std::vector<Segment> causal(std::vector<Segment> segments) {
  for (Segment& s : segments) s.causal = true;
  return segments;
}

TEST(Attention, CausalMatchesReference) {
  for (int hd : {8, 16, 64, 128}) {
    Problem p = make(8, 2, hd, causal(mixed_segments()), 345);
    p.seed = uint64_t(hd) + 40;
    run_and_check(p);
  }
}

TEST(Attention, CausalLongSegmentWithRightPadding) {
  // The text encoder's layout: prompt, padding keys (never attended to), then the suffix.
  Problem p = make(32, 8, 128, {{0, 300, true}});
  p.key_valid.assign(300, 1);
  std::fill(p.key_valid.begin() + 150, p.key_valid.begin() + 290, 0);
  run_and_check(p);
}

TEST(Attention, CausalQueriesWithNoVisibleKeyGetZeros) {
  // The first 100 keys masked: queries 0..99 see no key at or before them (exact zeros, as the reference),
  // later ones see only keys from 100 on; the first key tile holds no visible key for many query lanes.
  Problem p = make(4, 4, 32, {{0, 250, true}});
  p.key_valid.assign(250, 1);
  std::fill_n(p.key_valid.begin(), 100, 0);
  const Outcome o = run(p);
  check(p, o);
  for (int64_t r = 0; r < 100; ++r)
    for (int64_t c = 0; c < 4 * 32; ++c) ASSERT_EQ(o.fast[size_t(r * o.ldo + o.col0 + c)], 0.0f) << r;
  EXPECT_NE(o.fast[size_t(100 * o.ldo + o.col0)], 0.0f);
}

TEST(Attention, CausalDiffersFromFull) {
  Problem p = make(2, 1, 16, {{0, 120, true}});
  const Outcome causal_run = run(p);
  p.segments[0].causal = false;
  const Outcome full_run = run(p);
  // The last row sees every key either way; the first row sees only itself under causal.
  const int64_t last = 119 * causal_run.ldo + causal_run.col0;
  EXPECT_NEAR(causal_run.fast[size_t(last)], full_run.fast[size_t(last)], 1e-5);
  EXPECT_GT(std::fabs(causal_run.fast[size_t(causal_run.col0)] - full_run.fast[size_t(full_run.col0)]), 1e-3);
}

TEST(Attention, NoSegmentsWritesNothing) {
  Problem p = make(2, 1, 8, {}, 10);
  Problem empty = make(2, 1, 8, {{3, 0}}, 10);
  for (const Problem& q : {p, empty}) {
    const Outcome o = run(q);
    for (float x : o.fast) ASSERT_EQ(x, kSentinel);
  }
}

TEST(Attention, ExactlySizedBuffers) {
  // Unpadded q / k / v / out (row stride == width) ending at the last segment row: any read or write past a
  // row's head_dim tail would leave the allocations (caught under AddressSanitizer).
  for (int hd : {5, 20, 64}) {
    const AttentionShape shape{3, 1, hd};
    const std::vector<Segment> segments = {{0, 7}, {7, 100}};
    const int64_t rows = 107, qw = 3 * hd;
    const std::vector<float> q = test::random_floats(size_t(rows * qw), 1);
    const std::vector<float> k = test::random_floats(size_t(rows * hd), 2);
    const std::vector<float> v = test::random_floats(size_t(rows * hd), 3);
    std::vector<float> out(size_t(rows * qw)), ref(size_t(rows * qw));
    attention(q.data(), qw, k.data(), hd, v.data(), hd, out.data(), qw, shape, segments);
    attention_reference(q.data(), qw, k.data(), hd, v.data(), hd, ref.data(), qw, shape, segments);
    // run()'s error model, 2u (max|q| max|k| + sqrt(L) + 1) with |q|, |k| <= ~6 (head dim 64, entries in
    // (-1, 1)) and L = 100: 2^-23 * 47 = 5.6e-6.
    EXPECT_LE(test::max_abs_diff(out.data(), ref.data(), out.size()), 5.6e-6) << "head dim " << hd;
  }
}

TEST(Attention, RejectsBadShapes) {
  std::vector<float> buf(64, 0.0f);
  const std::vector<Segment> seg = {{0, 2}};
  EXPECT_THROW(attention(buf.data(), 8, buf.data(), 8, buf.data(), 8, buf.data(), 8, {3, 2, 2}, seg), Error);
  EXPECT_THROW(attention(buf.data(), 8, buf.data(), 8, buf.data(), 8, buf.data(), 8, {2, 1, 0}, seg), Error);
  EXPECT_THROW(attention(buf.data(), 8, buf.data(), 8, buf.data(), 8, buf.data(), 8, {2, 1, 4}, {{0, -1}}),
               Error);
}

}  // namespace
}  // namespace krea2
