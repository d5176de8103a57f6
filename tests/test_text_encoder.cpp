// The Qwen3-VL text tower against upstream (transformers) on the tiny fixture: every hidden state (taps
// 0..num_layers), padded and unpadded runs, every naming scheme (transformers, bare Qwen3VLModel, ComfyUI,
// GGUF) and storage type, compute modes, and the errors of bad files and inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "io/gguf_writer.h"
#include "io/safetensors.h"
#include "io/safetensors_stream.h"
#include "krea2/error.h"
#include "krea2/text_encoder.h"
#include "support/test_util.h"
#include "tensor/convert.h"
#include "tensor/decode.h"
#include "tensor/quantize.h"

namespace krea2 {
namespace {

namespace fs = std::filesystem;

std::string encoder_root() {
  return test::fixture_dir("text/encoder_tiny");
}

// Float32 tolerances of the fixture README (25x the float32-vs-float64 floor).
constexpr double kRelL2 = 1e-5, kMaxAbsOverMax = 1e-4;

struct Case {
  std::vector<int32_t> ids, positions;
  std::vector<uint8_t> mask;
  int64_t batch = 0, seq = 0;
  Tensor hidden;  // (B, S, L + 1, D): every upstream hidden state
};

Case read_case(const std::string& file) {
  const SafetensorsFile f(encoder_root() + "/" + file);
  Case c;
  const Tensor ids = to_float_tensor(*f.find("input_ids"));
  c.batch = ids.dim(0);
  c.seq = ids.dim(1);
  for (float v : ids.data) c.ids.push_back(int32_t(v));
  for (float v : to_float_tensor(*f.find("attention_mask")).data) c.mask.push_back(v != 0);
  const Tensor pos = to_float_tensor(*f.find("position_ids"));  // (3, B, S): the three axes are equal
  for (int64_t i = 0; i < c.batch * c.seq; ++i) c.positions.push_back(int32_t(pos.data[size_t(i)]));
  c.hidden = to_float_tensor(*f.find("hidden_states"));
  return c;
}

std::vector<int> all_taps(const TextEncoder& e) {
  std::vector<int> taps;
  for (int i = 0; i <= e.config().num_layers; ++i) taps.push_back(i);
  return taps;
}

// rel L2 and max |diff| / max |ref| over the valid rows of tap `t` (got: (B, S, T, D); ref: (B, S, Tr, D)).
void expect_valid_rows_close(const Tensor& got, int64_t got_tap, const Tensor& ref, int64_t ref_tap,
                             const std::vector<uint8_t>& mask, const std::string& what, double rel = kRelL2,
                             double max_ratio = kMaxAbsOverMax) {
  const int64_t rows = got.dim(0) * got.dim(1), T = got.dim(2), D = got.dim(3), Tr = ref.dim(2);
  ASSERT_EQ(rows, ref.dim(0) * ref.dim(1));
  ASSERT_EQ(D, ref.dim(3));
  double num = 0, den = 0, max_diff = 0, max_ref = 0;
  for (int64_t r = 0; r < rows; ++r) {
    if (!mask[size_t(r)]) continue;
    const float* g = got.ptr() + (r * T + got_tap) * D;
    const float* e = ref.ptr() + (r * Tr + ref_tap) * D;
    for (int64_t i = 0; i < D; ++i) {
      const double d = double(g[i]) - e[i];
      num += d * d, den += double(e[i]) * e[i];
      max_diff = std::max(max_diff, std::fabs(d));
      max_ref = std::max(max_ref, std::fabs(double(e[i])));
    }
  }
  ASSERT_GT(den, 0.0) << what;
  EXPECT_LE(std::sqrt(num / den), rel) << what;
  EXPECT_LE(max_diff, max_ratio * max_ref) << what;
}

void expect_matches_case(const TextEncoder& enc, const std::string& file, bool skip_padding,
                         const std::string& what) {
  const Case c = read_case(file);
  const std::vector<int> taps = all_taps(enc);
  const Tensor got = enc.hidden_states(c.ids, c.mask, c.positions, c.batch, taps, skip_padding);
  ASSERT_EQ(got.shape, (Shape{c.batch, c.seq, int64_t(taps.size()), enc.config().hidden_size}));
  for (size_t t = 0; t < taps.size(); ++t)
    expect_valid_rows_close(got, int64_t(t), c.hidden, taps[t], c.mask,
                            what + " " + file + " hidden state " + std::to_string(taps[t]));
}

TEST(TextEncoder, LoadsThePipelineRootWithItsTaps) {
  const TextEncoder enc = TextEncoder::load(encoder_root());
  EXPECT_EQ(enc.config().num_layers, 9);
  EXPECT_EQ(enc.config().hidden_size, 32);
  EXPECT_EQ(enc.config().num_heads, 4);
  EXPECT_EQ(enc.config().num_kv_heads, 2);
  EXPECT_EQ(enc.config().head_dim, 16);
  EXPECT_EQ(enc.default_taps(), (std::vector<int>{2, 5, 8}));
  EXPECT_NE(enc.load_info().taps_source.find("model_index.json"), std::string::npos);
  // The text_encoder/ folder itself finds the model_index.json of the root it sits in.
  EXPECT_EQ(TextEncoder::load(encoder_root() + "/text_encoder").default_taps(), (std::vector<int>{2, 5, 8}));
}

TEST(TextEncoder, EveryHiddenStateMatchesUpstreamPadded) {
  const TextEncoder enc = TextEncoder::load(encoder_root());
  for (const char* f : {"expected_batch2_msl24.safetensors", "expected_single_msl40.safetensors"})
    expect_matches_case(enc, f, /*skip_padding=*/false, "padded");
}

TEST(TextEncoder, SkippingPaddingKeepsTheValidRows) {
  const TextEncoder enc = TextEncoder::load(encoder_root());
  for (const char* f : {"expected_batch2_msl24.safetensors", "expected_single_msl40.safetensors"}) {
    expect_matches_case(enc, f, /*skip_padding=*/true, "unpadded");
    // And against our own padded run, row by row; pad rows come out as zeros.
    const Case c = read_case(f);
    const Tensor padded = enc.hidden_states(c.ids, c.mask, c.positions, c.batch, {2, 5, 8}, false);
    const Tensor skipped = enc.hidden_states(c.ids, c.mask, c.positions, c.batch, {2, 5, 8}, true);
    for (int64_t t = 0; t < 3; ++t) expect_valid_rows_close(skipped, t, padded, t, c.mask, "skip vs padded");
    const int64_t D = enc.config().hidden_size;
    for (size_t r = 0; r < c.mask.size(); ++r) {
      if (c.mask[r]) continue;
      for (int64_t i = 0; i < 3 * D; ++i) ASSERT_EQ(skipped.data[r * size_t(3 * D) + size_t(i)], 0.0f);
    }
  }
}

TEST(TextEncoder, UnpaddedPromptsAloneMatchUpstream) {
  // unpadded_<b>_*: each prompt run alone on its valid tokens at positions 0..n-1.
  const TextEncoder enc = TextEncoder::load(encoder_root());
  const SafetensorsFile f(encoder_root() + "/expected_batch2_msl24.safetensors");
  for (int b = 0; b < 2; ++b) {
    const std::string p = "unpadded_" + std::to_string(b) + "_";
    std::vector<int32_t> ids;
    for (float v : to_float_tensor(*f.find(p + "input_ids")).data) ids.push_back(int32_t(v));
    std::vector<int32_t> pos(ids.size());
    for (size_t i = 0; i < pos.size(); ++i) pos[i] = int32_t(i);
    const Tensor got = enc.hidden_states(ids, std::vector<uint8_t>(ids.size(), 1), pos, 1, {2, 5, 8}, true);
    const Tensor ref = to_float_tensor(*f.find(p + "prompt_embeds"));  // (1, n - 34, 3, D)
    const int64_t D = enc.config().hidden_size, n = int64_t(ids.size());
    Tensor sliced({1, n - 34, 3, D});
    std::copy(got.data.begin() + 34 * 3 * D, got.data.end(), sliced.data.begin());
    for (int64_t t = 0; t < 3; ++t)
      expect_valid_rows_close(sliced, t, ref, t, std::vector<uint8_t>(size_t(n - 34), 1), p);
  }
}

TEST(TextEncoder, OnlyTheLayersUpToTheDeepestTapMatter) {
  // Tap 2 needs layers 0 and 1 only: breaking layer 5's weights would not change it. Checked through the
  // taps' independence: tap 2 alone equals tap 2 among all taps, bit for bit.
  const TextEncoder enc = TextEncoder::load(encoder_root());
  const Case c = read_case("expected_single_msl40.safetensors");
  const Tensor one = enc.hidden_states(c.ids, c.mask, c.positions, c.batch, {2}, true);
  const Tensor many = enc.hidden_states(c.ids, c.mask, c.positions, c.batch, {9, 2, 0}, true);
  const int64_t D = enc.config().hidden_size;
  for (int64_t r = 0; r < c.batch * c.seq; ++r)
    for (int64_t i = 0; i < D; ++i)
      ASSERT_EQ(one.data[size_t(r * D + i)], many.data[size_t((r * 3 + 1) * D + i)]);
}

// Rewrites the fixture's weights under other names / another dtype.
void rewrite_safetensors(const std::string& dst, const std::function<std::string(const std::string&)>& rename,
                         DType dtype = DType::F32, const std::map<std::string, std::string>& metadata = {}) {
  const SafetensorsFile src(encoder_root() + "/text_encoder/model.safetensors");
  SafetensorsStreamWriter w(dst);
  for (const auto& [k, v] : metadata) w.set_metadata(k, v);
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const TensorView& t : src.tensors()) {
    tensors.emplace_back(rename(t.name), to_float_tensor(t));
    tensors.back().second.shape = t.shape;
    w.add_tensor(tensors.back().first, dtype, t.shape);
  }
  for (const auto& [name, t] : tensors) {
    if (dtype == DType::F32) {
      w.write_chunk(name, t.ptr(), t.data.size() * 4);
    } else {
      std::vector<uint16_t> h(t.data.size());
      for (size_t i = 0; i < h.size(); ++i)
        h[i] = dtype == DType::BF16 ? f32_to_bf16(t.data[i]) : f32_to_f16(t.data[i]);
      w.write_chunk(name, h.data(), h.size() * 2);
    }
  }
  w.finish();
}

std::string strip_hub_prefix(const std::string& name) {
  const std::string hub = "model.language_model.";
  EXPECT_EQ(name.rfind(hub, 0), 0u) << name;
  return name.substr(hub.size());
}

TEST(TextEncoder, ComfyUiSingleFileMatchesUpstream) {
  test::TempDir dir;
  const std::string file = dir.file("qwen3vl_4b_text.safetensors");
  rewrite_safetensors(file, [](const std::string& n) { return "model." + strip_hub_prefix(n); });
  const TextEncoder enc = TextEncoder::load(file);
  EXPECT_NE(enc.load_info().names.find("ComfyUI"), std::string::npos);
  EXPECT_NE(enc.load_info().config_source.find("tensor shapes"), std::string::npos);
  EXPECT_EQ(enc.config().num_layers, 9);
  expect_matches_case(enc, "expected_batch2_msl24.safetensors", true, "comfyui");
}

TEST(TextEncoder, BareQwen3VLModelNamesWithVisionTowerIgnored) {
  test::TempDir dir;
  fs::create_directories(dir.file("text_encoder"));
  fs::copy_file(encoder_root() + "/text_encoder/config.json", dir.file("text_encoder/config.json"));
  rewrite_safetensors(dir.file("text_encoder/model.safetensors"), [](const std::string& n) {
    // The vision tower rides along under visual.*: ignored.
    return n == "model.language_model.norm.weight" ? std::string("visual.merger.norm.weight")
                                                   : "language_model." + strip_hub_prefix(n);
  });
  EXPECT_THROW(TextEncoder::load(dir.path()), Error) << "norm.weight missing";
  rewrite_safetensors(dir.file("text_encoder/model.safetensors"),
                      [](const std::string& n) { return "language_model." + strip_hub_prefix(n); });
  const TextEncoder enc = TextEncoder::load(dir.path());
  EXPECT_NE(enc.load_info().names.find("Qwen3VLModel"), std::string::npos);
  // No model_index.json: Krea 2's default taps, which this 9-layer encoder cannot give.
  EXPECT_EQ(enc.default_taps(), default_text_encoder_taps());
  const Case c = read_case("expected_single_msl40.safetensors");
  try {
    enc.hidden_states(c.ids, c.mask, c.positions, c.batch, {}, true);
    ADD_FAILURE() << "default taps beyond the layers must fail";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--taps"), std::string::npos) << e.what();
  }
  expect_matches_case(enc, "expected_single_msl40.safetensors", true, "bare names");
}

TEST(TextEncoder, VisionTowerAndLmHeadAreIgnored) {
  test::TempDir dir;
  const std::string file = dir.file("with_extras.safetensors");
  {
    const SafetensorsFile src(encoder_root() + "/text_encoder/model.safetensors");
    SafetensorsStreamWriter w(file);
    std::vector<std::pair<std::string, Tensor>> tensors;
    for (const TensorView& t : src.tensors()) tensors.emplace_back(t.name, to_float_tensor(t));
    tensors.emplace_back("model.visual.patch_embed.proj.weight", Tensor({4, 4}));
    tensors.emplace_back("lm_head.weight", Tensor({2, 32}));
    for (auto& [n, t] : tensors) w.add_tensor(n, DType::F32, t.shape);
    for (auto& [n, t] : tensors) w.write_chunk(n, t.ptr(), t.data.size() * 4);
    w.finish();
  }
  std::vector<std::string> warnings;
  TextEncoderLoadOptions o;
  o.warnings = &warnings;
  const TextEncoder enc = TextEncoder::load(file, o);
  EXPECT_EQ(enc.load_info().ignored_tensors.size(), 2u);
  ASSERT_EQ(warnings.size(), 1u);
}

// bf16 storage: exactly the float32 computation on the bf16-rounded weights (widening is exact).
TEST(TextEncoder, Bf16WeightsEqualFloat32OnRoundedWeights) {
  test::TempDir dir;
  auto hub = [](const std::string& n) { return n; };
  rewrite_safetensors(dir.file("bf16.safetensors"), hub, DType::BF16);
  // The same values, rounded, stored as F32.
  {
    const SafetensorsFile src(dir.file("bf16.safetensors"));
    SafetensorsStreamWriter w(dir.file("rounded.safetensors"));
    std::vector<std::pair<std::string, Tensor>> tensors;
    for (const TensorView& t : src.tensors()) tensors.emplace_back(t.name, to_float_tensor(t));
    for (auto& [n, t] : tensors) w.add_tensor(n, DType::F32, src.find(n)->shape);
    for (auto& [n, t] : tensors) w.write_chunk(n, t.ptr(), t.data.size() * 4);
    w.finish();
  }
  const TextEncoder a = TextEncoder::load(dir.file("bf16.safetensors"));
  const TextEncoder b = TextEncoder::load(dir.file("rounded.safetensors"));
  const Case c = read_case("expected_batch2_msl24.safetensors");
  const Tensor x = a.hidden_states(c.ids, c.mask, c.positions, c.batch, {0, 4, 9}, true);
  const Tensor y = b.hidden_states(c.ids, c.mask, c.positions, c.batch, {0, 4, 9}, true);
  ASSERT_EQ(x.data, y.data);
  // And close to the float32 fixture: bf16 weights carry ~2^-9 relative error each.
  expect_valid_rows_close(x, 1, c.hidden, 4, c.mask, "bf16 weights", 3e-2, 1e-1);
}

// A GGUF under llama.cpp's names with its qwen3vl metadata; 2-D tensors stored as `matrix_type` (F32, or a
// block format: Q8_0, Q4_K, ...), and with `dequantized` the same file with the decoded values as F32.
void write_gguf(const std::string& path, bool with_metadata, float theta = 5e6f,
                DType matrix_type = DType::F32, const std::string& dequantized = "") {
  const SafetensorsFile src(encoder_root() + "/text_encoder/model.safetensors");
  GgufWriter w(path);
  w.set_string("general.architecture", "qwen3vl");
  if (with_metadata) {
    w.set_u32("qwen3vl.block_count", 9);
    w.set_u32("qwen3vl.embedding_length", 32);
    w.set_u32("qwen3vl.feed_forward_length", 128);
    w.set_u32("qwen3vl.attention.head_count", 4);
    w.set_u32("qwen3vl.attention.head_count_kv", 2);
    w.set_u32("qwen3vl.attention.key_length", 16);
    w.set_f32("qwen3vl.attention.layer_norm_rms_epsilon", 1e-6f);
    w.set_f32("qwen3vl.rope.freq_base", theta);
    w.set_i32_array("qwen3vl.rope.dimension_sections", {3, 3, 2, 0});
  }
  auto gguf_name = [](std::string n) {
    n = strip_hub_prefix(n);
    if (n == "embed_tokens.weight") return std::string("token_embd.weight");
    if (n == "norm.weight") return std::string("output_norm.weight");
    const std::pair<const char*, const char*> map[] = {
        {"input_layernorm.", "attn_norm."},    {"self_attn.q_proj.", "attn_q."},
        {"self_attn.k_proj.", "attn_k."},      {"self_attn.v_proj.", "attn_v."},
        {"self_attn.o_proj.", "attn_output."}, {"self_attn.q_norm.", "attn_q_norm."},
        {"self_attn.k_norm.", "attn_k_norm."}, {"post_attention_layernorm.", "ffn_norm."},
        {"mlp.gate_proj.", "ffn_gate."},       {"mlp.up_proj.", "ffn_up."},
        {"mlp.down_proj.", "ffn_down."}};
    const size_t dot = n.find('.', 7);
    const std::string layer = n.substr(7, dot - 7), rest = n.substr(dot + 1);
    for (const auto& [from, to] : map)
      if (rest.rfind(from, 0) == 0) return "blk." + layer + "." + to + rest.substr(std::strlen(from));
    return n;
  };
  std::vector<std::pair<std::string, Tensor>> tensors;
  std::vector<DType> types;
  for (const TensorView& t : src.tensors()) {
    tensors.emplace_back(gguf_name(t.name), to_float_tensor(t));
    tensors.back().second.shape = t.shape;
    types.push_back(t.shape.size() == 2 ? matrix_type : DType::F32);
    w.add_tensor(tensors.back().first, types.back(), t.shape);
  }
  std::unique_ptr<GgufWriter> plain;
  if (!dequantized.empty()) {
    plain = std::make_unique<GgufWriter>(dequantized);
    plain->set_string("general.architecture", "qwen3vl");
    for (auto& [n, t] : tensors) plain->add_tensor(n, DType::F32, t.shape);
  }
  for (size_t i = 0; i < tensors.size(); ++i) {
    auto& [n, t] = tensors[i];
    if (types[i] == DType::F32) {
      w.write_tensor(n, t.ptr(), t.data.size() * 4);
      if (plain) plain->write_tensor(n, t.ptr(), t.data.size() * 4);
      continue;
    }
    const int64_t rows = t.shape[0], cols = t.shape[1], rb = dtype_row_bytes(types[i], cols);
    std::vector<std::byte> q(size_t(rows * rb));
    std::vector<float> back(t.data.size());
    for (int64_t r = 0; r < rows; ++r) {
      quantize_row(types[i], t.ptr() + r * cols, cols, q.data() + r * rb);
      decode_row(types[i], q.data() + r * rb, cols, back.data() + r * cols);
    }
    w.write_tensor(n, q.data(), q.size());
    if (plain) plain->write_tensor(n, back.data(), back.size() * 4);
  }
  w.finish();
  if (plain) plain->finish();
}

// Quantized GGUF blocks are decoded inside the products: exactly the float32 computation on the decoded
// weights (the embedding rows too).
TEST(TextEncoder, GgufBlockFormatsEqualFloat32OnDecodedWeights) {
  test::TempDir dir;
  const Case c = read_case("expected_batch2_msl24.safetensors");
  for (DType t : {DType::Q8_0, DType::Q4_0}) {
    write_gguf(dir.file("q.gguf"), false, 5e6f, t, dir.file("deq.gguf"));
    const TextEncoder q = TextEncoder::load(dir.file("q.gguf")), d = TextEncoder::load(dir.file("deq.gguf"));
    EXPECT_EQ(q.load_info().quantization, "ggml blocks");
    const Tensor x = q.hidden_states(c.ids, c.mask, c.positions, c.batch, {0, 3, 9}, true);
    const Tensor y = d.hidden_states(c.ids, c.mask, c.positions, c.batch, {0, 3, 9}, true);
    EXPECT_EQ(x.data, y.data) << dtype_name(t);
  }
}

TEST(TextEncoder, GgufMatchesUpstream) {
  test::TempDir dir;
  write_gguf(dir.file("qwen3vl.gguf"), true);
  const TextEncoder enc = TextEncoder::load(dir.file("qwen3vl.gguf"));
  EXPECT_NE(enc.load_info().names.find("GGUF"), std::string::npos);
  EXPECT_NE(enc.load_info().config_source.find("GGUF metadata"), std::string::npos);
  expect_matches_case(enc, "expected_batch2_msl24.safetensors", true, "gguf");
  // The metadata's rope theta is used: another theta changes the result.
  write_gguf(dir.file("theta.gguf"), true, 1e4f);
  const TextEncoder other = TextEncoder::load(dir.file("theta.gguf"));
  EXPECT_EQ(other.config().rope_theta, 1e4);
  // Without metadata: sizes from the shapes, eps and theta Qwen3-VL's.
  write_gguf(dir.file("bare.gguf"), false);
  const TextEncoder bare = TextEncoder::load(dir.file("bare.gguf"));
  EXPECT_NE(bare.load_info().config_source.find("defaults"), std::string::npos);
  expect_matches_case(bare, "expected_single_msl40.safetensors", false, "gguf without metadata");
}

TEST(TextEncoder, ComputeModesStayClose) {
  const TextEncoder enc = TextEncoder::load(encoder_root());
  const Case c = read_case("expected_batch2_msl24.safetensors");
  // bf16 rounds both operands of every product (relative 2^-9 each); through 8 layers of a random tiny
  // tower the hidden states move by ~1e-2 relative: 3e-2 bounds it. int8 (per-row scales, 1/254 of the
  // row's max per element) moves them ~2x more.
  const struct {
    Compute mode;
    double bound;
  } modes[] = {{Compute::kBf16, 3e-2}, {Compute::kInt8, 8e-2}};
  for (const auto& m : modes) {
    const TextEncoder e = enc.with_compute(m.mode);
    EXPECT_EQ(e.compute(), m.mode);
    const Tensor got = e.hidden_states(c.ids, c.mask, c.positions, c.batch, {8}, true);
    expect_valid_rows_close(got, 0, c.hidden, 8, c.mask, compute_name(m.mode), m.bound, 1.0);
  }
}

TEST(TextEncoder, RandomWeightsAreDeterministic) {
  TextEncoderConfig cfg;
  cfg.vocab_size = 1000, cfg.hidden_size = 64, cfg.num_layers = 3, cfg.num_heads = 4, cfg.num_kv_heads = 2;
  cfg.head_dim = 16, cfg.intermediate_size = 96;
  const TextEncoder a = TextEncoder::random(cfg, DType::BF16, 5),
                    b = TextEncoder::random(cfg, DType::BF16, 5);
  std::vector<int32_t> ids = {1, 5, 999, 7}, pos = {0, 1, 2, 3};
  std::vector<uint8_t> mask(4, 1);
  const Tensor x = a.hidden_states(ids, mask, pos, 1, {3}, true),
               y = b.hidden_states(ids, mask, pos, 1, {3}, true);
  EXPECT_EQ(x.data, y.data);
  for (float v : x.data) ASSERT_TRUE(std::isfinite(v));
  EXPECT_EQ(a.default_taps(), (std::vector<int>{2}));
}

// ---- bad input

std::string load_error(const std::string& path) {
  try {
    TextEncoder::load(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(TextEncoderErrors, ConfigAndTensorsDisagree) {
  test::TempDir dir;
  fs::create_directories(dir.file("te"));
  fs::copy_file(encoder_root() + "/text_encoder/model.safetensors", dir.file("te/model.safetensors"));
  nlohmann::json cfg = nlohmann::json::parse(test::read_file(encoder_root() + "/text_encoder/config.json"));
  cfg["text_config"]["intermediate_size"] = 96;
  test::write_file(dir.file("te/config.json"), cfg.dump());
  const std::string e = load_error(dir.file("te"));
  EXPECT_NE(e.find("mlp.gate_proj.weight"), std::string::npos) << e;
  EXPECT_NE(e.find("(96, 32)"), std::string::npos) << e;
  EXPECT_NE(e.find("(128, 32)"), std::string::npos) << e;
  cfg["text_config"]["intermediate_size"] = 128;
  cfg["text_config"]["num_hidden_layers"] = 8;  // the file has 9 layers: layer 8's tensors are unexpected
  test::write_file(dir.file("te/config.json"), cfg.dump());
  EXPECT_NE(load_error(dir.file("te")).find("unexpected"), std::string::npos);
  cfg["text_config"]["num_attention_heads"] = 3;
  test::write_file(dir.file("te/config.json"), cfg.dump());
  EXPECT_NE(load_error(dir.file("te")).find("num_key_value_heads"), std::string::npos);
  test::write_file(dir.file("te/config.json"), "{ not json");
  EXPECT_NE(load_error(dir.file("te")).find("not valid JSON"), std::string::npos);
}

TEST(TextEncoderErrors, NotATextEncoder) {
  const std::string e = load_error(test::fixture_dir("tiny"));
  EXPECT_NE(e.find("not a Qwen3"), std::string::npos) << e;
  EXPECT_NE(load_error("/nonexistent/te").find("no such file"), std::string::npos);
}

TEST(TextEncoderErrors, BadInputs) {
  const TextEncoder enc = TextEncoder::load(encoder_root());
  std::vector<int32_t> ids = {1, 2, 3}, pos = {0, 1, 2};
  std::vector<uint8_t> mask(3, 1);
  EXPECT_THROW(enc.hidden_states(ids, mask, pos, 1, {10}, true), Error);  // beyond num_layers
  EXPECT_THROW(enc.hidden_states(ids, mask, pos, 1, {-1}, true), Error);
  EXPECT_THROW(enc.hidden_states(ids, mask, pos, 2, {1}, true), Error);             // 3 ids do not split in 2
  EXPECT_THROW(enc.hidden_states({1, 2, 200000}, mask, pos, 1, {1}, true), Error);  // outside the vocab
  EXPECT_THROW(enc.hidden_states(ids, {1, 1}, pos, 1, {1}, true), Error);
}

}  // namespace
}  // namespace krea2
