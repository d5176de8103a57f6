// LoraAdapter::random: a benchmark adapter on diffusers' default Krea 2 LoRA targets, built in memory.
#include <cmath>
#include <string_view>

#include "krea2/error.h"
#include "krea2/lora.h"
#include "lora/adapter.h"
#include "lora/module_table.h"
#include "tensor/random.h"

namespace krea2 {

namespace {

// The target_modules diffusers' Krea 2 LoRA training uses (the fixtures' lora_adapter_metadata).
bool default_target(const std::string& module) {
  const char* suffixes[] = {
      "attn.to_q",     "attn.to_k",       "attn.to_v",       "attn.to_gate",          "attn.to_out.0",
      "ff.up",         "ff.down",         "img_in",          "time_embed.linear_1",   "time_embed.linear_2",
      "time_mod_proj", "txt_in.linear_1", "txt_in.linear_2", "text_fusion.projector", "final_layer.linear"};
  for (const std::string_view s : suffixes)
    if (module == s ||
        (module.size() > s.size() && module.compare(module.size() - s.size(), s.size(), s) == 0 &&
         module[module.size() - s.size() - 1] == '.'))
      return true;
  return false;
}

}  // namespace

LoraAdapter LoraAdapter::random(const Config& config, int64_t rank, uint64_t seed) {
  if (rank < 1 || rank > 4096)
    throw Error("random adapter: rank must be in [1, 4096], found " + std::to_string(rank));
  auto impl = std::make_shared<LoraAdapterImpl>();
  impl->path = "random rank-" + std::to_string(rank) + " adapter";
  const ModuleTable table(config);
  struct Pending {
    std::string name;
    Shape shape;
  };
  std::vector<Pending> tensors;
  for (const ParamInfo& p : table.params()) {
    if (p.shape.size() != 2 || p.name.size() < 7 || p.name.compare(p.name.size() - 7, 7, ".weight") != 0)
      continue;
    const std::string module = p.name.substr(0, p.name.size() - 7);
    if (!default_target(module)) continue;
    tensors.push_back({"transformer." + module + ".lora_A.weight", {rank, p.shape[1]}});
    tensors.push_back({"transformer." + module + ".lora_B.weight", {p.shape[0], rank}});
  }
  impl->owned_values.resize(tensors.size());
  const uint64_t key = counter_key(seed);
  for (size_t i = 0; i < tensors.size(); ++i) {
    std::vector<float>& v = impl->owned_values[i];
    v.resize(size_t(shape_numel(tensors[i].shape)));
    // A of variance ~1/in keeps x A^T at the scale of x; B small keeps the delta a perturbation.
    const float scale = i % 2 == 0 ? std::sqrt(3.0f / float(tensors[i].shape[1])) : 0.01f;
#pragma omp parallel for schedule(static)
    for (size_t j = 0; j < v.size(); ++j) v[j] = scale * counter_uniform(key + i, j);
    impl->owned_views.push_back({tensors[i].name, DType::F32, tensors[i].shape,
                                 reinterpret_cast<const std::byte*>(v.data()), v.size() * sizeof(float)});
  }
  parse_adapter(impl->owned_views, {}, impl->path, *impl);
  return LoraAdapter(std::move(impl));
}

}  // namespace krea2
