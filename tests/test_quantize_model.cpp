// krea2 quantize round trips: a float32 model quantized to every recipe, written, loaded back. The loaded
// weights must be exactly the codes the encoders give for the float weights (bit for bit, and the legacy
// blocks bit-identical to ggml's reference rule), decode close to the float weights, and run the forward.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>

#include "io/gguf.h"
#include "krea2/error.h"
#include "krea2/quantize.h"
#include "model/model_impl.h"
#include "model/weights.h"
#include "ops/weight_decode.h"
#include "support/fixture_io.h"
#include "support/ggml_reference_quant.h"
#include "support/test_util.h"
#include "tensor/quantize.h"

namespace krea2 {
namespace {

using ::testing::HasSubstr;

bool exists(const std::string& path) {
  return std::filesystem::exists(path);
}
int run_cli(const std::string& args, std::string* output) {
  return test::run_command(test::cli_path() + " " + args, output);
}

// Sizes whose rows divide the 256-element K blocks (head 128, as the real model), two blocks.
Config k_friendly_config() {
  return Config::from_json_text(R"({"in_channels": 64, "num_layers": 2, "attention_head_dim": 128,
    "num_attention_heads": 2, "num_key_value_heads": 1, "intermediate_size": 512, "timestep_embed_dim": 256,
    "text_hidden_dim": 256, "num_text_layers": 3, "text_num_attention_heads": 2, "text_num_key_value_heads": 1,
    "text_intermediate_size": 512, "num_layerwise_text_blocks": 1, "num_refiner_text_blocks": 1,
    "axes_dims_rope": [32, 48, 48], "rope_theta": 1000.0, "norm_eps": 1e-05})",
                                "test config");
}

struct Slot {
  const WeightMatrix* matrix = nullptr;
  const std::vector<float>* vector = nullptr;
};
std::map<std::string, Slot> slots(const Model& m) {
  std::map<std::string, Slot> out;
  visit_weights(const_cast<ModelWeights&>(m.impl().weights), m.config(), [&](ParamSlot& s) {
    out[s.name] = {s.matrix, s.vector};
  });
  return out;
}

std::string output_name(const test::TempDir& dir, const QuantRecipe& r) {
  return dir.path() + "/q-" + r.name + (r.file == QuantRecipe::File::kGguf ? ".gguf" : ".safetensors");
}

// Largest per-matrix rel L2 of the decoded weights against the float weights each storage type may show on
// Gaussian rows: about 1.5-2x the largest this test measured (Q8_0 5.5e-3, Q6_K 1.7e-2, Q5_K 3.5e-2, Q4_K
// 7.0e-2, Q4_0 8.8e-2, Q3_K 0.145, fp8 e4m3 2.7e-2, int8 convrot 7.4e-3), which sit at each format's
// step / sqrt(12) relative to the weights' RMS.
double decode_error_bound(DType t) {
  switch (t) {
    case DType::F32:
      return 0;
    case DType::F16:
      return 1e-3;
    case DType::BF16:
      return 8e-3;
    case DType::Q8_0:
      return 1e-2;
    case DType::I8:
      return 2e-2;
    case DType::Q6_K:
      return 3e-2;
    case DType::F8_E4M3:
    case DType::F8_E5M2:
      return 8e-2;
    case DType::Q5_0:
    case DType::Q5_1:
    case DType::Q5_K:
      return 6e-2;
    case DType::Q4_0:
    case DType::Q4_1:
    case DType::Q4_K:
      return 0.13;
    case DType::Q3_K:
      return 0.25;
    default:
      return 0.5;
  }
}

class QuantizeRoundTrip : public ::testing::TestWithParam<std::string> {};

