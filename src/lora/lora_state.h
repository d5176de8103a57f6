// What Model::with_loras adds to a model (held by its ModelImpl): the float32 factors and merged matrices its
// weights point to, and the deltas of the small float vectors (biases, norm scales, modulation tables, the
// projector), which a call at another scale re-applies.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "model/weights.h"
#include "ops/weight_delta.h"

namespace krea2 {

struct ModelImpl;

struct LoraState {
  bool merged = false;         // LoraOptions::merge
  bool runtime_terms = false;  // some weight has low-rank terms (not in its stored or merged values)
  std::vector<std::unique_ptr<float[]>> buffers;
  std::vector<std::unique_ptr<WeightDelta>> deltas;
  std::vector<std::unique_ptr<WeightMatrix>> unmerged;  // the weights as stored, where a copy was merged
  // (parameter name, delta at scale 1): already added to the model's vector.
  std::vector<std::pair<std::string, std::vector<float>>> vector_deltas;
  std::vector<std::string> targets;  // diffusers names of the changed parameters

  float* new_buffer(size_t floats) {
    return buffers.emplace_back(std::make_unique_for_overwrite<float[]>(floats)).get();
  }
};

// The weights a call at adapter scale `scale` (ForwardOptions::lora_scale) reads: the model's own, or, when
// vector deltas need another scale, a copy in `storage` (the matrices are views, so only the vectors are
// copied). Throws krea2::Error on a non-finite scale.
const ModelWeights& lora_call_weights(const ModelImpl& impl, float scale, ModelWeights& storage);

// Writers of a model's weights (save, quantize) call this: an error when adapter terms run only at run time,
// since the written file would hold part of the adapters (their vectors and merged copies) but not the rest.
void check_no_runtime_lora(const ModelImpl& impl, const std::string& what);

}  // namespace krea2
