// C API: the whole pipeline, prompt to picture.
#include <cstring>

#include "capi/c_api_internal.h"

using namespace krea2;
using namespace krea2::capi;

namespace {

PipelineRequest request_of(const krea2_generate_params& p) {
  PipelineRequest r;
  if (p.num_prompts == 0 && !p.prompt_embeds)
    throw InvalidArgument{"params.num_prompts is 0: give at least one prompt (or prompt_embeds)"};
  if (p.num_prompts) require(p.prompts, "params.prompts");
  for (size_t i = 0; i < p.num_prompts; ++i)
    r.prompts.push_back(string_arg(p.prompts[i], "params.prompts[i]"));
  auto embeddings = [](const krea2_tensor* embeds, const krea2_tensor* mask, const char* what,
                       const char* mask_what) {
    TextEmbeddings e{to_tensor(embeds, what), std::nullopt};
    if (mask) e.mask = to_tensor(mask, mask_what);
    return e;
  };
  if (p.prompt_embeds)
    r.prompt_embeds = embeddings(p.prompt_embeds, p.prompt_embeds_mask, "params.prompt_embeds",
                                 "params.prompt_embeds_mask");
  if (p.negative_prompt_embeds)
    r.negative_prompt_embeds =
        embeddings(p.negative_prompt_embeds, p.negative_prompt_embeds_mask, "params.negative_prompt_embeds",
                   "params.negative_prompt_embeds_mask");
  if (p.negative_prompt) r.negative_prompt = p.negative_prompt;
  r.height = p.height;
  r.width = p.width;
  r.steps = p.steps;
  r.guidance = p.guidance;
  r.seed = p.seed;
  r.turbo = p.turbo != 0;
  r.num_images_per_prompt = p.num_images_per_prompt;
  r.max_sequence_length = p.max_sequence_length;
  r.loras = lora_specs(p.loras, p.lora_strengths, p.num_loras);
  r.lora_scale = p.lora_scale;
  if (p.latents) r.latents = to_tensor(p.latents, "params.latents");
  if (p.progress) {
    r.progress = [fn = p.progress, user = p.user](const PipelineProgress& s) {
      return fn(user, s.stage.c_str(), s.done, s.total) == 0;
    };
  }
  return r;
}

}  // namespace

extern "C" {

krea2_status krea2_pipeline_load(const krea2_pipeline_paths* paths, const krea2_options* options,
                                 krea2_pipeline** out) {
  return guard("krea2_pipeline_load", [&] {
    require(out, "out");
    *out = nullptr;
    require(paths, "paths");
    const krea2_options o = read_options(options, "krea2_pipeline_load");
    PipelinePaths p;
    if (paths->root) p = PipelinePaths::from_root(paths->root);
    if (paths->transformer) p.transformer = paths->transformer;
    if (paths->text_encoder) {
      p.text_encoder = paths->text_encoder;
      if (!paths->tokenizer) p.tokenizer.clear();  // look beside the encoder given
    }
    if (paths->tokenizer) p.tokenizer = paths->tokenizer;
    if (paths->vae) p.vae = paths->vae;
    if (p.transformer.empty()) throw InvalidArgument{"paths: give root or transformer (at least)"};
    PipelineOptions po;
    po.compute = to_compute(o.compute, "options.compute");
    po.text_compute = to_compute(o.text_compute, "options.text_compute");
    po.keep_loaded = o.keep_loaded != 0;
    *out = new krea2_pipeline{Pipeline::open(p, po)};
  });
}

void krea2_pipeline_free(krea2_pipeline* pipeline) {
  delete pipeline;
}

krea2_status krea2_pipeline_get_info(const krea2_pipeline* pipeline, krea2_transformer_info* info) {
  return guard("krea2_pipeline_get_info", [&] {
    require(pipeline, "pipeline");
    require(info, "info");
    fill_info(pipeline->pipeline.transformer(), info);
  });
}

void krea2_generate_params_init(krea2_generate_params* params) {
  if (!params) return;
  *params = krea2_generate_params{};
  params->struct_size = sizeof(krea2_generate_params);
  params->height = 1024;
  params->width = 1024;
  params->steps = 28;
  params->guidance = 4.5;
  params->num_images_per_prompt = 1;
  params->max_sequence_length = 512;
  params->lora_scale = 1.0f;
}

krea2_status krea2_pipeline_generate(krea2_pipeline* pipeline, const krea2_generate_params* params,
                                     const krea2_generate_outputs* outputs) {
  return guard("krea2_pipeline_generate", [&] {
    require(pipeline, "pipeline");
    require(outputs, "outputs");
    require(params, "params");
    krea2_generate_params defaults;
    krea2_generate_params_init(&defaults);
    const krea2_generate_params p = read_versioned(params, defaults, offsetof(krea2_generate_params, height),
                                                   "params", "krea2_generate_params_init");
    PipelineRequest r = request_of(p);
    // The output sizes are known before any work: check the buffers first.
    const int64_t batch = r.prompt_embeds && !r.prompt_embeds->embeds.shape.empty()
                              ? r.prompt_embeds->embeds.dim(0)
                              : int64_t(r.prompts.size()) * r.num_images_per_prompt;
    int64_t h = 0, w = 0;  // latent size
    if (r.latents) {
      if (r.latents->shape.size() != 4)
        throw InvalidArgument{"params.latents must be (B, C, h, w), got " + shape_str(r.latents->shape)};
      h = r.latents->dim(2);
      w = r.latents->dim(3);
    } else {
      const LatentSize s = latent_size_from_pixels(r.height, r.width);
      h = s.height;
      w = s.width;
    }
    const int64_t H = h * kVaeScale, W = w * kVaeScale;
    if (outputs->rgb && outputs->rgb_size < size_t(batch * H * W * 3))
      throw InvalidArgument{"outputs.rgb_size is " + std::to_string(outputs->rgb_size) + " bytes, " +
                            std::to_string(batch * H * W * 3) + " needed (" + std::to_string(batch) + " x " +
                            std::to_string(H) + " x " + std::to_string(W) + " x 3)"};
    if (outputs->image) {
      check_shape(outputs->image, {batch, 3, H, W}, "outputs.image");
      if (outputs->image->dtype != KREA2_F32) throw InvalidArgument{"outputs.image must be KREA2_F32"};
    }
    if (outputs->latents) {
      if (outputs->latents->ndim != 4 || outputs->latents->shape[0] != batch ||
          outputs->latents->shape[2] != h || outputs->latents->shape[3] != w)
        throw InvalidArgument{"outputs.latents must be (" + std::to_string(batch) + ", in_channels / 4, " +
                              std::to_string(h) + ", " + std::to_string(w) + "), got " +
                              shape_str(shape_of(outputs->latents))};
    }
    r.decode = outputs->rgb || outputs->image;
    const PipelineResult result = pipeline->pipeline.generate(r);
    if (outputs->latents) write_tensor(outputs->latents, result.latents_unpacked, "outputs.latents");
    if (outputs->image) write_tensor(outputs->image, result.image, "outputs.image");
    if (outputs->rgb) {
      const std::vector<uint8_t> rgb = image_to_rgb8(result.image);
      std::memcpy(outputs->rgb, rgb.data(), rgb.size());
    }
  });
}

}  // extern "C"
