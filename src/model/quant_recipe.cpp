// Quantization recipes: which storage type each weight gets.
#include <algorithm>

#include "krea2/error.h"
#include "krea2/quantize.h"

namespace krea2 {

namespace {

struct RecipeEntry {
  const char* name;
  QuantRecipe::File file;
  DType base;
};

constexpr RecipeEntry kRecipes[] = {
    {"F32", QuantRecipe::File::kGguf, DType::F32},
    {"F16", QuantRecipe::File::kGguf, DType::F16},
    {"BF16", QuantRecipe::File::kGguf, DType::BF16},
    {"Q8_0", QuantRecipe::File::kGguf, DType::Q8_0},
    {"Q6_K", QuantRecipe::File::kGguf, DType::Q6_K},
    {"Q5_K_M", QuantRecipe::File::kGguf, DType::Q5_K},
    {"Q5_K_S", QuantRecipe::File::kGguf, DType::Q5_K},
    {"Q4_K_M", QuantRecipe::File::kGguf, DType::Q4_K},
    {"Q4_K_S", QuantRecipe::File::kGguf, DType::Q4_K},
    {"Q4_0", QuantRecipe::File::kGguf, DType::Q4_0},
    {"Q4_1", QuantRecipe::File::kGguf, DType::Q4_1},
    {"Q5_0", QuantRecipe::File::kGguf, DType::Q5_0},
    {"Q5_1", QuantRecipe::File::kGguf, DType::Q5_1},
    {"Q3_K_M", QuantRecipe::File::kGguf, DType::Q3_K},
    {"Q3_K_S", QuantRecipe::File::kGguf, DType::Q3_K},
    {"fp8", QuantRecipe::File::kComfyFp8, DType::F8_E4M3},
    {"int8-convrot", QuantRecipe::File::kComfyInt8, DType::I8},
};

bool ends_with(const std::string& s, const char* suffix) {
  const std::string x(suffix);
  return s.size() >= x.size() && s.compare(s.size() - x.size(), x.size(), x) == 0;
}

bool is_k_quant(DType t) {
  return t == DType::Q2_K || t == DType::Q3_K || t == DType::Q4_K || t == DType::Q5_K || t == DType::Q6_K;
}

// A type whose blocks fit rows of `cols`: the wanted one, else Q8_0 (rows of 32), else F16.
DType fitting(DType wanted, int64_t cols) {
  if (cols % dtype_block_elements(wanted) == 0) return wanted;
  if (cols % 32 == 0 && dtype_is_block(wanted)) return DType::Q8_0;
  return DType::F16;
}

}  // namespace

std::vector<std::string> quant_recipe_names() {
  std::vector<std::string> names;
  for (const RecipeEntry& r : kRecipes) names.emplace_back(r.name);
  return names;
}

QuantRecipe quant_recipe(const std::string& name) {
  for (const RecipeEntry& r : kRecipes)
    if (name == r.name) return QuantRecipe{r.name, r.file, r.base, 16};
  std::string valid;
  for (const std::string& n : quant_recipe_names()) valid += (valid.empty() ? "" : ", ") + n;
  throw Error("unknown quantization type '" + name + "' (expected one of: " + valid + ")");
}

DType recipe_weight_type(const QuantRecipe& recipe, const std::string& name, int64_t /*rows*/, int64_t cols) {
  const bool value = ends_with(name, "attn.to_v.weight");
  const bool down = ends_with(name, "ff.down.weight");
  const bool out = ends_with(name, "attn.to_out.0.weight");
  switch (recipe.file) {
    case QuantRecipe::File::kComfyFp8:
      // ComfyUI's fp8 files keep the 64-wide input layer in 16 bits, as the shipped ones do.
      return name == "img_in.weight" ? DType::BF16 : DType::F8_E4M3;
    case QuantRecipe::File::kComfyInt8:
      return cols % recipe.rotation_group == 0 ? DType::I8 : DType::BF16;
    case QuantRecipe::File::kGguf:
      break;
  }
  DType t = recipe.base;
  if (is_k_quant(t)) {
    const bool mixed = recipe.name.ends_with("_M");
    if (name == "final_layer.linear.weight") t = DType::Q6_K;
    if (mixed && t == DType::Q3_K) {
      if (value || down) t = DType::Q5_K;
      if (out) t = DType::Q4_K;
    } else if (mixed && (value || down)) {
      t = DType::Q6_K;
    }
  }
  return fitting(t, cols);
}

}  // namespace krea2
