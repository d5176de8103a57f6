// Quantizing a model: the recipes (which storage type each weight gets), and writing a quantized file
// (GGUF, ComfyUI scaled fp8 safetensors, ComfyUI int8_tensorwise + convrot safetensors) tensor by tensor.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "krea2/model.h"
#include "krea2/tensor.h"

namespace krea2 {

// A quantization recipe, by the name `krea2 quantize --type` and `krea2 bench --weights` take:
//   F32, F16, BF16, Q8_0, Q6_K, Q5_K_M, Q5_K_S, Q4_K_M, Q4_K_S, Q4_0, Q4_1, Q5_0, Q5_1, Q3_K_M, Q3_K_S
//   (GGUF); fp8 (ComfyUI scaled F8_E4M3); int8-convrot (ComfyUI int8_tensorwise with a Hadamard rotation).
// The _M mixes give attn.wv and mlp.down more precision (as llama.cpp's do); every K recipe stores
// last.linear as Q6_K; a weight whose rows do not divide the block falls back to Q8_0 (rows of 32) or F16.
struct QuantRecipe {
  std::string name;
  enum class File { kGguf, kComfyFp8, kComfyInt8 } file = File::kGguf;
  DType base = DType::F32;      // most weights
  int64_t rotation_group = 16;  // int8-convrot only
};
std::vector<std::string> quant_recipe_names();
// Throws krea2::Error listing the valid names.
QuantRecipe quant_recipe(const std::string& name);

// The storage type of one Linear weight (diffusers parameter name, (rows, cols)) under `recipe`. 1-D tensors,
// modulation tables and the projector are never quantized (kept F32).
DType recipe_weight_type(const QuantRecipe& recipe, const std::string& diffusers_name, int64_t rows,
                         int64_t cols);

struct QuantizeOptions {
  std::string recipe = "Q8_0";
  int64_t rotation_group = 16;  // int8-convrot: G, a power of 4 dividing the rows it applies to
  // Called after each tensor: (tensors done, total, name).
  std::function<void(int64_t, int64_t, const std::string&)> progress;
};

// Writes `model` quantized by options.recipe to `output` (GGUF for the GGUF recipes, safetensors for fp8 /
// int8-convrot), under the original Krea names, ggml dim order for GGUF, with the config as krea2.* metadata
// (GGUF) or in the safetensors __metadata__ "config". Streams tensor by tensor (the whole model is never in
// memory), writes OUTPUT.tmp and renames it. Source weights of any stored type are dequantized first.
void quantize_model(const Model& model, const std::string& output, const QuantizeOptions& options);

// Random weights stored as `recipe` stores them ("F32" gives the float32 weights every other recipe
// quantizes, so forwards can be compared): each matrix's rows are drawn from a pool of random rows (cheap at
// the full model size; the products cost the same), quantized once per pool row.
Model random_quantized_model(const Config& config, const std::string& recipe, uint64_t seed);

}  // namespace krea2
