// Tensor-name tables: how each diffusers parameter name is spelled in each checkpoint format.
#pragma once
#include <string>
#include <vector>

namespace krea2 {

enum class CheckpointFormat { kDiffusers, kKrea };

const char* format_name(CheckpointFormat f);

// Names a parameter may have in a checkpoint of format `f`, most likely first. `prefix` is prepended to each
// (single-file releases sometimes nest everything under e.g. "model.diffusion_model.").
std::vector<std::string> checkpoint_names(const std::string& diffusers_name, CheckpointFormat f,
                                          const std::string& prefix = "");

// Tensors a format may carry that the model does not use (ComfyUI repacks add last.up / last.down).
bool is_ignorable_extra(const std::string& checkpoint_name, CheckpointFormat f,
                        const std::string& prefix = "");

// Companion tensors of a quantized Linear weight `<base>.weight` in ComfyUI files.
struct QuantCompanionNames {
  std::vector<std::string> weight_scale;  // per-tensor (fp8) or per-row (int8) scale, newest layout first
  std::string comfy_quant;                // U8 tensor holding the layer's quantization JSON
  std::vector<std::string> input_scale;   // fp8 activation scales (unused: products run in float32)
};
// Empty names when `weight_name` does not end in ".weight".
QuantCompanionNames quant_companion_names(const std::string& weight_name);

// The marker tensor of ComfyUI's old scaled-fp8 layout (its dtype names the fp8 format).
std::string scaled_fp8_marker_name(const std::string& prefix);

// The diffusers name of the first input layer in each format, used to detect the format and the prefix.
const char* format_probe_name(CheckpointFormat f);

}  // namespace krea2
