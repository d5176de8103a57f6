#include "model/names.h"

#include <regex>
#include <utility>

namespace krea2 {

namespace {

// Ordered rewrites from the diffusers spelling to the original Krea one (SPEC.md, "Original Krea checkpoint
// names"). Each pair replaces the first occurrence of a fragment; order matters (e.g. to_out.0 before to_).
const std::pair<const char*, const char*> kKreaRewrites[] = {
    {"img_in.", "first."},
    {"time_embed.linear_1.", "tmlp.0."},
    {"time_embed.linear_2.", "tmlp.2."},
    {"time_mod_proj.", "tproj.1."},
    {"txt_in.norm.weight", "txtmlp.0.scale"},
    {"txt_in.linear_1.", "txtmlp.1."},
    {"txt_in.linear_2.", "txtmlp.3."},
    {"text_fusion.", "txtfusion."},
    {"transformer_blocks.", "blocks."},
    {"attn.to_q.", "attn.wq."},
    {"attn.to_k.", "attn.wk."},
    {"attn.to_v.", "attn.wv."},
    {"attn.to_out.0.", "attn.wo."},
    {"attn.to_gate.", "attn.gate."},
    {"attn.norm_q.weight", "attn.qknorm.qnorm.scale"},
    {"attn.norm_k.weight", "attn.qknorm.knorm.scale"},
    {"ff.gate.", "mlp.gate."},
    {"ff.up.", "mlp.up."},
    {"ff.down.", "mlp.down."},
    {"norm1.weight", "prenorm.scale"},
    {"norm2.weight", "postnorm.scale"},
    {"final_layer.norm.weight", "last.norm.scale"},
    {"final_layer.linear.", "last.linear."},
};

std::string krea_name(std::string name) {
  for (const auto& [from, to] : kKreaRewrites) {
    auto pos = name.find(from);
    if (pos != std::string::npos) name.replace(pos, std::string(from).size(), to);
  }
  return name;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

const char* format_name(CheckpointFormat f) {
  return f == CheckpointFormat::kDiffusers ? "diffusers" : "original Krea";
}

const char* format_probe_name(CheckpointFormat f) {
  return f == CheckpointFormat::kDiffusers ? "img_in.weight" : "first.weight";
}

std::vector<std::string> checkpoint_names(const std::string& diffusers_name, CheckpointFormat f,
                                          const std::string& prefix) {
  if (f == CheckpointFormat::kDiffusers) return {prefix + diffusers_name};
  // The modulation tables are stored flat under ".mod.lin" / "last.modulation.lin" (with or without
  // ".weight").
  if (diffusers_name == "final_layer.scale_shift_table")
    return {prefix + "last.modulation.lin", prefix + "last.modulation.lin.weight"};
  if (ends_with(diffusers_name, ".scale_shift_table")) {
    std::string base = krea_name(diffusers_name.substr(0, diffusers_name.size() - 17));
    return {prefix + base + "mod.lin", prefix + base + "mod.lin.weight"};
  }
  return {prefix + krea_name(diffusers_name)};
}

QuantCompanionNames quant_companion_names(const std::string& weight_name) {
  if (!ends_with(weight_name, ".weight")) return {};
  const std::string base = weight_name.substr(0, weight_name.size() - 7);
  return {{base + ".weight_scale", base + ".scale_weight"},
          base + ".comfy_quant",
          {base + ".input_scale", base + ".scale_input"}};
}

std::string scaled_fp8_marker_name(const std::string& prefix) {
  return prefix + "scaled_fp8";
}

bool is_ignorable_extra(const std::string& checkpoint_name, CheckpointFormat f, const std::string& prefix) {
  if (f != CheckpointFormat::kKrea) return false;
  static const std::regex extra(R"(last\.(up|down)\.(weight|bias))");
  return checkpoint_name.rfind(prefix, 0) == 0 &&
         std::regex_match(checkpoint_name.substr(prefix.size()), extra);
}

}  // namespace krea2
