// Terms an adapter adds to a Linear layer at run time (built by lora/, applied by linear() / linear_many()
// when WeightMatrix::delta is set), with the call's scale s (the thread's WeightDeltaScaleScope, 1 unless
// set):
//   y = x W^T + s (x A^T) B^T          A (rank, in), B (out, rank) float32, strengths folded into B
// and, when W holds full deltas merged at strength 1 (W = W0 + D) and `unmerged` is W0, for s != 1
//   x W^T is replaced by s x W^T + (1 - s) x W0^T  (= x W0^T + s x D^T).
// The down projection x A^T comes first, so a row costs 2 rank (in + out) multiply-adds; both adapter
// products run in float32 whatever the compute mode (they are small), the layer's own under the mode.
#pragma once
#include <cstdint>
#include <span>

#include "ops/linear.h"

namespace krea2 {

struct WeightDelta {
  int64_t rank = 0;
  const float* a = nullptr;
  const float* b = nullptr;
  const WeightMatrix* unmerged = nullptr;
};

// The scale of the adapter terms in the products this thread starts.
float weight_delta_scale();
class WeightDeltaScaleScope {
 public:
  explicit WeightDeltaScaleScope(float scale);
  ~WeightDeltaScaleScope();
  WeightDeltaScaleScope(const WeightDeltaScaleScope&) = delete;
  WeightDeltaScaleScope& operator=(const WeightDeltaScaleScope&) = delete;

 private:
  float saved_;
};

// What linear() / linear_many() do for weights with a delta.
void linear_with_delta(const float* x, int64_t M, int64_t ldx, const WeightMatrix& w, const float* bias,
                       float* y, int64_t ldy, LinearScratch& scratch, bool accumulate);
void linear_many_with_delta(const float* x, int64_t M, int64_t ldx, std::span<const LinearProduct> products,
                            LinearScratch& scratch);

}  // namespace krea2