TEST_P(QuantizeRoundTrip, LoadsBackAsTheEncodedWeights) {
  const QuantRecipe recipe = quant_recipe(GetParam());
  const Config c = k_friendly_config();
  const uint64_t seed = 7;
  const Model source = random_quantized_model(c, "F32", seed);
  test::TempDir dir;
  const std::string path = output_name(dir, recipe);
  QuantizeOptions options;
  options.recipe = recipe.name;
  int64_t last_done = 0, total = 0;
  options.progress = [&](int64_t done, int64_t n, const std::string&) {
    EXPECT_EQ(done, last_done + 1);
    last_done = done;
    total = n;
  };
  quantize_model(source, path, options);
  EXPECT_EQ(last_done, total);
  EXPECT_GT(total, 0);
  EXPECT_FALSE(exists(path + ".tmp"));

  const Model loaded = Model::load(path);
  EXPECT_EQ(loaded.config().to_json_text(), c.to_json_text());  // the config travels in the file
  EXPECT_TRUE(loaded.load_info().config_defaulted.empty());
  // The same weights encoded in memory: the quantize command and the bench's random models agree.
  const Model encoded = random_quantized_model(c, recipe.name, seed);
  const auto want = slots(encoded), got = slots(loaded), floats = slots(source);
  ASSERT_EQ(want.size(), got.size());
  for (const auto& [name, slot] : got) {
    SCOPED_TRACE(name);
    const Slot& w = want.at(name);
    if (slot.vector) {
      ASSERT_NE(w.vector, nullptr);
      EXPECT_EQ(*slot.vector, *w.vector);
      EXPECT_EQ(*slot.vector, *floats.at(name).vector);  // 1-D tensors and tables stay float32
      continue;
    }
    const WeightMatrix& m = *slot.matrix;
    ASSERT_EQ(m.dtype, w.matrix->dtype) << dtype_name(m.dtype) << " vs " << dtype_name(w.matrix->dtype);
    if (recipe.file == QuantRecipe::File::kGguf) {
      EXPECT_EQ(m.dtype, recipe_weight_type(recipe, name, m.rows, m.cols));
    }
    ASSERT_EQ(m.rows, w.matrix->rows);
    ASSERT_EQ(m.cols, w.matrix->cols);
    EXPECT_EQ(m.scale, w.matrix->scale);
    EXPECT_EQ(m.rotation_group, w.matrix->rotation_group);
    EXPECT_EQ(std::memcmp(m.data, w.matrix->data, size_t(m.rows * m.row_bytes())), 0);
    if (m.row_scales) {
      ASSERT_NE(w.matrix->row_scales, nullptr);
      EXPECT_EQ(std::memcmp(m.row_scales, w.matrix->row_scales, size_t(m.rows) * sizeof(float)), 0);
    }
    // Decoded, the weight is the float weight up to its format's error.
    const WeightMatrix& f = *floats.at(name).matrix;
    std::vector<float> decoded(size_t(m.rows * m.cols)), original(decoded.size());
    for (int64_t r = 0; r < m.rows; ++r) {
      decode_weight_segment(m, r, 0, m.cols, decoded.data() + r * m.cols);
      decode_weight_segment(f, r, 0, f.cols, original.data() + r * f.cols);
    }
    EXPECT_LE(test::rel_l2(decoded.data(), original.data(), decoded.size()), decode_error_bound(m.dtype))
        << dtype_name(m.dtype);
    // The legacy blocks are ggml's reference rule on the float rows, bit for bit.
    if (m.dtype == DType::Q8_0 || m.dtype == DType::Q4_0 || m.dtype == DType::Q4_1 ||
        m.dtype == DType::Q5_0 || m.dtype == DType::Q5_1) {
      std::vector<uint8_t> ref(size_t(m.row_bytes()));
      for (int64_t r = 0; r < m.rows; ++r) {
        test::ggml_ref::quantize(m.dtype, original.data() + r * m.cols, m.cols, ref.data());
        ASSERT_EQ(
            std::memcmp(ref.data(), static_cast<const uint8_t*>(m.data) + r * m.row_bytes(), ref.size()), 0)
            << "row " << r;
      }
    }
  }

  // The loaded file runs the forward exactly as the in-memory encoding does.
  const ForwardInputs in = test::random_inputs(c, /*batch=*/1, /*image_tokens=*/8, /*text_tokens=*/4, seed);
  const Tensor a = loaded.forward(in), b = encoded.forward(in);
  ASSERT_EQ(a.shape, b.shape);
  EXPECT_EQ(a.data, b.data);
}

INSTANTIATE_TEST_SUITE_P(EveryRecipe, QuantizeRoundTrip, ::testing::ValuesIn(quant_recipe_names()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string n = info.param;
                           for (char& ch : n)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return n;
                         });

