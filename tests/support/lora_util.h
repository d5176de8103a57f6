// Helpers of the adapter tests: the LoRA fixture cases (tests/fixtures/lora, small_lora), the model each
// runs on, and writing adapter files from float32 tensors.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "krea2/model.h"
#include "krea2/tensor.h"

namespace krea2::test {

// tests/fixtures/lora/<name>.
std::string lora_case_dir(const std::string& name);
// The model of a LoRA case: formats_small runs on sample_base_cfg's transformer (the same file, copied
// once), bf16_original_names on its single original-names file.
std::string lora_case_model(const std::string& name);

// Writes float32 tensors (in the given order) as a safetensors adapter file.
void write_adapter(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                   const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

// Every tensor of a file as float32, in file order.
std::vector<std::pair<std::string, Tensor>> read_tensors(const std::string& path);

// The forward of `model` at adapter scale `scale` on the inputs of `inputs_path`.
Tensor lora_forward(const Model& model, const std::string& inputs_path, float scale = 1.0f);

}  // namespace krea2::test
