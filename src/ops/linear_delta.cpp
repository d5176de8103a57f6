#include <vector>

#include "ops/gemm.h"
#include "ops/weight_delta.h"

namespace krea2 {

namespace {

thread_local float t_scale = 1.0f;

// Grow-only per-thread buffers: the down projections, and the products of the unmerged weights.
thread_local std::vector<float> t_down, t_unmerged;

float* grown(std::vector<float>& v, int64_t n) {
  if (v.size() < size_t(n)) v.resize(size_t(n));
  return v.data();
}

WeightMatrix plain(const WeightMatrix& w) {
  WeightMatrix p = w;
  p.delta = nullptr;
  return p;
}

// y = s y + (1 - s) u (+ bias when given), row by row.
void blend(float* y, int64_t ldy, const float* u, int64_t M, int64_t N, float s, const float* bias) {
  for (int64_t m = 0; m < M; ++m)
    for (int64_t o = 0; o < N; ++o) {
      float& v = y[m * ldy + o];
      v = s * v + (1.0f - s) * u[m * N + o] + (bias ? bias[o] : 0.0f);
    }
}

// The low-rank terms of products[j] (those with a rank) added to their outputs: one pass over x for all
// down projections, then one up projection each.
void add_low_rank(const float* x, int64_t M, int64_t ldx, std::span<const LinearProduct> products, float s,
                  LinearScratch& scratch) {
  const GemmComputeScope f32(Compute::kF32);
  std::vector<WeightMatrix> downs;
  std::vector<int64_t> offsets;
  int64_t total = 0;
  for (const LinearProduct& p : products) {
    const WeightDelta* d = p.w->delta;
    if (!d || d->rank == 0) continue;
    downs.push_back(WeightMatrix{DType::F32, d->rank, p.w->cols, d->a});
    offsets.push_back(total);
    total += d->rank;
  }
  if (downs.empty()) return;
  // t holds the down projections side by side: row m is [x A_0^T, x A_1^T, ...] (total columns).
  float* t = grown(t_down, M * total);
  std::vector<LinearProduct> down_products;
  for (size_t j = 0; j < downs.size(); ++j) down_products.push_back({&downs[j], t + offsets[j], total});
  linear_many(x, M, ldx, down_products, scratch);
  for (int64_t i = 0; i < M * total; ++i) t[i] *= s;
  size_t j = 0;
  for (const LinearProduct& p : products) {
    const WeightDelta* d = p.w->delta;
    if (!d || d->rank == 0) continue;
    const WeightMatrix up{DType::F32, p.w->rows, d->rank, d->b};
    linear(t + offsets[j++], M, total, up, nullptr, p.y, p.ldy, scratch, true);
  }
}

}  // namespace

float weight_delta_scale() {
  return t_scale;
}

WeightDeltaScaleScope::WeightDeltaScaleScope(float scale) : saved_(t_scale) {
  t_scale = scale;
}

WeightDeltaScaleScope::~WeightDeltaScaleScope() {
  t_scale = saved_;
}

void linear_with_delta(const float* x, int64_t M, int64_t ldx, const WeightMatrix& w, const float* bias,
                       float* y, int64_t ldy, LinearScratch& scratch, bool accumulate) {
  const WeightDelta& d = *w.delta;
  const float s = t_scale;
  const WeightMatrix merged = plain(w);
  if (d.unmerged && s != 1.0f) {
    const WeightMatrix base = plain(*d.unmerged);
    if (s == 0.0f) {
      linear(x, M, ldx, base, bias, y, ldy, scratch, accumulate);
    } else {
      // Both products into fresh rows (y may hold what accumulate adds to), then blended in.
      const int64_t N = w.rows;
      float* u = grown(t_unmerged, 2 * M * N);
      float* v = u + M * N;
      const LinearProduct both[] = {{&merged, v, N}, {&base, u, N}};
      linear_many(x, M, ldx, both, scratch);
      blend(v, N, u, M, N, s, bias);
      for (int64_t m = 0; m < M; ++m)
        for (int64_t o = 0; o < N; ++o) y[m * ldy + o] = (accumulate ? y[m * ldy + o] : 0.0f) + v[m * N + o];
    }
  } else {
    linear(x, M, ldx, merged, bias, y, ldy, scratch, accumulate);
  }
  if (d.rank > 0 && s != 0.0f) {
    const LinearProduct p{&w, y, ldy};
    add_low_rank(x, M, ldx, std::span(&p, 1), s, scratch);
  }
}

void linear_many_with_delta(const float* x, int64_t M, int64_t ldx, std::span<const LinearProduct> products,
                            LinearScratch& scratch) {
  const float s = t_scale;
  // The layers' own products (and the unmerged ones the scale needs) in one pass over x.
  std::vector<WeightMatrix> mats;
  mats.reserve(2 * products.size());  // stable addresses for the products below
  std::vector<LinearProduct> own;
  std::vector<int64_t> unmerged_at(products.size(), -1);
  int64_t unmerged_floats = 0;
  for (size_t j = 0; j < products.size(); ++j) {
    const LinearProduct& p = products[j];
    const WeightDelta* d = p.w->delta;
    const bool zero = d && d->unmerged && s == 0.0f;
    mats.push_back(plain(zero ? *d->unmerged : *p.w));
    own.push_back({&mats.back(), p.y, p.ldy});
    if (d && d->unmerged && s != 1.0f && s != 0.0f) {
      unmerged_at[j] = unmerged_floats;
      unmerged_floats += M * p.w->rows;
    }
  }
  float* u = unmerged_floats ? grown(t_unmerged, unmerged_floats) : nullptr;
  for (size_t j = 0; j < products.size(); ++j)
    if (unmerged_at[j] >= 0) {
      mats.push_back(plain(*products[j].w->delta->unmerged));
      own.push_back({&mats.back(), u + unmerged_at[j], products[j].w->rows});
    }
  linear_many(x, M, ldx, own, scratch);
  for (size_t j = 0; j < products.size(); ++j)
    if (unmerged_at[j] >= 0)
      blend(products[j].y, products[j].ldy, u + unmerged_at[j], M, products[j].w->rows, s, nullptr);
  if (s != 0.0f) add_low_rank(x, M, ldx, products, s, scratch);
}

}  // namespace krea2
