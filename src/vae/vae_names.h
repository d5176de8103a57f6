// The VAE's two naming schemes: diffusers (AutoencoderKLQwenImage = AutoencoderKLWan) and the original
// Wan 2.1 layout (Wan2.1_VAE.pth, ComfyUI's single files). Names are built from a module's place in the
// architecture (the table of the fixture README, for any number of levels and res blocks), never by rewriting
// strings.
#pragma once
#include <cstdint>
#include <string>

namespace krea2 {

enum class VaeNames { kDiffusers, kWan };

// A decoder module: post_quant_conv, conv_in, mid resnet `index` (0, 1), the mid attention, resnet `index` of
// up block `level`, the upsampler of up block `level`, norm_out, conv_out.
struct VaeModule {
  enum Kind { kPostQuantConv, kConvIn, kMidResnet, kMidAttention, kUpResnet, kUpsampler, kNormOut, kConvOut };
  Kind kind = kConvIn;
  int64_t level = 0, index = 0;
};

// The checkpoint name of parameter `local` of module m, `local` spelled as diffusers does inside the module
// ("norm1.gamma", "conv1.weight", "conv_shortcut.bias", "to_qkv.weight", "resample.1.weight", "gamma",
// "weight", ...). `prefix` goes in front ("", "vae.", "first_stage_model.").
std::string vae_param_name(const VaeModule& m, const std::string& local, VaeNames names,
                           int64_t num_res_blocks, const std::string& prefix = "");
// The diffusers name of a module's output (the fixture trace names): "decoder.up_blocks.1.resnets.2", ...
std::string vae_module_trace_name(const VaeModule& m);

const char* vae_names_description(VaeNames names);
// Tensors a VAE file holds that decoding never reads: the encoder, quant_conv, the upsamplers' time_conv
// (skipped for the first frame). `name` without the prefix.
bool is_ignorable_vae_tensor(const std::string& name, VaeNames names);

}  // namespace krea2
