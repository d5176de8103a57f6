// C API: the text encoder and the VAE.
#include <cstring>

#include "capi/c_api_internal.h"

using namespace krea2;
using namespace krea2::capi;

extern "C" {

krea2_status krea2_text_encoder_load(const char* path, const char* tokenizer_path,
                                     const krea2_options* options, krea2_text_encoder** out) {
  return guard("krea2_text_encoder_load", [&] {
    require(out, "out");
    *out = nullptr;
    const std::string p = string_arg(path, "path");
    const krea2_options o = read_options(options, "krea2_text_encoder_load");
    Tokenizer tokenizer = Tokenizer::load(tokenizer_path ? std::string(tokenizer_path) : find_tokenizer(p));
    TextEncoderLoadOptions load;
    load.compute = to_compute(o.compute, "options.compute");
    *out = new krea2_text_encoder{TextEncoder::load(p, load), std::move(tokenizer)};
  });
}

void krea2_text_encoder_free(krea2_text_encoder* encoder) {
  delete encoder;
}

krea2_status krea2_text_encoder_get_info(const krea2_text_encoder* encoder, krea2_text_encoder_info* info) {
  return guard("krea2_text_encoder_get_info", [&] {
    require(encoder, "encoder");
    require(info, "info");
    info->hidden_size = encoder->encoder.config().hidden_size;
    info->num_layers = encoder->encoder.config().num_layers;
    info->num_default_taps = int64_t(encoder->encoder.default_taps().size());
  });
}

void krea2_encode_options_init(krea2_encode_options* options) {
  if (!options) return;
  *options = krea2_encode_options{};
  options->struct_size = sizeof(krea2_encode_options);
  options->max_sequence_length = 512;
  options->num_images_per_prompt = 1;
}

krea2_status krea2_text_encoder_encode(const krea2_text_encoder* encoder, const char* const* prompts,
                                       size_t count, const krea2_encode_options* options,
                                       krea2_tensor* embeds, krea2_tensor* mask) {
  return guard("krea2_text_encoder_encode", [&] {
    require(encoder, "encoder");
    krea2_encode_options defaults;
    krea2_encode_options_init(&defaults);
    const krea2_encode_options o = read_versioned(options, defaults, offsetof(krea2_encode_options, taps),
                                                  "options", "krea2_encode_options_init");
    if (count == 0) throw InvalidArgument{"count is 0: give at least one prompt"};
    require(prompts, "prompts");
    std::vector<std::string> texts;
    for (size_t i = 0; i < count; ++i) texts.push_back(string_arg(prompts[i], "prompts[i]"));
    if (o.max_sequence_length < 1 || o.max_sequence_length > 4096)
      throw InvalidArgument{"options.max_sequence_length must be in 1..4096, got " +
                            std::to_string(o.max_sequence_length)};
    if (o.num_images_per_prompt < 1 || o.num_images_per_prompt > 256)
      throw InvalidArgument{"options.num_images_per_prompt must be in 1..256, got " +
                            std::to_string(o.num_images_per_prompt)};
    EncodeOptions e;
    e.max_sequence_length = o.max_sequence_length;
    e.num_images_per_prompt = o.num_images_per_prompt;
    if (o.num_taps) require(o.taps, "options.taps");
    for (size_t i = 0; i < o.num_taps; ++i) {
      if (o.taps[i] < 0 || o.taps[i] > encoder->encoder.config().num_layers)
        throw InvalidArgument{"options.taps[" + std::to_string(i) + "] = " + std::to_string(o.taps[i]) +
                              " is outside 0.." + std::to_string(encoder->encoder.config().num_layers)};
      e.taps.push_back(o.taps[i]);
    }
    const int64_t batch = int64_t(count) * o.num_images_per_prompt;
    const int64_t taps = int64_t(e.taps.empty() ? encoder->encoder.default_taps().size() : e.taps.size());
    const Shape embeds_shape = {batch, o.max_sequence_length, taps, encoder->encoder.config().hidden_size};
    check_shape(embeds, embeds_shape, "embeds");
    if (embeds->dtype != KREA2_F32) throw InvalidArgument{"embeds must be KREA2_F32"};
    if (mask) {
      check_shape(mask, {batch, o.max_sequence_length}, "mask");
      if (mask->dtype != KREA2_F32 && mask->dtype != KREA2_U8 && mask->dtype != KREA2_BOOL &&
          mask->dtype != KREA2_I64)
        throw InvalidArgument{"mask must be KREA2_F32, KREA2_U8, KREA2_BOOL or KREA2_I64"};
    }
    const Progress progress{o.progress, o.user};
    if (o.progress) e.progress = [&](int done, int total) { progress("encode", done, total); };
    const TextEmbeddings out = encoder->encoder.encode(encoder->tokenizer, texts, e);
    write_tensor(embeds, out.embeds, "embeds");
    if (!mask) return;
    const int64_t n = batch * o.max_sequence_length;
    for (int64_t i = 0; i < n; ++i) {
      const bool valid = !out.mask || out.mask->data[size_t(i)] != 0.0f;
      switch (mask->dtype) {
        case KREA2_F32:
          static_cast<float*>(mask->data)[i] = valid ? 1.0f : 0.0f;
          break;
        case KREA2_I64:
          static_cast<int64_t*>(mask->data)[i] = valid;
          break;
        default:
          static_cast<uint8_t*>(mask->data)[i] = valid;
          break;
      }
    }
  });
}

krea2_status krea2_vae_load(const char* path, const krea2_options* options, krea2_vae** out) {
  return guard("krea2_vae_load", [&] {
    require(out, "out");
    *out = nullptr;
    const std::string p = string_arg(path, "path");
    read_options(options, "krea2_vae_load");
    *out = new krea2_vae{Vae::load(p)};
  });
}

void krea2_vae_free(krea2_vae* vae) {
  delete vae;
}

int64_t krea2_vae_scale_factor(const krea2_vae* vae) {
  return vae ? vae->vae.config().scale_factor() : 0;
}

krea2_status krea2_vae_decode(const krea2_vae* vae, const krea2_tensor* latents, krea2_tensor* image,
                              krea2_progress_fn progress_fn, void* user) {
  return guard("krea2_vae_decode", [&] {
    require(vae, "vae");
    const Tensor z = to_tensor(latents, "latents");
    const VaeConfig& c = vae->vae.config();
    const size_t nd = z.shape.size();
    if ((nd != 4 && nd != 5) || z.dim(1) != c.z_dim || (nd == 5 && z.dim(2) != 1))
      throw InvalidArgument{"latents must be (B, " + std::to_string(c.z_dim) + ", h, w) or (B, " +
                            std::to_string(c.z_dim) + ", 1, h, w), got " + shape_str(z.shape)};
    const int64_t B = z.dim(0), H = z.shape[nd - 2] * c.scale_factor(),
                  W = z.shape[nd - 1] * c.scale_factor();
    require(image, "image");
    if (image->dtype == KREA2_U8)
      check_shape(image, {B, H, W, 3}, "image (U8)");
    else if (image->dtype == KREA2_F32)
      check_shape(image, {B, 3, H, W}, "image (F32)");
    else
      throw InvalidArgument{"image must be KREA2_F32 (B, 3, H, W) or KREA2_U8 (B, H, W, 3)"};
    VaeDecodeOptions d;
    const Progress progress{progress_fn, user};
    if (progress_fn) d.progress = [&](int done, int total) { progress("decode", done, total); };
    const Tensor decoded = vae->vae.decode(z, d);
    if (image->dtype == KREA2_F32) {
      write_tensor(image, decoded, "image");
      return;
    }
    const std::vector<uint8_t> rgb = image_to_rgb8(decoded);
    std::memcpy(image->data, rgb.data(), rgb.size());
  });
}

}  // extern "C"
