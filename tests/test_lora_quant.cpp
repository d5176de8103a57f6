// Adapters on quantized models (every quant fixture: GGUF Q8_0, the K-quant mix with every block type,
// scaled fp8, int8 convrot): at run time and merged, the forward matches float math on the dequantized
// weights with the delta merged by this test (float64) into a float32 checkpoint, loaded back.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "io/safetensors.h"
#include "krea2/lora.h"
#include "krea2/model.h"
#include "krea2/quantize.h"
#include "support/fixture_io.h"
#include "support/lora_util.h"
#include "support/test_util.h"

namespace krea2 {
namespace {

struct Factors {
  std::string param;  // diffusers weight name
  Tensor a, b;        // (r, in), (out, r)
};

// A PEFT adapter (rank 4, lora_alpha 8: factor 2) on every other Linear weight of `model`.
std::vector<Factors> random_adapter(const Model& model, const std::string& path) {
  std::vector<Factors> out;
  std::vector<std::pair<std::string, Tensor>> tensors;
  int i = 0;
  for (const TensorView& p : model.parameters()) {
    const bool linear = p.shape.size() == 2 && p.name.find("table") == std::string::npos &&
                        p.name.find("projector") == std::string::npos;
    if (!linear || i++ % 2) continue;
    const int64_t r = 4, o = p.shape[0], in = p.shape[1];
    Factors f{p.name, Tensor({r, in}, test::random_floats(size_t(r * in), uint64_t(i))),
              Tensor({o, r}, test::random_floats(size_t(o * r), uint64_t(i) + 1000, 0.05f))};
    const std::string module = "transformer." + p.name.substr(0, p.name.size() - 7);
    tensors.emplace_back(module + ".lora_A.weight", f.a);
    tensors.emplace_back(module + ".lora_B.weight", f.b);
    out.push_back(std::move(f));
  }
  test::write_adapter(
      path, tensors,
      {{"format", "pt"}, {"lora_adapter_metadata", R"({"transformer.r": 4, "transformer.lora_alpha": 8})"}});
  return out;
}

// The dequantized weights plus 2 * strength * B A (float64, rounded once), as a float32 diffusers folder.
// Dequantized by the quantizer's own "F32" recipe (every stored type decoded with its scales / rotation).
void write_merged_reference(const Model& model, const std::vector<Factors>& adapter, double strength,
                            const std::string& folder) {
  QuantizeOptions f32;
  f32.recipe = "F32";
  quantize_model(model, folder + ".gguf", f32);
  const Model dequantized = Model::load(folder + ".gguf");
  std::map<std::string, Tensor> tensors;
  for (const TensorView& p : dequantized.parameters()) {
    ASSERT_EQ(p.dtype, DType::F32) << p.name;
    tensors[p.name] = to_float_tensor(p);
  }
  for (const Factors& f : adapter) {
    Tensor& w = tensors.at(f.param);
    const int64_t o = f.b.dim(0), r = f.a.dim(0), in = f.a.dim(1);
    for (int64_t i = 0; i < o; ++i)
      for (int64_t j = 0; j < in; ++j) {
        double d = 0;
        for (int64_t k = 0; k < r; ++k)
          d += double(f.b.data[size_t(i * r + k)]) * f.a.data[size_t(k * in + j)];
        w.data[size_t(i * in + j)] = float(double(w.data[size_t(i * in + j)]) + 2.0 * strength * d);
      }
  }
  std::filesystem::create_directories(folder);
  write_safetensors(folder + "/diffusion_pytorch_model.safetensors", tensors);
  std::ofstream(folder + "/config.json") << model.config().to_json_text();
}

class QuantLora : public ::testing::TestWithParam<std::pair<const char*, const char*>> {};

TEST_P(QuantLora, MatchesFloatMathOnDequantizedWeightsPlusDelta) {
  const std::string dir = test::fixture_dir(std::string("quant/") + GetParam().first);
  const Model model = Model::load(dir + "/" + GetParam().second);
  ASSERT_NE(model.load_info().quantization, "none");
  test::TempDir tmp;
  const auto adapter = random_adapter(model, tmp.file("adapter.safetensors"));
  write_merged_reference(model, adapter, 0.75, tmp.file("reference"));
  const std::string inputs = dir + "/inputs.safetensors";
  const Tensor want = test::lora_forward(Model::load(tmp.file("reference")), inputs);
  const Tensor base = test::lora_forward(model, inputs);
  ASSERT_GT(test::rel_l2(base.ptr(), want.ptr(), want.data.size()), 1e-2) << "the delta must matter";
  const LoraAdapter a = LoraAdapter::load(tmp.file("adapter.safetensors"));
  for (bool merge : {false, true}) {
    LoraOptions o;
    o.merge = merge;
    const Model m = model.with_loras({{a, 1.0f}}, o);
    const Tensor got = test::lora_forward(m, inputs, 0.75f);
    EXPECT_LE(test::rel_l2(got.ptr(), want.ptr(), want.data.size()), 1e-5) << (merge ? "merged" : "run time");
    // At run time the quantized weights stay as stored.
    if (!merge)
      for (const TensorView& p : m.parameters())
        for (const TensorView& q : model.parameters()) {
          if (p.name == q.name) {
            EXPECT_EQ(p.dtype, q.dtype) << p.name;
          }
        }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Fixtures, QuantLora,
    ::testing::Values(std::pair{"gguf_q8_0_small", "krea2-gguf_q8_0_small.gguf"},
                      std::pair{"gguf_kquants_medium", "krea2-gguf_kquants_medium.gguf"},
                      std::pair{"fp8_scaled_small", "krea2-small-fp8-scaled.safetensors"},
                      std::pair{"int8_convrot_small", "krea2-int8_convrot_small.safetensors"}),
    [](const auto& info) { return std::string(info.param.first); });

}  // namespace
}  // namespace krea2
