// Model::with_loras: resolve every adapter against the model, then build a new ModelImpl sharing the parent's
// weights, with low-rank terms attached to the Linear weights they change (ops/weight_delta.h), merged
// float32 copies where a delta is merged, and the vector deltas added to its own copies of the vectors.
//
// What runs at run time and what is merged: LoRA is always applied at run time (2 r (in + out) per row
// against the layer's 2 in out), LoHa / LoKr at run time as their exact low-rank forms when those cost at
// most LoraOptions::low_rank_cost_limit of the layer. Full deltas (.diff), and LoHa / LoKr whose low-rank
// form is not cheaper, are merged here: applying a dense delta at run time would cost a second product as
// large as the layer's own, while the merged copy costs nothing per call. A call at another scale s still
// gets W0 + s D from it (ops/weight_delta.h), at the price of the unmerged product too.
#include <omp.h>

#include <cmath>
#include <map>

#include "krea2/model.h"
#include "lora/delta_math.h"
#include "lora/lora_state.h"
#include "lora/resolve.h"
#include "model/model_impl.h"
#include "ops/weight_decode.h"

namespace krea2 {

namespace {

struct Use {
  const AdapterEntry* entry;
  double strength;
  bool bias;  // the entry's .diff_b (else its weight delta)
};

void attach_matrix(WeightMatrix& m, const std::vector<Use>& uses, const LoraOptions& options,
                   LoraState& state) {
  const int64_t out = m.rows, in = m.cols;
  std::vector<LowRank> low;
  std::vector<const Use*> dense;
  for (const Use& u : uses) {
    std::optional<LowRank> lr;
    if (!options.merge) lr = low_rank_delta(*u.entry, out, in, u.strength, options.low_rank_cost_limit);
    if (lr) {
      low.push_back(std::move(*lr));
    } else {
      dense.push_back(&u);
    }
  }
  const WeightMatrix* unmerged = nullptr;
  if (!dense.empty()) {
    float* w = state.new_buffer(size_t(out * in));
    const WeightMatrix stored = m;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < out; ++r) decode_weight_segment(stored, r, 0, in, w + r * in);
    for (const Use* u : dense) add_dense_delta(*u->entry, out, in, u->strength, w);
    unmerged = state.unmerged.emplace_back(std::make_unique<WeightMatrix>(stored)).get();
    m = WeightMatrix{DType::F32, out, in, w};
  }
  auto delta = std::make_unique<WeightDelta>();
  delta->unmerged = unmerged;
  for (const LowRank& lr : low) delta->rank += lr.rank;
  if (delta->rank > 0) {
    // The terms of every adapter side by side: A rows stacked, B columns concatenated.
    const int64_t R = delta->rank;
    float* a = state.new_buffer(size_t(R * in));
    float* b = state.new_buffer(size_t(out * R));
    int64_t k0 = 0;
    for (const LowRank& lr : low) {
      std::copy(lr.a.begin(), lr.a.end(), a + k0 * in);
      for (int64_t o = 0; o < out; ++o)
        std::copy(lr.b.begin() + o * lr.rank, lr.b.begin() + (o + 1) * lr.rank, b + o * R + k0);
      k0 += lr.rank;
    }
    delta->a = a;
    delta->b = b;
  }
  state.runtime_terms = state.runtime_terms || delta->rank > 0;
  if (delta->rank > 0 || delta->unmerged) m.delta = state.deltas.emplace_back(std::move(delta)).get();
}

void attach_vector(const ParamSlot& s, const std::vector<Use>& uses, LoraState& state) {
  std::vector<float>& v = *s.vector;
  std::vector<float> d(v.size(), 0.0f);
  const int64_t out = s.shape.size() == 2 ? s.shape[0] : 1,
                in = int64_t(v.size()) / std::max<int64_t>(out, 1);
  for (const Use& u : uses) {
    if (u.bias) {
      const std::vector<float> b = read_floats(*u.entry->diff_b);
      for (size_t i = 0; i < d.size(); ++i) d[i] += float(u.strength) * b[i];
    } else {
      add_dense_delta(*u.entry, out, in, u.strength, d.data());
    }
  }
  for (size_t i = 0; i < v.size(); ++i) v[i] += d[i];
  state.vector_deltas.emplace_back(s.name, std::move(d));
}

}  // namespace