// GGUF output: original Krea names, ggml dim order, krea2 architecture, config as krea2.* metadata.
TEST(QuantizeModel, GgufLayoutAndMetadata) {
  const Config c = k_friendly_config();
  test::TempDir dir;
  const std::string path = dir.path() + "/m.gguf";
  QuantizeOptions options;
  options.recipe = "Q4_K_M";
  quantize_model(random_quantized_model(c, "F32", 1), path, options);
  GgufFile f(path);
  EXPECT_EQ(f.get_string("general.architecture"), "krea2");
  EXPECT_EQ(f.get_int("krea2.num_layers"), 2);
  EXPECT_EQ(f.get_int("krea2.attention_head_dim"), 128);
  const auto* wv = f.find("blocks.0.attn.wv.weight");
  ASSERT_NE(wv, nullptr);
  EXPECT_EQ(wv->dtype, DType::Q6_K);  // the _M mix
  const auto* wq = f.find("blocks.0.attn.wq.weight");
  ASSERT_NE(wq, nullptr);
  EXPECT_EQ(wq->dtype, DType::Q4_K);
  const auto* first = f.find("first.weight");
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->dtype, DType::Q8_0);  // 64 wide: no whole 256-block
  EXPECT_EQ(f.find("first.bias")->dtype, DType::F32);
  EXPECT_EQ(f.find("transformer_blocks.0.attn.to_q.weight"), nullptr);  // no diffusers names
}

// Weights whose rows divide no block (the tiny fixture: 8-wide rows) fall back to F16 and still load.
TEST(QuantizeModel, TinyFixtureFallsBackToASafeType) {
  const Model tiny = Model::load(test::fixture_dir("tiny/transformer"));
  test::TempDir dir;
  for (const char* type : {"Q4_K_M", "Q8_0"}) {
    SCOPED_TRACE(type);
    const std::string path = dir.path() + "/tiny-" + type + ".gguf";
    QuantizeOptions options;
    options.recipe = type;
    quantize_model(tiny, path, options);
    const Model back = Model::load(path);
    EXPECT_EQ(back.config().to_json_text(), tiny.config().to_json_text());
    for (const auto& [name, slot] : slots(back))
      if (slot.matrix) {
        const DType t = slot.matrix->dtype;
        EXPECT_TRUE(slot.matrix->cols % 32 == 0 || t == DType::F16) << name << " " << dtype_name(t);
      }
  }
}

TEST(QuantizeModel, BadRecipeAndBadOutputLeaveNoFile) {
  const Model tiny = Model::load(test::fixture_dir("tiny/transformer"));
  test::TempDir dir;
  QuantizeOptions options;
  options.recipe = "Q7_K";
  EXPECT_THROW(
      {
        try {
          quantize_model(tiny, dir.path() + "/x.gguf", options);
        } catch (const Error& e) {
          EXPECT_THAT(e.what(), HasSubstr("Q7_K"));
          throw;
        }
      },
      Error);
  EXPECT_FALSE(exists(dir.path() + "/x.gguf"));
  options.recipe = "Q8_0";
  EXPECT_THROW(quantize_model(tiny, dir.path() + "/no/such/dir/x.gguf", options), Error);
}

TEST(QuantizeCli, WritesAFileTheForwardReads) {
  test::TempDir dir;
  const std::string out = dir.path() + "/tiny.gguf";
  std::string log;
  ASSERT_EQ(run_cli("quantize --model " + test::fixture_dir("tiny/transformer") + " --type Q8_0 --output " +
                        out + " --quiet",
                    &log),
            0)
      << log;
  EXPECT_TRUE(log.empty()) << log;
  std::string inspect;
  ASSERT_EQ(run_cli("inspect " + out, &inspect), 0) << inspect;
  EXPECT_THAT(inspect, HasSubstr("GGUF"));
  EXPECT_THAT(inspect, HasSubstr("Q8_0"));
  EXPECT_NE(run_cli("quantize --model " + test::fixture_dir("tiny/transformer") + " --type Q9 --output " +
                        out + ".2",
                    &log),
            0);
  EXPECT_THAT(log, HasSubstr("unknown quantization type 'Q9'"));
  EXPECT_FALSE(exists(out + ".2"));
}

}  // namespace
}  // namespace krea2
