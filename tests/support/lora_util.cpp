#include "support/lora_util.h"

#include "io/safetensors.h"
#include "support/fixture_io.h"
#include "support/test_util.h"

namespace krea2::test {

std::string lora_case_dir(const std::string& name) {
  return fixture_dir("lora/" + name);
}

std::string lora_case_model(const std::string& name) {
  if (name == "formats_small") return fixture_dir("sample_base_cfg") + "/transformer";
  return lora_case_dir(name) + "/transformer/krea2_small_bf16.safetensors";
}

void write_adapter(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                   const std::map<std::string, std::string>& metadata) {
  std::vector<TensorToWrite> out;
  for (const auto& [name, t] : tensors) out.push_back({name, DType::F32, t.shape, t.ptr()});
  write_safetensors(path, out, metadata);
}

std::vector<std::pair<std::string, Tensor>> read_tensors(const std::string& path) {
  SafetensorsFile f(path);
  std::vector<std::pair<std::string, Tensor>> out;
  for (const TensorView& v : f.tensors()) out.emplace_back(v.name, to_float_tensor(v));
  return out;
}

Tensor lora_forward(const Model& model, const std::string& inputs_path, float scale) {
  ForwardOptions options;
  options.lora_scale = scale;
  return model.forward(read_forward_inputs(inputs_path), options);
}

}  // namespace krea2::test