Model Model::with_loras(const std::vector<LoraSpec>& loras, const LoraOptions& options) const {
  const std::shared_ptr<const ModelImpl> parent = impl_->lora ? impl_->lora_parent : impl_;
  if (loras.empty()) return Model(parent);
  const Config& c = parent->config;
  const ModuleTable table(c);
  std::vector<Resolution> resolved;
  std::map<int, std::vector<Use>> uses;  // by parameter index
  for (const LoraSpec& spec : loras) {
    const std::string& path = spec.adapter.path();
    if (!std::isfinite(spec.strength)) throw Error(path + ": the strength is not finite");
    Resolution& r = resolved.emplace_back(resolve_adapter(spec.adapter.impl(), table));
    if (!r.unmatched.empty()) {
      const std::string list = std::to_string(r.unmatched.size()) +
                               " key(s) match no parameter of the model: " + join_names(r.unmatched);
      if (!options.ignore_unknown) throw Error(path + ": " + list + " (--lora-ignore-unknown skips them)");
      if (options.warnings) options.warnings->push_back(path + ": ignored " + list);
    }
    if (r.entries.empty()) throw Error(path + ": no key of the adapter matches a parameter of the model");
    for (const ResolvedEntry& e : r.entries) {
      if (e.weight >= 0) uses[e.weight].push_back({e.entry, spec.strength, false});
      if (e.bias >= 0) uses[e.bias].push_back({e.entry, spec.strength, true});
    }
  }

  auto state = std::make_shared<LoraState>();
  state->merged = options.merge;
  auto impl = std::make_shared<ModelImpl>();
  impl->config = c;
  impl->load_info = parent->load_info;
  impl->weights = parent->weights;
  impl->compute = parent->compute;
  impl->base = parent->base ? parent->base : parent;
  impl->lora_parent = parent;
  int index = 0;
  visit_weights(impl->weights, c, [&](ParamSlot& s) {
    auto it = uses.find(index++);
    if (it == uses.end()) return;
    state->targets.push_back(s.name);
    if (s.matrix) {
      attach_matrix(*s.matrix, it->second, options, *state);
    } else {
      attach_vector(s, it->second, *state);
    }
  });
  impl->lora = state;
  return Model(impl);
}

Model Model::without_loras() const {
  return impl_->lora ? Model(impl_->lora_parent) : *this;
}

bool Model::has_loras() const {
  return impl_->lora != nullptr;
}

void check_no_runtime_lora(const ModelImpl& impl, const std::string& what) {
  if (impl.lora && impl.lora->runtime_terms)
    throw Error(what +
                ": the model's adapters are applied at run time and would be left out in part; attach "
                "them with LoraOptions::merge (--lora-merge) to write the merged weights");
}

const ModelWeights& lora_call_weights(const ModelImpl& impl, float scale, ModelWeights& storage) {
  if (!std::isfinite(scale)) throw Error("lora_scale must be finite, found " + std::to_string(scale));
  if (!impl.lora || scale == 1.0f || impl.lora->vector_deltas.empty()) return impl.weights;
  storage = impl.weights;
  std::map<std::string, const std::vector<float>*> deltas;
  for (const auto& [name, d] : impl.lora->vector_deltas) deltas[name] = &d;
  visit_weights(storage, impl.config, [&](ParamSlot& s) {
    auto it = deltas.find(s.name);
    if (it == deltas.end() || !s.vector) return;
    const std::vector<float>& d = *it->second;
    for (size_t i = 0; i < d.size(); ++i) (*s.vector)[i] += (scale - 1.0f) * d[i];
  });
  return storage;
}

}  // namespace krea2
