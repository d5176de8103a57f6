#include "vae/vae_names.h"

#include <map>

namespace krea2 {

namespace {

// Inside a resnet, diffusers -> Wan (nn.Sequential indices of Wan's ResidualBlock.residual).
std::string wan_resnet_local(const std::string& local) {
  static const std::map<std::string, std::string> kMap = {{"norm1.", "residual.0."},
                                                          {"conv1.", "residual.2."},
                                                          {"norm2.", "residual.3."},
                                                          {"conv2.", "residual.6."},
                                                          {"conv_shortcut.", "shortcut."}};
  for (const auto& [from, to] : kMap)
    if (local.rfind(from, 0) == 0) return to + local.substr(from.size());
  return local;
}

}  // namespace

std::string vae_module_trace_name(const VaeModule& m) {
  const std::string level = std::to_string(m.level), index = std::to_string(m.index);
  switch (m.kind) {
    case VaeModule::kPostQuantConv:
      return "post_quant_conv";
    case VaeModule::kConvIn:
      return "decoder.conv_in";
    case VaeModule::kMidResnet:
      return "decoder.mid_block.resnets." + index;
    case VaeModule::kMidAttention:
      return "decoder.mid_block.attentions.0";
    case VaeModule::kUpResnet:
      return "decoder.up_blocks." + level + ".resnets." + index;
    case VaeModule::kUpsampler:
      return "decoder.up_blocks." + level + ".upsamplers.0";
    case VaeModule::kNormOut:
      return "decoder.norm_out";
    case VaeModule::kConvOut:
      return "decoder.conv_out";
  }
  return "";
}

std::string vae_param_name(const VaeModule& m, const std::string& local, VaeNames names, int64_t R,
                           const std::string& prefix) {
  if (names == VaeNames::kDiffusers) return prefix + vae_module_trace_name(m) + "." + local;
  // Wan: decoder.upsamples is one flat list, per level R + 1 resnets then the upsampler (R + 2 entries).
  const int64_t base = m.level * (R + 2);
  switch (m.kind) {
    case VaeModule::kPostQuantConv:
      return prefix + "conv2." + local;
    case VaeModule::kConvIn:
      return prefix + "decoder.conv1." + local;
    case VaeModule::kMidResnet:
      return prefix + "decoder.middle." + std::to_string(m.index == 0 ? 0 : 2) + "." +
             wan_resnet_local(local);
    case VaeModule::kMidAttention:
      return prefix + "decoder.middle.1." + local;
    case VaeModule::kUpResnet:
      return prefix + "decoder.upsamples." + std::to_string(base + m.index) + "." + wan_resnet_local(local);
    case VaeModule::kUpsampler:
      return prefix + "decoder.upsamples." + std::to_string(base + R + 1) + "." + local;
    case VaeModule::kNormOut:
      return prefix + "decoder.head.0." + local;
    case VaeModule::kConvOut:
      return prefix + "decoder.head.2." + local;
  }
  return "";
}

const char* vae_names_description(VaeNames names) {
  return names == VaeNames::kDiffusers ? "diffusers names (decoder.up_blocks.*)"
                                       : "original Wan 2.1 names (decoder.upsamples.*)";
}

bool is_ignorable_vae_tensor(const std::string& name, VaeNames names) {
  if (name.rfind("encoder.", 0) == 0) return true;
  if (name.rfind(names == VaeNames::kDiffusers ? "quant_conv." : "conv1.", 0) == 0) return true;
  return name.rfind("decoder.", 0) == 0 && name.find(".time_conv.") != std::string::npos;
}

}  // namespace krea2
