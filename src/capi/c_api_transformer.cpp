// C API: adapters and the transformer.
#include <cstring>

#include "capi/c_api_internal.h"

using namespace krea2;
using namespace krea2::capi;

namespace krea2::capi {

std::vector<LoraSpec> lora_specs(const krea2_lora* const* loras, const float* strengths, size_t count) {
  std::vector<LoraSpec> specs;
  if (count) require(loras, "loras");
  for (size_t i = 0; i < count; ++i) {
    if (!loras[i]) throw InvalidArgument{"loras[" + std::to_string(i) + "] is NULL"};
    specs.push_back({loras[i]->adapter, strengths ? strengths[i] : 1.0f});
  }
  return specs;
}

void fill_info(const Model& model, krea2_transformer_info* info) {
  const Config& c = model.config();
  info->in_channels = c.in_channels;
  info->num_text_layers = c.num_text_layers;
  info->text_hidden_dim = c.text_hidden_dim;
  info->hidden_size = c.hidden();
  info->num_layers = c.num_layers;
  info->parameter_count = model.parameter_count();
}

}  // namespace krea2::capi

extern "C" {

krea2_status krea2_lora_load(const char* path, krea2_lora** out) {
  return guard("krea2_lora_load", [&] {
    require(out, "out");
    *out = nullptr;
    *out = new krea2_lora{LoraAdapter::load(string_arg(path, "path"))};
  });
}

void krea2_lora_free(krea2_lora* lora) {
  delete lora;
}

krea2_status krea2_transformer_load(const char* path, const krea2_options* options, krea2_transformer** out) {
  return guard("krea2_transformer_load", [&] {
    require(out, "out");
    *out = nullptr;
    const std::string p = string_arg(path, "path");
    const krea2_options o = read_options(options, "krea2_transformer_load");
    LoadOptions load;
    load.compute = to_compute(o.compute, "options.compute");
    load.allow_unexpected = o.allow_unexpected != 0;
    Model model = Model::load(p, load);
    *out = new krea2_transformer{model, model};
  });
}

void krea2_transformer_free(krea2_transformer* transformer) {
  delete transformer;
}

krea2_status krea2_transformer_get_info(const krea2_transformer* transformer, krea2_transformer_info* info) {
  return guard("krea2_transformer_get_info", [&] {
    require(transformer, "transformer");
    require(info, "info");
    fill_info(transformer->model, info);
  });
}

krea2_status krea2_transformer_set_loras(krea2_transformer* transformer, const krea2_lora* const* loras,
                                         const float* strengths, size_t count, int merge) {
  return guard("krea2_transformer_set_loras", [&] {
    require(transformer, "transformer");
    const std::vector<LoraSpec> specs = lora_specs(loras, strengths, count);
    if (specs.empty()) {
      transformer->model = transformer->base;
      return;
    }
    LoraOptions options;
    options.merge = merge != 0;
    transformer->model = transformer->base.with_loras(specs, options);
  });
}

void krea2_forward_options_init(krea2_forward_options* options) {
  if (!options) return;
  *options = krea2_forward_options{};
  options->struct_size = sizeof(krea2_forward_options);
  options->lora_scale = 1.0f;
}

krea2_status krea2_transformer_forward(const krea2_transformer* transformer,
                                       const krea2_forward_inputs* inputs, krea2_tensor* output,
                                       const krea2_forward_options* options) {
  return guard("krea2_transformer_forward", [&] {
    require(transformer, "transformer");
    require(inputs, "inputs");
    krea2_forward_options defaults;
    krea2_forward_options_init(&defaults);
    const krea2_forward_options o = read_versioned(options, defaults, sizeof(uint32_t) + sizeof(float),
                                                   "options", "krea2_forward_options_init");
    ForwardInputs in;
    in.hidden_states = to_tensor(inputs->hidden_states, "inputs.hidden_states");
    in.encoder_hidden_states = to_tensor(inputs->encoder_hidden_states, "inputs.encoder_hidden_states");
    in.timestep = to_tensor(inputs->timestep, "inputs.timestep");
    in.position_ids = to_tensor(inputs->position_ids, "inputs.position_ids");
    if (inputs->encoder_attention_mask)
      in.encoder_attention_mask = to_tensor(inputs->encoder_attention_mask, "inputs.encoder_attention_mask");
    // The output's shape is known before the work: check it first.
    const Shape& hs = in.hidden_states.shape;
    check_shape(output, hs, "output");
    if (output->dtype != KREA2_F32) throw InvalidArgument{"output must be KREA2_F32"};
    ForwardOptions f;
    f.lora_scale = o.lora_scale;
    f.skip_padded_text = o.keep_padding == 0;
    const Progress progress{o.progress, o.user};
    if (o.progress)
      f.progress = [&](const std::string& stage, int done, int total) {
        progress(stage.c_str(), done, total);
      };
    write_tensor(output, transformer->model.forward(in, f), "output");
  });
}

}  // extern "C"
