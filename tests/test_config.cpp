// Config: SPEC defaults, parsing diffusers' config.json, warnings for unknown keys, and one krea2::Error
// naming the key for every invalid value.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "krea2/config.h"
#include "krea2/error.h"
#include "support/test_util.h"

namespace krea2 {
namespace {

using ::testing::HasSubstr;
using json = nlohmann::json;

std::string tiny_config_path() {
  return test::fixture_dir("tiny") + "/transformer/config.json";
}
json tiny_json() {
  return json::parse(test::read_file(tiny_config_path()));
}

void expect_same(const Config& a, const Config& b) {
  EXPECT_EQ(a.in_channels, b.in_channels);
  EXPECT_EQ(a.num_layers, b.num_layers);
  EXPECT_EQ(a.attention_head_dim, b.attention_head_dim);
  EXPECT_EQ(a.num_attention_heads, b.num_attention_heads);
  EXPECT_EQ(a.num_key_value_heads, b.num_key_value_heads);
  EXPECT_EQ(a.intermediate_size, b.intermediate_size);
  EXPECT_EQ(a.timestep_embed_dim, b.timestep_embed_dim);
  EXPECT_EQ(a.text_hidden_dim, b.text_hidden_dim);
  EXPECT_EQ(a.num_text_layers, b.num_text_layers);
  EXPECT_EQ(a.text_num_attention_heads, b.text_num_attention_heads);
  EXPECT_EQ(a.text_num_key_value_heads, b.text_num_key_value_heads);
  EXPECT_EQ(a.text_intermediate_size, b.text_intermediate_size);
  EXPECT_EQ(a.num_layerwise_text_blocks, b.num_layerwise_text_blocks);
  EXPECT_EQ(a.num_refiner_text_blocks, b.num_refiner_text_blocks);
  EXPECT_EQ(a.axes_dims_rope, b.axes_dims_rope);
  EXPECT_EQ(a.rope_theta, b.rope_theta);
  EXPECT_EQ(a.norm_eps, b.norm_eps);
}

// Parses `j` and returns the krea2::Error message; fails the test if it parses or throws anything else.
std::string parse_error(const std::string& text, const std::string& source = "cfg.json") {
  try {
    Config::from_json_text(text, source);
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not a krea2::Error: " << e.what();
    return "";
  }
  ADD_FAILURE() << "parsed without error: " << text;
  return "";
}

std::string validate_error(const Config& c) {
  try {
    c.validate();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "validate() accepted the config";
  return "";
}

// The tiny fixture's config with one key replaced.
std::string tiny_with(const std::string& key, const json& value) {
  json j = tiny_json();
  j[key] = value;
  return j.dump();
}

TEST(Config, DefaultsAreTheSpec) {
  Config c;
  EXPECT_EQ(c.in_channels, 64);
  EXPECT_EQ(c.num_layers, 28);
  EXPECT_EQ(c.attention_head_dim, 128);
  EXPECT_EQ(c.num_attention_heads, 48);
  EXPECT_EQ(c.num_key_value_heads, 12);
  EXPECT_EQ(c.intermediate_size, 16384);
  EXPECT_EQ(c.timestep_embed_dim, 256);
  EXPECT_EQ(c.text_hidden_dim, 2560);
  EXPECT_EQ(c.num_text_layers, 12);
  EXPECT_EQ(c.text_num_attention_heads, 20);
  EXPECT_EQ(c.text_num_key_value_heads, 20);
  EXPECT_EQ(c.text_intermediate_size, 6912);
  EXPECT_EQ(c.num_layerwise_text_blocks, 2);
  EXPECT_EQ(c.num_refiner_text_blocks, 2);
  EXPECT_EQ(c.axes_dims_rope, (std::vector<int>{32, 48, 48}));
  EXPECT_EQ(c.rope_theta, 1000.0);
  EXPECT_EQ(c.norm_eps, 1e-5);
  EXPECT_NO_THROW(c.validate());
  // Derived sizes (SPEC notation).
  EXPECT_EQ(c.hidden(), 6144);
  EXPECT_EQ(c.kv_hidden(), 1536);
  EXPECT_EQ(c.text_head_dim(), 128);
  EXPECT_EQ(c.text_kv_hidden(), 2560);
}

TEST(Config, EmptyObjectGivesDefaults) {
  std::vector<std::string> warnings;
  expect_same(Config::from_json_text("{}", "empty.json", &warnings), Config{});
  EXPECT_TRUE(warnings.empty());
}

TEST(Config, ParsesTheFixtureConfig) {
  std::vector<std::string> warnings;
  Config c = Config::from_json_file(tiny_config_path(), &warnings);
  // _class_name and _diffusers_version are metadata: no warning.
  EXPECT_TRUE(warnings.empty()) << warnings.front();
  EXPECT_EQ(c.in_channels, 16);
  EXPECT_EQ(c.num_layers, 2);
  EXPECT_EQ(c.attention_head_dim, 8);
  EXPECT_EQ(c.num_attention_heads, 4);
  EXPECT_EQ(c.num_key_value_heads, 2);
  EXPECT_EQ(c.intermediate_size, 32);
  EXPECT_EQ(c.timestep_embed_dim, 8);
  EXPECT_EQ(c.text_hidden_dim, 16);
  EXPECT_EQ(c.num_text_layers, 3);
  EXPECT_EQ(c.text_num_attention_heads, 2);
  EXPECT_EQ(c.text_num_key_value_heads, 1);
  EXPECT_EQ(c.text_intermediate_size, 16);
  EXPECT_EQ(c.num_layerwise_text_blocks, 1);
  EXPECT_EQ(c.num_refiner_text_blocks, 1);
  EXPECT_EQ(c.axes_dims_rope, (std::vector<int>{4, 2, 2}));
  EXPECT_EQ(c.rope_theta, 1000.0);
  EXPECT_EQ(c.norm_eps, 1e-5);
  EXPECT_EQ(c.hidden(), 32);
  EXPECT_EQ(c.kv_hidden(), 16);
  EXPECT_EQ(c.text_head_dim(), 8);
  EXPECT_EQ(c.text_kv_hidden(), 8);
  // from_json_text on the same bytes gives the same config.
  expect_same(Config::from_json_text(test::read_file(tiny_config_path()), "x"), c);
}

TEST(Config, EveryFixtureConfigParsesWithoutWarnings) {
  for (const char* name : {"tiny", "small_nomask", "small_masked_batch", "small_sharded_bf16", "small_lora",
                           "sample_turbo", "sample_base_cfg"}) {
    std::vector<std::string> warnings;
    EXPECT_NO_THROW(Config::from_json_file(test::fixture_dir(name) + "/transformer/config.json", &warnings))
        << name;
    EXPECT_TRUE(warnings.empty()) << name;
  }
}

TEST(Config, UnknownKeyWarns) {
  json j = tiny_json();
  j["use_fancy_attention"] = true;
  j["_some_metadata"] = "ignored silently";
  std::vector<std::string> warnings;
  Config c = Config::from_json_text(j.dump(), "my/config.json", &warnings);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_THAT(warnings[0], HasSubstr("use_fancy_attention"));
  EXPECT_EQ(c.in_channels, 16);
  // Without a warnings vector an unknown key is still not an error.
  EXPECT_NO_THROW(Config::from_json_text(j.dump(), "my/config.json"));
}

TEST(Config, IntegerWrittenAsFloatIsAccepted) {
  Config c = Config::from_json_text(tiny_with("num_layers", 3.0), "c.json");
  EXPECT_EQ(c.num_layers, 3);
}

// Positive sizes: 0 and negative values are errors naming the key.
TEST(Config, ZeroOrNegativeSizesNameTheKey) {
  for (const char* key : {"in_channels", "attention_head_dim", "num_attention_heads", "num_key_value_heads",
                          "intermediate_size", "timestep_embed_dim", "text_hidden_dim", "num_text_layers",
                          "text_num_attention_heads", "text_num_key_value_heads", "text_intermediate_size"}) {
    for (int v : {0, -1, -64}) {
      SCOPED_TRACE(std::string(key) + " = " + std::to_string(v));
      EXPECT_THAT(parse_error(tiny_with(key, v), "dir/config.json"), HasSubstr(std::string("'") + key + "'"));
      EXPECT_THAT(parse_error(tiny_with(key, v), "dir/config.json"), HasSubstr("dir/config.json"));
    }
  }
}

// Layer / block counts: negative is an error; 0 is a valid (empty) stack, as an empty nn.ModuleList upstream.
TEST(Config, NegativeCountsNameTheKey) {
  for (const char* key : {"num_layers", "num_layerwise_text_blocks", "num_refiner_text_blocks"}) {
    SCOPED_TRACE(key);
    EXPECT_THAT(parse_error(tiny_with(key, -1)), HasSubstr(std::string("'") + key + "'"));
    EXPECT_NO_THROW(Config::from_json_text(tiny_with(key, 0), "c.json"));
  }
}

TEST(Config, NonIntegerValuesNameTheKey) {
  for (const char* key : {"in_channels", "num_layers", "attention_head_dim", "num_attention_heads",
                          "num_key_value_heads", "intermediate_size", "timestep_embed_dim", "text_hidden_dim",
                          "num_text_layers", "text_num_attention_heads", "text_num_key_value_heads",
                          "text_intermediate_size", "num_layerwise_text_blocks", "num_refiner_text_blocks"}) {
    for (const json& v :
         {json("16"), json(2.5), json(true), json(nullptr), json::array({16}), json::object()}) {
      SCOPED_TRACE(std::string(key) + " = " + v.dump());
      EXPECT_THAT(parse_error(tiny_with(key, v)), HasSubstr(std::string("'") + key + "'"));
    }
  }
  EXPECT_THAT(parse_error(tiny_with("num_layers", int64_t(1) << 40)), HasSubstr("'num_layers'"));
  EXPECT_THAT(parse_error(tiny_with("rope_theta", "1000")), HasSubstr("'rope_theta'"));
  EXPECT_THAT(parse_error(tiny_with("norm_eps", "1e-5")), HasSubstr("'norm_eps'"));
  EXPECT_THAT(parse_error(tiny_with("axes_dims_rope", "4,2,2")), HasSubstr("'axes_dims_rope'"));
  EXPECT_THAT(parse_error(tiny_with("axes_dims_rope", json::array({4, "2", 2}))),
              HasSubstr("'axes_dims_rope'"));
  EXPECT_THAT(parse_error(tiny_with("axes_dims_rope", json::array({4.5, 1.5, 2}))),
              HasSubstr("'axes_dims_rope'"));
}

TEST(Config, AxesMustSumToHeadDim) {
  EXPECT_THAT(parse_error(tiny_with("axes_dims_rope", json::array({4, 2, 4}))),
              HasSubstr("'axes_dims_rope'"));
  EXPECT_THAT(parse_error(tiny_with("attention_head_dim", 10)), HasSubstr("'axes_dims_rope'"));
  Config c;
  c.axes_dims_rope = {32, 48, 50};
  EXPECT_THAT(validate_error(c), HasSubstr("'axes_dims_rope'"));
}

TEST(Config, OddAxisIsAnError) {
  EXPECT_THAT(parse_error(tiny_with("axes_dims_rope", json::array({3, 3, 2}))),
              HasSubstr("'axes_dims_rope'"));
  EXPECT_THAT(parse_error(tiny_with("axes_dims_rope", json::array({4, 1, 3}))),
              HasSubstr("'axes_dims_rope'"));
  EXPECT_THAT(parse_error(tiny_with("axes_dims_rope", json::array({-2, 6, 4}))),
              HasSubstr("'axes_dims_rope'"));
  Config c;
  c.axes_dims_rope = {31, 49, 48};
  EXPECT_THAT(validate_error(c), HasSubstr("'axes_dims_rope'"));
}

TEST(Config, AxesListLength) {
  for (const json& axes : {json::array({8}), json::array({4, 4}), json::array({2, 2, 2, 2}), json::array()}) {
    SCOPED_TRACE(axes.dump());
    EXPECT_THAT(parse_error(tiny_with("axes_dims_rope", axes)), HasSubstr("'axes_dims_rope'"));
  }
}

TEST(Config, ZeroAxisIsAccepted) {
  // An axis of 0 dims is even and >= 0; upstream builds an empty frequency list for it.
  Config c = Config::from_json_text(tiny_with("axes_dims_rope", json::array({0, 4, 4})), "c.json");
  EXPECT_EQ(c.axes_dims_rope, (std::vector<int>{0, 4, 4}));
}

TEST(Config, HeadsMustDivide) {
  {
    json j = tiny_json();
    j["num_key_value_heads"] = 3;  // 4 % 3
    EXPECT_THAT(parse_error(j.dump()), HasSubstr("'num_attention_heads'"));
    EXPECT_THAT(parse_error(j.dump()), HasSubstr("'num_key_value_heads'"));
  }
  {
    json j = tiny_json();
    j["text_num_key_value_heads"] = 3;  // 2 % 3
    EXPECT_THAT(parse_error(j.dump()), HasSubstr("'text_num_attention_heads'"));
    EXPECT_THAT(parse_error(j.dump()), HasSubstr("'text_num_key_value_heads'"));
  }
  {
    json j = tiny_json();
    j["text_num_attention_heads"] = 3;  // 16 % 3 (checked before the kv heads)
    j["text_num_key_value_heads"] = 1;
    EXPECT_THAT(parse_error(j.dump()), HasSubstr("'text_hidden_dim'"));
  }
  Config c;
  c.num_key_value_heads = 7;
  EXPECT_THAT(validate_error(c), HasSubstr("'num_key_value_heads'"));
  c = Config{};
  c.text_num_attention_heads = 30;  // 2560 % 30 != 0
  EXPECT_THAT(validate_error(c), HasSubstr("'text_hidden_dim'"));
}

TEST(Config, OddTimestepEmbedDim) {
  EXPECT_THAT(parse_error(tiny_with("timestep_embed_dim", 7)), HasSubstr("'timestep_embed_dim'"));
}

TEST(Config, EpsAndThetaMustBePositive) {
  for (double v : {-1e-5, 0.0}) {
    EXPECT_THAT(parse_error(tiny_with("norm_eps", v)), HasSubstr("'norm_eps'")) << v;
    EXPECT_THAT(parse_error(tiny_with("rope_theta", v * 1e8)), HasSubstr("'rope_theta'")) << v;
  }
  EXPECT_THAT(parse_error(tiny_with("rope_theta", -1000.0)), HasSubstr("'rope_theta'"));
  Config c;
  c.norm_eps = std::numeric_limits<double>::infinity();
  EXPECT_THAT(validate_error(c), HasSubstr("'norm_eps'"));
  c = Config{};
  c.rope_theta = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THAT(validate_error(c), HasSubstr("'rope_theta'"));
}

TEST(Config, BadJsonNamesTheSource) {
  for (const char* text : {"{", "", "not json", "{\"in_channels\": 16,}", "{\"a\" 1}"}) {
    SCOPED_TRACE(text);
    EXPECT_THAT(parse_error(text, "where/config.json"), HasSubstr("where/config.json"));
  }
}

TEST(Config, TopLevelMustBeAnObject) {
  for (const char* text : {"[1, 2, 3]", "[]", "16", "\"config\"", "null"}) {
    SCOPED_TRACE(text);
    EXPECT_THAT(parse_error(text, "top.json"), HasSubstr("top.json"));
  }
}

TEST(Config, MissingFile) {
  try {
    Config::from_json_file("/nonexistent/krea2/config.json");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("/nonexistent/krea2/config.json"));
  }
}

TEST(Config, ToJsonRoundTrips) {
  Config odd;
  odd.in_channels = 12;
  odd.num_layers = 0;
  odd.attention_head_dim = 24;
  odd.num_attention_heads = 6;
  odd.num_key_value_heads = 3;
  odd.intermediate_size = 100;
  odd.timestep_embed_dim = 10;
  odd.text_hidden_dim = 30;
  odd.num_text_layers = 5;
  odd.text_num_attention_heads = 3;
  odd.text_num_key_value_heads = 1;
  odd.text_intermediate_size = 7;
  odd.num_layerwise_text_blocks = 0;
  odd.num_refiner_text_blocks = 3;
  odd.axes_dims_rope = {0, 12, 12};
  odd.rope_theta = 10000.123456789012;
  odd.norm_eps = 1.0000000000000002e-6;
  ASSERT_NO_THROW(odd.validate());
  for (const Config& c : {Config{}, Config::from_json_file(tiny_config_path()), odd}) {
    const std::string text = c.to_json_text();
    std::vector<std::string> warnings;
    Config back = Config::from_json_text(text, "roundtrip.json", &warnings);
    expect_same(back, c);
    EXPECT_TRUE(warnings.empty());
    json j = json::parse(text);
    EXPECT_EQ(j.at("_class_name"), "Krea2Transformer2DModel");
    EXPECT_EQ(j.size(), 18u);  // _class_name + the 17 init arguments
    EXPECT_EQ(back.to_json_text(), text);
  }
}

}  // namespace
}  // namespace krea2
