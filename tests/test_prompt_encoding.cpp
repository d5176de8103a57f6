// Prompt text to prompt_embeds as diffusers' Krea2Pipeline.encode_prompt: the template, padding and
// truncation, the taps, num_images_per_prompt and the default negative prompt, through the library and the
// CLI (`krea2 encode`, `krea2 generate --prompt`).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "krea2/error.h"
#include "krea2/model.h"
#include "krea2/text_encoder.h"
#include "krea2/tokenizer.h"
#include "support/test_util.h"

namespace krea2 {
namespace {

using ::testing::HasSubstr;

std::string root() {
  return test::fixture_dir("text/encoder_tiny");
}
std::string tokenizer_dir() {
  return test::fixture_dir("text/tokenizer");
}

nlohmann::json case_json() {
  return nlohmann::json::parse(test::read_file(root() + "/case.json"));
}

// Valid rows (mask 1) of embeds (B, L, T, D) against ref within the fixture tolerances; masks equal.
void expect_embeds(const Tensor& got, const Tensor& mask, const Tensor& ref, const Tensor& ref_mask,
                   const std::string& what) {
  ASSERT_EQ(got.shape, ref.shape) << what;
  ASSERT_EQ(mask.data, ref_mask.data) << what << ": masks differ";
  const int64_t rows = ref.dim(0) * ref.dim(1), w = ref.dim(2) * ref.dim(3);
  double num = 0, den = 0, max_diff = 0, max_ref = 0;
  for (int64_t r = 0; r < rows; ++r) {
    if (ref_mask.data[size_t(r)] == 0) continue;
    for (int64_t i = 0; i < w; ++i) {
      const double d = double(got.data[size_t(r * w + i)]) - ref.data[size_t(r * w + i)];
      num += d * d, den += double(ref.data[size_t(r * w + i)]) * ref.data[size_t(r * w + i)];
      max_diff = std::max(max_diff, std::fabs(d));
      max_ref = std::max(max_ref, std::fabs(double(ref.data[size_t(r * w + i)])));
    }
  }
  EXPECT_LE(std::sqrt(num / den), 1e-5) << what;
  EXPECT_LE(max_diff, 1e-4 * max_ref) << what;
}

Tensor read(const std::string& file, const std::string& name) {
  const SafetensorsFile f(file);
  const TensorView* v = f.find(name);
  if (!v) throw Error(file + ": no " + name);
  return to_float_tensor(*v);
}

TEST(PromptEncoding, EveryFixtureCaseThroughTheLibrary) {
  const TextEncoder enc = TextEncoder::load(root());
  const Tokenizer tok = Tokenizer::load(tokenizer_dir());
  for (const auto& [name, c] : case_json()["cases"].items()) {
    std::vector<std::string> prompts;
    for (const auto& p : c["prompts"]) prompts.push_back(p["prompt"]);
    EncodeOptions o;
    o.max_sequence_length = c["max_sequence_length"];
    const std::string file = root() + "/" + c["file"].get<std::string>();
    for (bool skip : {true, false}) {
      o.skip_padding = skip;
      std::vector<std::string> warnings;
      o.warnings = &warnings;
      const TextEmbeddings e = enc.encode(tok, prompts, o);
      expect_embeds(e.embeds, *e.mask, read(file, "prompt_embeds"), read(file, "prompt_embeds_mask"),
                    name + (skip ? " (valid tokens only)" : " (padded)"));
      size_t truncated = 0;
      for (const auto& p : c["prompts"]) truncated += p["truncated"].get<bool>();
      EXPECT_EQ(warnings.size(), truncated) << name;
    }
  }
}

TEST(PromptEncoding, DefaultNegativePromptAtEveryLength) {
  const TextEncoder enc = TextEncoder::load(root());
  const Tokenizer tok = Tokenizer::load(tokenizer_dir());
  const std::string file = root() + "/negative_default.safetensors";
  for (const auto& [entry, info] : case_json()["negative_default"]["entries"].items()) {
    EncodeOptions o;
    o.max_sequence_length = info["max_sequence_length"];
    const TextEmbeddings e = enc.encode(tok, {""}, o);
    const std::string mask_name =
        entry.substr(0, entry.find("_embeds") + 7) + "_mask" + entry.substr(entry.find("_embeds") + 7);
    expect_embeds(e.embeds, *e.mask, read(file, entry), read(file, mask_name), entry);
  }
}

TEST(PromptEncoding, ImagesPerPromptRepeatRowsConsecutively) {
  const TextEncoder enc = TextEncoder::load(root());
  const Tokenizer tok = Tokenizer::load(tokenizer_dir());
  EncodeOptions o;
  o.max_sequence_length = 24;
  const TextEmbeddings one = enc.encode(tok, {"a red fox", "a blue bird"}, o);
  o.num_images_per_prompt = 3;
  const TextEmbeddings three = enc.encode(tok, {"a red fox", "a blue bird"}, o);
  ASSERT_EQ(three.embeds.dim(0), 6);
  const size_t per = size_t(one.embeds.numel() / 2);
  for (int b = 0; b < 2; ++b)
    for (int r = 0; r < 3; ++r)
      ASSERT_TRUE(std::equal(one.embeds.data.begin() + b * per, one.embeds.data.begin() + (b + 1) * per,
                             three.embeds.data.begin() + (b * 3 + r) * per));
}

TEST(PromptEncoding, BadInput) {
  const TextEncoder enc = TextEncoder::load(root());
  const Tokenizer tok = Tokenizer::load(tokenizer_dir());
  EncodeOptions o;
  o.max_sequence_length = 0;
  EXPECT_THROW(enc.encode(tok, {"x"}, o), Error);
  o.max_sequence_length = 16;
  EXPECT_THROW(enc.encode(tok, {}, o), Error);
  EXPECT_THROW(enc.encode(tok, {std::string("bad \xff utf-8")}, o), Error);
  o.taps = {12};
  EXPECT_THROW(enc.encode(tok, {"x"}, o), Error);
}

// ---- CLI

int run(const std::string& args, std::string* output = nullptr) {
  std::string out;
  const int rc = test::run_command(test::cli_path() + " " + args, &out);
  if (output) *output = out;
  return rc;
}

TEST(EncodeCli, WritesTheFixtureEmbeddings) {
  test::TempDir tmp;
  const auto c = case_json()["cases"]["batch2_msl24"];
  std::string out;
  // The tokenizer is found nowhere near the fixture encoder: --tokenizer.
  ASSERT_EQ(run("encode --text-encoder " + root() + " --tokenizer " + tokenizer_dir() + " --prompt '" +
                    c["prompts"][0]["prompt"].get<std::string>() + "' --prompt '" +
                    c["prompts"][1]["prompt"].get<std::string>() +
                    "' --negative-prompt '' --max-sequence-length 24 --output " + tmp.file("e.safetensors"),
                &out),
            0)
      << out;
  EXPECT_THAT(out, HasSubstr("truncated"));
  const std::string ref = root() + "/expected_batch2_msl24.safetensors";
  expect_embeds(read(tmp.file("e.safetensors"), "prompt_embeds"),
                read(tmp.file("e.safetensors"), "prompt_embeds_mask"), read(ref, "prompt_embeds"),
                read(ref, "prompt_embeds_mask"), "krea2 encode");
  const std::string neg = root() + "/negative_default.safetensors";
  const Tensor n = read(tmp.file("e.safetensors"), "negative_prompt_embeds");
  ASSERT_EQ(n.dim(0), 2);
  Tensor first({1, n.dim(1), n.dim(2), n.dim(3)});
  std::copy_n(n.data.begin(), first.numel(), first.data.begin());
  Tensor first_mask({1, n.dim(1)});
  std::copy_n(read(tmp.file("e.safetensors"), "negative_prompt_embeds_mask").data.begin(), n.dim(1),
              first_mask.data.begin());
  expect_embeds(first, first_mask, read(neg, "negative_prompt_embeds_msl24"),
                read(neg, "negative_prompt_embeds_mask_msl24"), "krea2 encode negative");
}

TEST(InspectCli, TextEncoder) {
  std::string out;
  ASSERT_EQ(run("inspect --text-encoder " + root() + " --json", &out), 0) << out;
  const nlohmann::json j = nlohmann::json::parse(out.substr(out.find('{')));
  EXPECT_EQ(j["taps"], nlohmann::json({2, 5, 8}));
  EXPECT_EQ(j["config"]["num_hidden_layers"], 9);
  EXPECT_EQ(j["quantization"], "none");
  EXPECT_EQ(run("inspect --text-encoder " + test::fixture_dir("tiny"), &out), 1);
  EXPECT_THAT(out, HasSubstr("not a Qwen3"));
}

TEST(EncodeCli, Errors) {
  test::TempDir tmp;
  std::string out;
  const std::string base = "encode --text-encoder " + root() + " --tokenizer " + tokenizer_dir() +
                           " --output " + tmp.file("e.safetensors");
  EXPECT_EQ(run(base, &out), 1);
  EXPECT_THAT(out, HasSubstr("--prompt"));
  EXPECT_EQ(run(base + " --prompt x --taps 2,x", &out), 1);
  EXPECT_THAT(out, HasSubstr("--taps"));
  EXPECT_EQ(run(base + " --prompt x --taps 99", &out), 1);
  EXPECT_THAT(out, HasSubstr("tap 99"));
  EXPECT_EQ(run(base + " --prompt x --max-sequence-length 0", &out), 1);
  EXPECT_EQ(
      run("encode --text-encoder " + root() + " --prompt x --output " + tmp.file("e.safetensors"), &out), 1);
  EXPECT_THAT(out, HasSubstr("--tokenizer"));
  EXPECT_EQ(run(base + " --prompt x --tokenizer /nonexistent", &out), 1);
  EXPECT_EQ(run("encode --text-encoder /nonexistent --tokenizer " + tokenizer_dir() +
                    " --prompt x --output " + tmp.file("e.safetensors"),
                &out),
            1);
  EXPECT_THAT(out, HasSubstr("/nonexistent"));
  EXPECT_FALSE(std::filesystem::exists(tmp.file("e.safetensors")));
}

// A random transformer whose text input fits the tiny encoder (3 taps of width 32).
std::string write_matching_transformer(const test::TempDir& tmp) {
  Config c = Config::from_json_file(test::fixture_dir("tiny/transformer/config.json"));
  c.text_hidden_dim = 32;
  c.num_text_layers = 3;
  c.text_num_attention_heads = 2;
  c.text_num_key_value_heads = 1;
  Model::random(c, DType::F32, 3).save(tmp.file("transformer"));
  return tmp.file("transformer");
}

TEST(GenerateCli, FromPromptEqualsFromFixtureEmbeddings) {
  test::TempDir tmp;
  const std::string model = write_matching_transformer(tmp);
  const std::string prompt = case_json()["cases"]["single_msl40"]["prompts"][0]["prompt"];
  const std::string common =
      "generate --model " + model + " --latent-height 4 --latent-width 4 --steps 3 --seed 7 --quiet ";
  std::string out;
  ASSERT_EQ(run(common + "--prompt '" + prompt + "' --text-encoder " + root() + " --tokenizer " +
                    tokenizer_dir() + " --max-sequence-length 40 --output " + tmp.file("a.safetensors"),
                &out),
            0)
      << out;
  ASSERT_EQ(run(common + "--prompt-embeds " + root() + "/expected_single_msl40.safetensors --output " +
                    tmp.file("b.safetensors"),
                &out),
            0)
      << out;
  const Tensor a = read(tmp.file("a.safetensors"), "latents"), b = read(tmp.file("b.safetensors"), "latents");
  ASSERT_EQ(a.shape, b.shape);
  // The embeddings agree to ~4e-7 (float32 vs upstream); three steps of a random model carry that through.
  EXPECT_LE(test::rel_l2(a.ptr(), b.ptr(), size_t(a.numel())), 1e-5);
  // And exactly equal to our own embeddings fed back through --prompt-embeds.
  ASSERT_EQ(run("encode --text-encoder " + root() + " --tokenizer " + tokenizer_dir() + " --prompt '" +
                prompt + "' --max-sequence-length 40 --quiet --output " + tmp.file("e.safetensors")),
            0);
  ASSERT_EQ(
      run(common + "--prompt-embeds " + tmp.file("e.safetensors") + " --output " + tmp.file("c.safetensors")),
      0);
  EXPECT_EQ(read(tmp.file("c.safetensors"), "latents").data, a.data);
}

TEST(GenerateCli, FromPromptWithGuidanceUsesTheEmptyNegative) {
  test::TempDir tmp;
  const std::string model = write_matching_transformer(tmp);
  const std::string common = "generate --model " + model +
                             " --latent-height 4 --latent-width 4 --steps 2 --seed 1 --guidance 4 --quiet"
                             " --max-sequence-length 24 ";
  ASSERT_EQ(run(common + "--prompt 'a red fox' --text-encoder " + root() + " --tokenizer " + tokenizer_dir() +
                " --output " + tmp.file("a.safetensors")),
            0);
  ASSERT_EQ(run("encode --text-encoder " + root() + " --tokenizer " + tokenizer_dir() +
                " --prompt 'a red fox' --negative-prompt '' --max-sequence-length 24 --quiet --output " +
                tmp.file("e.safetensors")),
            0);
  ASSERT_EQ(run(common + "--prompt-embeds " + tmp.file("e.safetensors") + " --negative-embeds " +
                tmp.file("e.safetensors") + " --output " + tmp.file("b.safetensors")),
            0);
  EXPECT_EQ(read(tmp.file("a.safetensors"), "latents").data, read(tmp.file("b.safetensors"), "latents").data);
  const SafetensorsFile f(tmp.file("a.safetensors"));
  EXPECT_EQ(f.metadata().at("prompt"), "a red fox");
  EXPECT_EQ(f.metadata().at("negative_prompt"), "");
}

}  // namespace
}  // namespace krea2
