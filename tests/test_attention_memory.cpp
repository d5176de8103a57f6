// Attention never materialises an L x L matrix: at S = 8192 one score matrix would be 256 MiB; the process
// high-water mark may grow by only a small multiple of the O(S) inputs. Its own binary, so that no earlier
// test has already raised the high-water mark past what this one would reveal.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <cmath>
#include <vector>

#include "ops/attention.h"
#include "support/test_util.h"

namespace krea2 {
namespace {

int64_t peak_rss_bytes() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return int64_t(u.ru_maxrss) * 1024;
}

TEST(AttentionMemory, LinearInSequenceLength) {
  const int64_t S = 8192, heads = 2, kv_heads = 1, hd = 16;
  std::vector<float> q = test::random_floats(size_t(S * heads * hd), 1);
  std::vector<float> k = test::random_floats(size_t(S * kv_heads * hd), 2);
  std::vector<float> v = test::random_floats(size_t(S * kv_heads * hd), 3);
  std::vector<float> out(size_t(S * heads * hd), 0.0f);
  // Warm the thread team and per-thread scratch on a small call first.
  attention(q.data(), heads * hd, k.data(), kv_heads * hd, v.data(), kv_heads * hd, out.data(), heads * hd,
            {int(heads), int(kv_heads), int(hd)}, {Segment{0, 64}});
  const int64_t before = peak_rss_bytes();
  attention(q.data(), heads * hd, k.data(), kv_heads * hd, v.data(), kv_heads * hd, out.data(), heads * hd,
            {int(heads), int(kv_heads), int(hd)}, {Segment{0, S}});
  const int64_t grown = peak_rss_bytes() - before;
  const int64_t score_matrix = S * S * int64_t(sizeof(float));  // 256 MiB: what an L x L approach would need
  EXPECT_LT(grown, score_matrix / 32) << "attention grew the peak RSS by " << grown << " bytes";
  for (float x : out) ASSERT_TRUE(std::isfinite(x));
}

}  // namespace
}  // namespace krea2
