// Model::with_compute: the same weights under another compute mode; for int8, every Linear weight that is
// not stored as int8 with row scales is quantized per output row.
#include <omp.h>

#include <algorithm>
#include <vector>

#include "krea2/model.h"
#include "model/model_impl.h"
#include "ops/int8_activations.h"
#include "ops/weight_decode.h"

namespace krea2 {
namespace {

bool is_int8_ready(const WeightMatrix& w) {
  return w.dtype == DType::I8 && w.row_scales != nullptr && w.scale == 1.0f;
}

// Per-row int8 of any stored weight: rows decoded to float32 a few at a time, then the same rule as the
// activations (optional rotation, s = max |w| / 127, codes rounded half-even within +-127).
void quantize_rows_int8(ModelImpl& impl, WeightMatrix& w, int64_t group) {
  const int64_t R = w.rows, K = w.cols;
  auto* codes = reinterpret_cast<int8_t*>(impl.new_arena(size_t(R * K)));
  auto* scales = reinterpret_cast<float*>(impl.new_arena(size_t(R) * sizeof(float)));
  constexpr int64_t kRows = 16;
#pragma omp parallel
  {
    std::vector<float> rows(size_t(kRows * K));
#pragma omp for schedule(dynamic)
    for (int64_t r0 = 0; r0 < R; r0 += kRows) {
      const int64_t n = std::min(kRows, R - r0);
      for (int64_t i = 0; i < n; ++i) decode_weight_segment(w, r0 + i, 0, K, rows.data() + i * K);
      quantize_activations_i8(rows.data(), n, K, K, group, codes + r0 * K, scales + r0);
    }
  }
  w = WeightMatrix{DType::I8, R, K, codes, 1.0f, scales, group};
}

}  // namespace

Compute Model::compute() const {
  return impl_->compute;
}

Model Model::with_compute(Compute mode, const Int8Options& int8) const {
  const int64_t G = int8.rotation_group;
  if (mode == Compute::kInt8 && G != 0) {
    bool power_of_4 = G >= 4;
    for (int64_t g = G; g > 1 && power_of_4; g /= 4) power_of_4 = g % 4 == 0;
    if (!power_of_4) throw Error("int8 rotation group must be 0 or a power of 4, found " + std::to_string(G));
  }
  // Always from the model as loaded (not from an earlier int8 preparation).
  const std::shared_ptr<const ModelImpl> root = impl_->base ? impl_->base : impl_;
  auto impl = std::make_shared<ModelImpl>();
  impl->config = root->config;
  impl->load_info = root->load_info;
  impl->weights = root->weights;
  impl->compute = mode;
  impl->base = root;  // the weights point into its mmap / arenas
  if (mode != Compute::kInt8) return Model(impl);
  visit_weights(impl->weights, impl->config, [&](ParamSlot& s) {
    if (s.matrix == nullptr || s.matrix->empty() || is_int8_ready(*s.matrix)) return;
    // A rotation needs whole groups; a row length it does not divide is quantized unrotated.
    const int64_t group = G > 0 && s.matrix->cols % G == 0 ? G : 0;
    quantize_rows_int8(*impl, *s.matrix, group);
  });
  return Model(impl);
}

}  // namespace krea2
