// Model::load: every way a checkpoint can disagree with its config gives a krea2::Error that names the tensor
// (and the expected / found shape); the original Krea single-file names load to the same model; parameter
// counts; and the CLI's error paths (inspect, forward, usage).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "krea2/config.h"
#include "krea2/error.h"
#include "krea2/model.h"
#include "support/test_util.h"

namespace krea2 {
namespace {

namespace fs = std::filesystem;
using test::TempDir;
using ::testing::HasSubstr;
using ::testing::Not;
using json = nlohmann::json;

const char kWeightsName[] = "diffusion_pytorch_model.safetensors";

// H = 32, Hkv = 16, Dt = 16, dt = 8, Dtkv = 8, F = 24, Ft = 20, C = 8.
Config small_config() {
  Config c;
  c.in_channels = 8;
  c.num_layers = 2;
  c.attention_head_dim = 8;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.intermediate_size = 24;
  c.timestep_embed_dim = 8;
  c.text_hidden_dim = 16;
  c.num_text_layers = 3;
  c.text_num_attention_heads = 2;
  c.text_num_key_value_heads = 1;
  c.text_intermediate_size = 20;
  c.num_layerwise_text_blocks = 1;
  c.num_refiner_text_blocks = 1;
  c.axes_dims_rope = {4, 2, 2};
  return c;
}

// A tensor copied out of a file (so the file can be rewritten in place).
struct OwnedTensor {
  std::string name;
  DType dtype;
  Shape shape;
  std::vector<std::byte> bytes;
};

std::vector<OwnedTensor> read_tensors(const std::string& path) {
  SafetensorsFile f(path);
  std::vector<OwnedTensor> out;
  for (const TensorView& t : f.tensors())
    out.push_back({t.name, t.dtype, t.shape, {t.data, t.data + t.nbytes}});
  return out;
}

void write_tensors(const std::string& path, const std::vector<OwnedTensor>& tensors) {
  std::vector<TensorToWrite> w;
  for (const auto& t : tensors) w.push_back({t.name, t.dtype, t.shape, t.bytes.data()});
  write_safetensors(path, w, {{"format", "pt"}});
}

OwnedTensor f32_tensor(const std::string& name, const Shape& shape, uint64_t seed) {
  std::vector<float> v = test::random_floats(size_t(shape_numel(shape)), seed, 0.1f);
  OwnedTensor t{name, DType::F32, shape, std::vector<std::byte>(v.size() * 4)};
  std::memcpy(t.bytes.data(), v.data(), t.bytes.size());
  return t;
}

OwnedTensor& find(std::vector<OwnedTensor>& ts, const std::string& name) {
  for (auto& t : ts)
    if (t.name == name) return t;
  throw std::runtime_error("test setup: no tensor " + name);
}

// A saved random model in `dir.path()/model`, its weights file, and the tensors in it.
struct SavedModel {
  std::string folder;
  std::string weights;
  std::vector<OwnedTensor> tensors;
};

// Model::random(...).save() runs once per (dtype, seed); later calls copy its two files into `dir`.
SavedModel save_small(const TempDir& dir, DType dtype = DType::F32, uint64_t seed = 7) {
  struct Files {
    std::string weights, config;
  };
  static std::map<std::pair<DType, uint64_t>, Files> cache;
  auto it = cache.find({dtype, seed});
  if (it == cache.end()) {
    TempDir tmp;
    Model::random(small_config(), dtype, seed).save(tmp.file("m"));
    Files f{test::read_file(tmp.file("m/") + kWeightsName), test::read_file(tmp.file("m/config.json"))};
    it = cache.emplace(std::make_pair(dtype, seed), std::move(f)).first;
  }
  SavedModel s;
  s.folder = dir.file("model");
  fs::create_directories(s.folder);
  s.weights = s.folder + "/" + kWeightsName;
  test::write_file(s.weights, it->second.weights);
  test::write_file(s.folder + "/config.json", it->second.config);
  s.tensors = read_tensors(s.weights);
  return s;
}

// Loads and returns the krea2::Error message; any other outcome fails the test.
std::string load_error(const std::string& path, const LoadOptions& options = {}) {
  try {
    Model::load(path, options);
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not a krea2::Error: " << e.what();
    return "";
  }
  ADD_FAILURE() << path << " loaded without error";
  return "";
}

ForwardInputs small_inputs(const Config& c, bool with_mask) {
  const int64_t B = 2, L = 3, h = 2, w = 3, N = h * w;
  ForwardInputs in;
  in.hidden_states = Tensor({B, N, c.in_channels}, test::random_floats(size_t(B * N * c.in_channels), 1));
  in.encoder_hidden_states =
      Tensor({B, L, c.num_text_layers, c.text_hidden_dim},
             test::random_floats(size_t(B * L * c.num_text_layers * c.text_hidden_dim), 2));
  in.timestep = Tensor({B}, {0.25f, 0.875f});
  in.position_ids = Tensor({L + N, 3});
  for (int64_t r = 0; r < h; ++r)
    for (int64_t q = 0; q < w; ++q) {
      in.position_ids.data[size_t((L + r * w + q) * 3 + 1)] = float(r);
      in.position_ids.data[size_t((L + r * w + q) * 3 + 2)] = float(q);
    }
  if (with_mask) in.encoder_attention_mask = Tensor({B, L}, {1, 1, 1, 1, 1, 0});
  return in;
}

// ---- loader errors
// ----------------------------------------------------------------------------------------------

TEST(ModelLoad, SavedRandomModelLoads) {
  TempDir dir;
  SavedModel s = save_small(dir);
  Model m = Model::load(s.folder);
  int64_t n = 0;
  for (const auto& t : s.tensors) n += shape_numel(t.shape);
  EXPECT_EQ(m.parameter_count(), n);
  EXPECT_EQ(m.parameters().size(), s.tensors.size());
  // The parent folder works too when the model sits in DIR/transformer.
  fs::rename(s.folder, dir.file("transformer"));
  EXPECT_EQ(Model::load(dir.path()).parameter_count(), n);
}

TEST(ModelLoad, MissingTensorNamesItAndItsShape) {
  TempDir dir;
  SavedModel s = save_small(dir);
  std::vector<OwnedTensor> ts;
  for (auto& t : s.tensors)
    if (t.name != "transformer_blocks.1.attn.to_k.weight") ts.push_back(t);
  write_tensors(s.weights, ts);
  const std::string msg = load_error(s.folder);
  EXPECT_THAT(msg, HasSubstr("transformer_blocks.1.attn.to_k.weight"));
  EXPECT_THAT(msg, HasSubstr("(16, 32)"));  // (Hkv, H)
}

TEST(ModelLoad, MissingVectorNamesItAndItsShape) {
  TempDir dir;
  SavedModel s = save_small(dir);
  std::vector<OwnedTensor> ts;
  for (auto& t : s.tensors)
    if (t.name != "final_layer.scale_shift_table" && t.name != "text_fusion.projector.weight")
      ts.push_back(t);
  write_tensors(s.weights, ts);
  const std::string msg = load_error(s.folder);
  EXPECT_THAT(msg, HasSubstr("final_layer.scale_shift_table"));
  EXPECT_THAT(msg, HasSubstr("(2, 32)"));
  EXPECT_THAT(msg, HasSubstr("text_fusion.projector.weight"));
  EXPECT_THAT(msg, HasSubstr("(1, 3)"));
}

TEST(ModelLoad, ConfigWithMoreLayersThanTheCheckpoint) {
  TempDir dir;
  SavedModel s = save_small(dir);
  Config c = small_config();
  c.num_layers = 3;
  test::write_file(s.folder + "/config.json", c.to_json_text());
  EXPECT_THAT(load_error(s.folder), HasSubstr("transformer_blocks.2."));
}

TEST(ModelLoad, ExtraTensorIsNamed) {
  TempDir dir;
  SavedModel s = save_small(dir);
  s.tensors.push_back(f32_tensor("transformer_blocks.7.attn.to_q.weight", {32, 32}, 3));
  write_tensors(s.weights, s.tensors);
  EXPECT_THAT(load_error(s.folder), HasSubstr("transformer_blocks.7.attn.to_q.weight"));
  // allow_unexpected turns it into a warning naming it.
  std::vector<std::string> warnings;
  LoadOptions opt;
  opt.allow_unexpected = true;
  opt.warnings = &warnings;
  EXPECT_NO_THROW(Model::load(s.folder, opt));
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_THAT(warnings[0], HasSubstr("transformer_blocks.7.attn.to_q.weight"));
}

TEST(ModelLoad, ConfigWithFewerLayersThanTheCheckpoint) {
  TempDir dir;
  SavedModel s = save_small(dir);
  Config c = small_config();
  c.num_layers = 1;
  test::write_file(s.folder + "/config.json", c.to_json_text());
  EXPECT_THAT(load_error(s.folder), HasSubstr("transformer_blocks.1."));
}

TEST(ModelLoad, MisshapedTensorNamesExpectedAndFound) {
  struct Case {
    const char* name;
    Shape bad;
    const char* expected;
    const char* found;
  };
  const Case cases[] = {
      {"img_in.weight", {32, 7}, "(32, 8)", "(32, 7)"},
      {"img_in.weight", {8, 32}, "(32, 8)", "(8, 32)"},  // transposed, same numel
      {"transformer_blocks.0.norm1.weight", {33}, "(32,)", "(33,)"},
      {"transformer_blocks.1.scale_shift_table", {192}, "(6, 32)", "(192,)"},  // flat is only for Krea names
      {"text_fusion.refiner_blocks.0.ff.down.weight", {16, 20, 1}, "(16, 20)", "(16, 20, 1)"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    TempDir dir;
    SavedModel s = save_small(dir);
    OwnedTensor& t = find(s.tensors, c.name);
    t = f32_tensor(c.name, c.bad, 5);
    write_tensors(s.weights, s.tensors);
    const std::string msg = load_error(s.folder);
    EXPECT_THAT(msg, HasSubstr(c.name));
    EXPECT_THAT(msg, HasSubstr(c.expected));
    EXPECT_THAT(msg, HasSubstr(c.found));
  }
}

TEST(ModelLoad, WrongDtypeIsAnError) {
  for (const char* name : {"img_in.weight", "transformer_blocks.0.norm2.weight"}) {
    SCOPED_TRACE(name);
    TempDir dir;
    SavedModel s = save_small(dir);
    OwnedTensor& t = find(s.tensors, name);
    t.dtype = DType::I32;  // same byte size as F32
    write_tensors(s.weights, s.tensors);
    const std::string msg = load_error(s.folder);
    EXPECT_THAT(msg, HasSubstr(name));
    EXPECT_THAT(msg, HasSubstr("I32"));
  }
}

TEST(ModelLoad, MissingConfigJson) {
  TempDir dir;
  SavedModel s = save_small(dir);
  fs::remove(s.folder + "/config.json");
  EXPECT_THAT(load_error(s.folder), HasSubstr("config.json"));
}

TEST(ModelLoad, ConfigJsonWithBadValueNamesTheKey) {
  TempDir dir;
  SavedModel s = save_small(dir);
  json j = json::parse(test::read_file(s.folder + "/config.json"));
  j["num_key_value_heads"] = 3;
  test::write_file(s.folder + "/config.json", j.dump());
  const std::string msg = load_error(s.folder);
  EXPECT_THAT(msg, HasSubstr("'num_key_value_heads'"));
  EXPECT_THAT(msg, HasSubstr("config.json"));
  test::write_file(s.folder + "/config.json", "{ not json");
  EXPECT_THAT(load_error(s.folder), HasSubstr("config.json"));
}

TEST(ModelLoad, NonexistentPath) {
  EXPECT_THAT(load_error("/nonexistent/krea2/model"), HasSubstr("/nonexistent/krea2/model"));
  EXPECT_THAT(load_error("/nonexistent/krea2/model.safetensors"),
              HasSubstr("/nonexistent/krea2/model.safetensors"));
  TempDir dir;
  const std::string empty = load_error(dir.path());  // empty folder: no config, no weights
  EXPECT_THAT(empty, HasSubstr(dir.path()));
  EXPECT_THAT(empty, HasSubstr("diffusion_pytorch_model.safetensors"));
}

TEST(ModelLoad, TruncatedSafetensorsNamesTheFile) {
  TempDir dir;
  SavedModel s = save_small(dir);
  const std::string bytes = test::read_file(s.weights);
  for (size_t keep : {bytes.size() - 1, bytes.size() / 2, size_t(100), size_t(8), size_t(3), size_t(0)}) {
    SCOPED_TRACE(keep);
    test::write_file(s.weights, bytes.substr(0, keep));
    EXPECT_THAT(load_error(s.folder), HasSubstr(kWeightsName));
  }
}

// ---- original Krea names
// ----------------------------------------------------------------------------------------

// SPEC.md "Original Krea checkpoint names", written out here as exact tables.
std::string krea_name(const std::string& diffusers) {
  static const std::map<std::string, std::string> top = {
      {"img_in.weight", "first.weight"},
      {"img_in.bias", "first.bias"},
      {"time_embed.linear_1.weight", "tmlp.0.weight"},
      {"time_embed.linear_1.bias", "tmlp.0.bias"},
      {"time_embed.linear_2.weight", "tmlp.2.weight"},
      {"time_embed.linear_2.bias", "tmlp.2.bias"},
      {"time_mod_proj.weight", "tproj.1.weight"},
      {"time_mod_proj.bias", "tproj.1.bias"},
      {"txt_in.norm.weight", "txtmlp.0.scale"},
      {"txt_in.linear_1.weight", "txtmlp.1.weight"},
      {"txt_in.linear_1.bias", "txtmlp.1.bias"},
      {"txt_in.linear_2.weight", "txtmlp.3.weight"},
      {"txt_in.linear_2.bias", "txtmlp.3.bias"},
      {"text_fusion.projector.weight", "txtfusion.projector.weight"},
      {"final_layer.scale_shift_table", "last.modulation.lin"},
      {"final_layer.norm.weight", "last.norm.scale"},
      {"final_layer.linear.weight", "last.linear.weight"},
      {"final_layer.linear.bias", "last.linear.bias"},
  };
  static const std::map<std::string, std::string> in_block = {
      {"scale_shift_table", "mod.lin"},
      {"norm1.weight", "prenorm.scale"},
      {"norm2.weight", "postnorm.scale"},
      {"attn.to_q.weight", "attn.wq.weight"},
      {"attn.to_k.weight", "attn.wk.weight"},
      {"attn.to_v.weight", "attn.wv.weight"},
      {"attn.to_gate.weight", "attn.gate.weight"},
      {"attn.to_out.0.weight", "attn.wo.weight"},
      {"attn.norm_q.weight", "attn.qknorm.qnorm.scale"},
      {"attn.norm_k.weight", "attn.qknorm.knorm.scale"},
      {"ff.gate.weight", "mlp.gate.weight"},
      {"ff.up.weight", "mlp.up.weight"},
      {"ff.down.weight", "mlp.down.weight"},
  };
  if (auto it = top.find(diffusers); it != top.end()) return it->second;
  static const std::regex block(
      R"((transformer_blocks|text_fusion\.layerwise_blocks|text_fusion\.refiner_blocks)\.(\d+)\.(.+))");
  std::smatch m;
  if (std::regex_match(diffusers, m, block)) {
    auto it = in_block.find(m[3].str());
    if (it != in_block.end()) {
      const std::string stack = m[1].str() == "transformer_blocks"             ? "blocks"
                                : m[1].str() == "text_fusion.layerwise_blocks" ? "txtfusion.layerwise_blocks"
                                                                               : "txtfusion.refiner_blocks";
      return stack + "." + m[2].str() + "." + it->second;
    }
  }
  ADD_FAILURE() << "no Krea name for " << diffusers;
  return diffusers;
}

// The saved model's tensors under the Krea names (modulation tables flat), plus ComfyUI's unused
// last.up/down.
std::vector<OwnedTensor> to_krea(std::vector<OwnedTensor> ts) {
  for (auto& t : ts) {
    if (t.name.ends_with("scale_shift_table")) t.shape = {shape_numel(t.shape)};
    t.name = krea_name(t.name);
  }
  ts.push_back(f32_tensor("last.up.weight", {32, 8}, 11));
  ts.push_back(f32_tensor("last.down.weight", {8, 32}, 12));
  return ts;
}

void expect_same_forward(const Model& a, const Model& b) {
  for (bool mask : {false, true}) {
    ForwardInputs in = small_inputs(a.config(), mask);
    Tensor ya = a.forward(in), yb = b.forward(in);
    ASSERT_EQ(ya.shape, yb.shape);
    EXPECT_EQ(ya.shape, (Shape{2, 6, 8}));
    EXPECT_EQ(ya.data, yb.data) << "mask " << mask;  // same weights, same arithmetic: bit-identical
    EXPECT_GT(test::max_abs(ya.ptr(), ya.data.size()), 0.0);
  }
}

TEST(ModelLoad, OriginalKreaNamesSingleFile) {
  for (DType dtype : {DType::F32, DType::BF16}) {
    SCOPED_TRACE(std::string(dtype_name(dtype)));
    TempDir dir;
    SavedModel s = save_small(dir, dtype, 21);
    const std::string krea_dir = dir.file("krea");
    fs::create_directories(krea_dir);
    const std::string file = krea_dir + "/krea2-small.safetensors";
    write_tensors(file, to_krea(s.tensors));
    fs::copy_file(s.folder + "/config.json", krea_dir + "/config.json");

    // Nothing in the file carries a diffusers-only name.
    for (const auto& t : read_tensors(file)) {
      EXPECT_THAT(t.name, Not(HasSubstr("transformer_blocks"))) << t.name;
      EXPECT_THAT(t.name, Not(HasSubstr("scale_shift_table"))) << t.name;
    }
    Model diffusers = Model::load(s.folder);
    Model krea = Model::load(file);
    EXPECT_EQ(krea.parameter_count(), diffusers.parameter_count());
    expect_same_forward(diffusers, krea);
  }
}

TEST(ModelLoad, OriginalKreaNamesErrorsUseKreaNames) {
  TempDir dir;
  SavedModel s = save_small(dir);
  std::vector<OwnedTensor> ts = to_krea(s.tensors);
  std::vector<OwnedTensor> kept;
  for (auto& t : ts)
    if (t.name != "blocks.1.attn.wk.weight") kept.push_back(t);
  kept.push_back(f32_tensor("blocks.1.attn.bogus.weight", {4}, 1));
  const std::string file = dir.file("krea.safetensors");
  write_tensors(file, kept);
  test::write_file(dir.file("config.json"), small_config().to_json_text());
  const std::string msg = load_error(file);
  EXPECT_THAT(msg, HasSubstr("blocks.1.attn.wk.weight"));
  EXPECT_THAT(msg, HasSubstr("(16, 32)"));
  EXPECT_THAT(msg, HasSubstr("blocks.1.attn.bogus.weight"));
}

// ---- parameter counts and the CLI
// ---------------------------------------------------------------------------------

// Sum of numels over every tensor of every .safetensors file in `folder`, straight from the JSON headers.
int64_t header_parameter_count(const std::string& folder) {
  int64_t total = 0;
  for (const auto& e : fs::directory_iterator(folder)) {
    if (e.path().extension() != ".safetensors") continue;
    std::ifstream f(e.path(), std::ios::binary);
    unsigned char len_bytes[8];
    f.read(reinterpret_cast<char*>(len_bytes), 8);
    uint64_t len = 0;
    for (int i = 7; i >= 0; --i) len = (len << 8) | len_bytes[i];
    std::string header(len, '\0');
    f.read(header.data(), std::streamsize(len));
    const json parsed = json::parse(header);
    for (const auto& [name, info] : parsed.items()) {
      if (name == "__metadata__") continue;
      int64_t n = 1;
      for (const auto& d : info.at("shape")) n *= d.get<int64_t>();
      total += n;
    }
  }
  return total;
}

TEST(ModelLoad, ShardedFixtureParameterCount) {
  const std::string folder = test::fixture_dir("small_sharded_bf16") + "/transformer";
  const int64_t expected = header_parameter_count(folder);
  ASSERT_GT(expected, 0);
  Model m = Model::load(test::fixture_dir("small_sharded_bf16"));
  EXPECT_EQ(m.parameter_count(), expected);
  int64_t sum = 0;
  for (const auto& p : m.parameters()) sum += p.numel();
  EXPECT_EQ(sum, expected);
}

std::string cli() {
  return test::cli_path();
}

TEST(Cli, InspectTinyPrintsParameterCount) {
  std::string out;
  ASSERT_EQ(test::run_command(cli() + " inspect " + test::fixture_dir("tiny"), &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("parameters: 29027"));
  EXPECT_EQ(header_parameter_count(test::fixture_dir("tiny") + "/transformer"), 29027);
}

TEST(Cli, InspectParameterCountMatchesHeadersForEveryFixture) {
  for (const char* name : {"tiny", "small_nomask", "small_masked_batch", "small_sharded_bf16", "small_lora",
                           "sample_turbo", "sample_base_cfg"}) {
    SCOPED_TRACE(name);
    const int64_t expected = header_parameter_count(test::fixture_dir(name) + "/transformer");
    std::string out;
    ASSERT_EQ(test::run_command(cli() + " inspect " + test::fixture_dir(name), &out), 0) << out;
    std::smatch m;
    ASSERT_TRUE(std::regex_search(out, m, std::regex(R"(parameters: (\d+))"))) << out;
    EXPECT_EQ(std::stoll(m[1].str()), expected);
  }
}

TEST(Cli, ForwardMissingInputsFile) {
  TempDir dir;
  const std::string inputs = dir.file("no_such_inputs.safetensors");
  const std::string output = dir.file("out.safetensors");
  std::string out;
  const int rc = test::run_command(cli() + " forward --quiet --model " + test::fixture_dir("tiny") +
                                       " --inputs " + inputs + " --output " + output,
                                   &out);
  EXPECT_NE(rc, 0);
  EXPECT_THAT(out, HasSubstr("no_such_inputs.safetensors"));
  EXPECT_FALSE(fs::exists(output));
  EXPECT_FALSE(fs::exists(output + ".tmp"));
}

TEST(Cli, ForwardWrongInputShapeNamesTheTensor) {
  TempDir dir;
  std::map<std::string, Tensor> in;
  const std::string fixture_inputs = test::fixture_dir("tiny") + "/inputs.safetensors";
  {
    SafetensorsFile f(fixture_inputs);
    for (const TensorView& t : f.tensors()) in[t.name] = to_float_tensor(t);
  }
  ASSERT_TRUE(in.count("hidden_states"));
  // hidden_states with one channel too few: (B, N, C - 1).
  Tensor& h = in["hidden_states"];
  ASSERT_EQ(h.shape.size(), 3u);
  Shape bad = h.shape;
  bad[2] -= 1;
  h = Tensor(bad, test::random_floats(size_t(shape_numel(bad)), 3));
  const std::string inputs = dir.file("bad_inputs.safetensors");
  write_safetensors(inputs, in);
  const std::string output = dir.file("out.safetensors");
  std::string out;
  const int rc = test::run_command(cli() + " forward --quiet --model " + test::fixture_dir("tiny") +
                                       " --inputs " + inputs + " --output " + output,
                                   &out);
  EXPECT_NE(rc, 0);
  EXPECT_THAT(out, HasSubstr("hidden_states"));
  EXPECT_FALSE(fs::exists(output));

  // A missing input tensor is named too.
  in.erase("hidden_states");
  write_safetensors(inputs, in);
  EXPECT_NE(test::run_command(cli() + " forward --quiet --model " + test::fixture_dir("tiny") + " --inputs " +
                                  inputs + " --output " + output,
                              &out),
            0);
  EXPECT_THAT(out, HasSubstr("hidden_states"));
  EXPECT_FALSE(fs::exists(output));
}

TEST(Cli, ForwardOnTheTinyFixtureWritesSample) {
  TempDir dir;
  const std::string output = dir.file("out.safetensors");
  std::string out;
  ASSERT_EQ(test::run_command(cli() + " forward --quiet --model " + test::fixture_dir("tiny") + " --inputs " +
                                  test::fixture_dir("tiny") + "/inputs.safetensors --output " + output,
                              &out),
            0)
      << out;
  SafetensorsFile got(output), want(test::fixture_dir("tiny") + "/expected.safetensors");
  ASSERT_NE(got.find("sample"), nullptr);
  Tensor g = to_float_tensor(*got.find("sample")), w = to_float_tensor(*want.find("sample"));
  ASSERT_EQ(g.shape, w.shape);
  EXPECT_LE(test::rel_l2(g.ptr(), w.ptr(), w.data.size()), 1e-5);
}

TEST(Cli, HelpAndUsage) {
  std::string out;
  EXPECT_EQ(test::run_command(cli() + " --help", &out), 0);
  EXPECT_THAT(out, HasSubstr("Usage"));
  EXPECT_EQ(test::run_command(cli() + " forward --help", &out), 0);
  EXPECT_EQ(test::run_command(cli() + " inspect --help", &out), 0);
  EXPECT_NE(test::run_command(cli() + " frobnicate", &out), 0);
  EXPECT_THAT(out, HasSubstr("frobnicate"));
  EXPECT_NE(test::run_command(cli(), &out), 0);  // no command: usage on stderr, non-zero
  EXPECT_NE(test::run_command(cli() + " inspect --no-such-flag " + test::fixture_dir("tiny"), &out), 0);
  EXPECT_THAT(out, HasSubstr("--no-such-flag"));
}

TEST(Cli, InspectErrorsNameThePath) {
  std::string out;
  EXPECT_NE(test::run_command(cli() + " inspect /nonexistent/krea2/model", &out), 0);
  EXPECT_THAT(out, HasSubstr("/nonexistent/krea2/model"));
}

}  // namespace
}  // namespace krea2
