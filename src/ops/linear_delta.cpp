#include <cstring>
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
      v = s * v + (1.0f - s) * u[m * N + o];
      if (bias) v += bias[o];
    }
}

// The down projections x A_j^T of the products with low-rank terms, side by side in t_down (row m is
// [x A_0^T, x A_1^T, ...]).
struct Downs {
  std::vector<WeightMatrix> a;
  std::vector<int64_t> offset;
  int64_t total = 0;
  float* t = nullptr;
};

Downs plan_downs(std::span<const LinearProduct> products, int64_t M) {
  Downs d;
  d.a.reserve(products.size());
  for (const LinearProduct& p : products)
    if (const WeightDelta* delta = p.w->delta; delta && delta->rank > 0) {
      d.a.push_back(WeightMatrix{DType::F32, delta->rank, p.w->cols, delta->a});
      d.offset.push_back(d.total);
      d.total += delta->rank;
    }
  if (d.total > 0) d.t = grown(t_down, M * d.total);
  return d;
}

// The layers' own products (y = x W^T, or y += x W^T with accumulate) and the down projections over one x.
// In float32 on our GEMM they run as one gemm_xwt_many pass: x is packed once and the skinny A products join
// the team's column queue, so they cost their FLOPs alone. Otherwise (few rows, OpenBLAS, bf16 / int8
// compute) the own products go through linear() and the down projections run apart, in float32.
void own_and_downs(const float* x, int64_t M, int64_t ldx, std::span<const LinearProduct> own, const Downs& d,
                   bool accumulate, LinearScratch& scratch) {
  // linear() reads the weight directly for up to 4 rows; the packed GEMM takes the rest.
  const bool fused =
      linear_backend() == LinearBackend::kPackedGemm && M > 4 && gemm_compute() == Compute::kF32;
  if (fused) {
    std::vector<GemmProduct> all;
    for (const LinearProduct& p : own) all.push_back({*p.w, p.y, p.ldy});
    for (size_t j = 0; j < d.a.size(); ++j) all.push_back({d.a[j], d.t + d.offset[j], d.total});
    if (accumulate && d.total > 0)
      for (int64_t i = 0; i < M * d.total; ++i) d.t[i] = 0.0f;
    gemm_xwt_many(x, M, ldx, all, accumulate);
    return;
  }
  if (accumulate) {
    for (const LinearProduct& p : own) linear(x, M, ldx, *p.w, nullptr, p.y, p.ldy, scratch, true);
  } else if (!own.empty()) {
    linear_many(x, M, ldx, own, scratch);
  }
  if (d.total == 0) return;
  const GemmComputeScope f32(Compute::kF32);
  std::vector<LinearProduct> downs;
  for (size_t j = 0; j < d.a.size(); ++j) downs.push_back({&d.a[j], d.t + d.offset[j], d.total});
  linear_many(x, M, ldx, downs, scratch);
}

// y_j += s (x A_j^T) B_j^T from the down projections in d.t.
void add_ups(std::span<const LinearProduct> products, const Downs& d, int64_t M, float s,
             LinearScratch& scratch) {
  if (d.total == 0) return;
  if (s != 1.0f)
    for (int64_t i = 0; i < M * d.total; ++i) d.t[i] *= s;
  const GemmComputeScope f32(Compute::kF32);
  size_t j = 0;
  for (const LinearProduct& p : products) {
    const WeightDelta* delta = p.w->delta;
    if (!delta || delta->rank == 0) continue;
    const WeightMatrix up{DType::F32, p.w->rows, delta->rank, delta->b};
    linear(d.t + d.offset[j++], M, d.total, up, nullptr, p.y, p.ldy, scratch, true);
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
  const LinearProduct self{&w, y, ldy};
  if (d.unmerged && s != 1.0f) {
    // Merged at strength 1, called at another scale: both products into fresh rows, blended into y.
    const int64_t N = w.rows;
    float* u = grown(t_unmerged, 2 * M * N);
    float* v = u + M * N;
    const WeightMatrix merged = plain(w), base = plain(*d.unmerged);
    const LinearProduct both[] = {{&merged, v, N}, {&base, u, N}};
    linear_many(x, M, ldx, both, scratch);
    blend(v, N, u, M, N, s, bias);
    for (int64_t m = 0; m < M; ++m)
      for (int64_t o = 0; o < N; ++o) y[m * ldy + o] = (accumulate ? y[m * ldy + o] : 0.0f) + v[m * N + o];
    if (s != 0.0f) {
      const Downs downs = plan_downs(std::span(&self, 1), M);
      own_and_downs(x, M, ldx, {}, downs, false, scratch);
      add_ups(std::span(&self, 1), downs, M, s, scratch);
    }
    return;
  }
  // The bias goes in first and the product accumulates onto it, as linear() does.
  if (bias) {
    const int64_t N = w.rows;
#pragma omp parallel for schedule(static) if (M * N >= (1 << 16))
    for (int64_t m = 0; m < M; ++m) {
      float* ym = y + m * ldy;
      if (accumulate) {
        for (int64_t o = 0; o < N; ++o) ym[o] += bias[o];
      } else {
        std::memcpy(ym, bias, size_t(N) * sizeof(float));
      }
    }
  }
  const WeightMatrix merged = plain(w);
  const LinearProduct own{&merged, y, ldy};
  const Downs downs = s != 0.0f ? plan_downs(std::span(&self, 1), M) : Downs{};
  own_and_downs(x, M, ldx, std::span(&own, 1), downs, accumulate || bias != nullptr, scratch);
  add_ups(std::span(&self, 1), downs, M, s, scratch);
}

void linear_many_with_delta(const float* x, int64_t M, int64_t ldx, std::span<const LinearProduct> products,
                            LinearScratch& scratch) {
  const float s = t_scale;
  // The layers' own products, and the unmerged ones a merged weight needs at another scale.
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
  const Downs downs = s != 0.0f ? plan_downs(products, M) : Downs{};
  own_and_downs(x, M, ldx, own, downs, false, scratch);
  for (size_t j = 0; j < products.size(); ++j)
    if (unmerged_at[j] >= 0)
      blend(products[j].y, products[j].ldy, u + unmerged_at[j], M, products[j].w->rows, s, nullptr);
  add_ups(products, downs, M, s, scratch);
}

}  // namespace krea2
