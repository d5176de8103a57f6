// Model::with_compute: the same weights under another compute mode; for int8, every Linear weight that is
// not stored as int8 with row scales is quantized per output row.
#include "krea2/model.h"
#include "model/int8_weights.h"
#include "model/model_impl.h"

namespace krea2 {

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
    quantize_weight_rows_int8(*s.matrix, group, [&](size_t bytes) { return impl->new_arena(bytes); });
  });
  return Model(impl);
}

}  // namespace krea2
