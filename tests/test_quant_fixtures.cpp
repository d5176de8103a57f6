// Quantized and compressed weight files as users have them (GGUF block quants, ComfyUI scaled fp8 in both
// layouts, ComfyUI int8_tensorwise + convrot): the whole forward on each fixture file against the upstream
// forward on the dequantized weights, through the library and the CLI; the config each file implies; the
// dequantized weights themselves against gguf-py's / the definition's float32 values, bit for bit.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "krea2/model.h"
#include "model/model_impl.h"
#include "ops/weight_decode.h"
#include "support/fixture_io.h"
#include "support/test_util.h"

namespace krea2 {
namespace {

using ::testing::HasSubstr;

struct QuantCase {
  std::string folder;
  std::string weights;
};

std::string case_dir(const QuantCase& c) {
  return test::fixture_dir("quant/" + c.folder);
}

nlohmann::json case_json(const QuantCase& c) {
  std::ifstream f(case_dir(c) + "/case.json");
  return nlohmann::json::parse(f);
}

const QuantCase kCases[] = {
    {"gguf_q8_0_small", "krea2-gguf_q8_0_small.gguf"},
    {"gguf_kquants_medium", "krea2-gguf_kquants_medium.gguf"},
    {"fp8_scaled_small", "krea2-small-fp8-scaled.safetensors"},
    {"fp8_scaled_small", "krea2-small-fp8-comfy-quant.safetensors"},
    {"int8_convrot_small", "krea2-int8_convrot_small.safetensors"},
};

class QuantFixture : public ::testing::TestWithParam<QuantCase> {};

TEST_P(QuantFixture, SampleMatchesUpstreamOnDequantizedWeights) {
  const QuantCase& c = GetParam();
  Model model = Model::load(case_dir(c) + "/" + c.weights);
  const ForwardInputs in = test::read_forward_inputs(case_dir(c) + "/inputs.safetensors");
  SafetensorsFile expected(case_dir(c) + "/expected.safetensors");
  const test::Tolerance tol = test::read_tolerance_file(case_dir(c) + "/case.json");
  for (bool skip : {true, false}) {
    ForwardOptions options;
    options.skip_padded_text = skip;
    test::expect_close(model.forward(in, options), *expected.find("sample"), tol,
                       c.weights + (skip ? " (padding dropped)" : " (padding kept)"));
  }
}

TEST_P(QuantFixture, ConfigIsTheCaseConfig) {
  const QuantCase& c = GetParam();
  Model model = Model::load(case_dir(c) + "/" + c.weights);
  const Config expected = Config::from_json_text(case_json(c)["config"].dump(), "case.json");
  EXPECT_EQ(model.config().to_json_text(), expected.to_json_text());
}

TEST_P(QuantFixture, CliForwardMatchesUpstream) {
  const QuantCase& c = GetParam();
  test::TempDir tmp;
  const std::string out = tmp.file("out.safetensors");
  std::string log;
  ASSERT_EQ(test::run_command(test::cli_path() + " forward --quiet --model " + case_dir(c) + "/" + c.weights +
                                  " --inputs " + case_dir(c) + "/inputs.safetensors --output " + out,
                              &log),
            0)
      << log;
  SafetensorsFile got(out), expected(case_dir(c) + "/expected.safetensors");
  ASSERT_NE(got.find("sample"), nullptr);
  test::expect_close(to_float_tensor(*got.find("sample")), *expected.find("sample"),
                     test::read_tolerance_file(case_dir(c) + "/case.json"), c.weights + " via CLI");
}

INSTANTIATE_TEST_SUITE_P(Upstream, QuantFixture, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<QuantCase>& info) {
                           std::string name = info.param.weights.substr(0, info.param.weights.find('.'));
                           for (char& ch : name)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return name;
                         });

// The WeightMatrix the loader bound to diffusers parameter `name`.
const WeightMatrix* bound_matrix(const Model& model, const std::string& name) {
  const WeightMatrix* found = nullptr;
  visit_weights(const_cast<ModelWeights&>(model.impl().weights), model.config(), [&](ParamSlot& s) {
    if (s.name == name && s.matrix) found = s.matrix;
  });
  return found;
}

// Diffusers name of an original-Krea checkpoint name (the few the dequant references use).
std::string diffusers_name(std::string krea) {
  const std::pair<const char*, const char*> renames[] = {
      {"model.diffusion_model.", ""}, {"first.", "img_in."},       {"tmlp.0.", "time_embed.linear_1."},
      {"txtfusion.", "text_fusion."}, {"attn.wq.", "attn.to_q."},  {"attn.wk.", "attn.to_k."},
      {"attn.wv.", "attn.to_v."},     {"attn.wo.", "attn.to_out.0."}, {"attn.gate.", "attn.to_gate."},
      {"mlp.", "ff."},
  };
  for (const auto& [from, to] : renames) {
    const auto pos = krea.find(from);
    if (pos != std::string::npos) krea.replace(pos, std::string(from).size(), to);
  }
  return krea;
}

// Every tensor of a dequant_reference file equals the loaded weight decoded by the engine, bit for bit.
void expect_dequant_reference(const std::string& weights, const std::string& reference) {
  Model model = Model::load(weights);
  SafetensorsFile ref(reference);
  ASSERT_FALSE(ref.tensors().empty());
  for (const TensorView& t : ref.tensors()) {
    SCOPED_TRACE(t.name);
    const WeightMatrix* w = bound_matrix(model, diffusers_name(t.name));
    ASSERT_NE(w, nullptr);
    const Tensor expected = to_float_tensor(t);
    ASSERT_EQ(expected.shape, (Shape{w->rows, w->cols}));
    std::vector<float> row(size_t(w->cols)), row_ref(size_t(w->cols));
    int64_t mismatches = 0;
    for (int64_t o = 0; o < w->rows; ++o) {
      decode_weight_segment(*w, o, 0, w->cols, row.data());
      decode_weight_row_reference(*w, o, row_ref.data());
      for (int64_t i = 0; i < w->cols; ++i) {
        const float e = expected.data[size_t(o * w->cols + i)];
        mismatches += row[size_t(i)] != e || row_ref[size_t(i)] != e;
      }
    }
    EXPECT_EQ(mismatches, 0) << dtype_name(w->dtype);
  }
}

TEST(QuantDequant, GgufBlockDecodersAreBitExactWithGgufPy) {
  const std::string dir = test::fixture_dir("quant/gguf_kquants_medium");
  expect_dequant_reference(dir + "/krea2-gguf_kquants_medium.gguf", dir + "/dequant_reference.safetensors");
}

TEST(QuantDequant, Int8ConvrotIsBitExactWithTheDefinition) {
  const std::string dir = test::fixture_dir("quant/int8_convrot_small");
  expect_dequant_reference(dir + "/krea2-int8_convrot_small.safetensors", dir + "/dequant_reference.safetensors");
}

TEST(QuantLoad, WhereTheConfigComesFrom) {
  const std::string q8 = test::fixture_dir("quant/gguf_q8_0_small/krea2-gguf_q8_0_small.gguf");
  std::vector<std::string> warnings;
  LoadOptions options;
  options.warnings = &warnings;
  Model with_metadata = Model::load(q8, options);
  EXPECT_THAT(with_metadata.load_info().config_source, HasSubstr("krea2.* metadata"));
  EXPECT_TRUE(with_metadata.load_info().config_defaulted.empty());
  EXPECT_THAT(with_metadata.load_info().file_format, HasSubstr("GGUF v3"));
  // The extras some community files carry are ignored, with a note.
  EXPECT_EQ(with_metadata.load_info().ignored_tensors,
            (std::vector<std::string>{"last.down.weight", "last.up.weight"}));
  ASSERT_FALSE(warnings.empty());
  EXPECT_THAT(warnings.back(), HasSubstr("last.up.weight"));

  Model from_shapes =
      Model::load(test::fixture_dir("quant/gguf_kquants_medium/krea2-gguf_kquants_medium.gguf"));
  EXPECT_EQ(from_shapes.load_info().config_source, "tensor shapes");
  EXPECT_EQ(from_shapes.load_info().config_defaulted,
            (std::vector<std::string>{"axes_dims_rope", "rope_theta", "norm_eps"}));
  EXPECT_THAT(from_shapes.load_info().names, HasSubstr("model.diffusion_model."));

  Model comfy = Model::load(test::fixture_dir("quant/int8_convrot_small/krea2-int8_convrot_small.safetensors"));
  EXPECT_THAT(comfy.load_info().config_source, HasSubstr("config.json"));
  EXPECT_THAT(comfy.load_info().quantization, HasSubstr("convrot (G = 16)"));
}

// The weights stay in their stored types: no float32 copy of a quantized weight exists.
TEST(QuantLoad, WeightsStayInStoredTypes) {
  Model m = Model::load(test::fixture_dir("quant/gguf_kquants_medium/krea2-gguf_kquants_medium.gguf"));
  const auto bytes = m.bytes_per_dtype();
  for (DType t : {DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::Q4_0, DType::Q4_1,
                  DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::F16, DType::BF16}) {
    EXPECT_GT(bytes.count(t) ? bytes.at(t) : 0, 0) << dtype_name(t);
  }
  EXPECT_EQ(bound_matrix(m, "transformer_blocks.0.attn.to_v.weight")->dtype, DType::Q6_K);
  Model fp8 = Model::load(test::fixture_dir("quant/fp8_scaled_small/krea2-small-fp8-scaled.safetensors"));
  EXPECT_EQ(bound_matrix(fp8, "transformer_blocks.2.ff.down.weight")->dtype, DType::F8_E5M2);
  EXPECT_EQ(bound_matrix(fp8, "transformer_blocks.0.ff.down.weight")->dtype, DType::F8_E4M3);
  EXPECT_EQ(bound_matrix(fp8, "img_in.weight")->dtype, DType::BF16);
  EXPECT_NE(bound_matrix(fp8, "transformer_blocks.0.ff.down.weight")->scale, 1.0f);
}

}  // namespace
}  // namespace krea2
