// Adapters through the CLI: every LoRA fixture output via `krea2 forward --lora ...` at run time and with
// --lora-merge, stacked and scaled; `krea2 generate --lora` against generate on the checkpoint with the
// deltas merged and saved; `krea2 inspect --lora`.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "krea2/lora.h"
#include "krea2/model.h"
#include "support/fixture_io.h"
#include "support/lora_util.h"
#include "support/test_util.h"

namespace krea2 {
namespace {

using test::Tolerance;
using ::testing::HasSubstr;

int krea2(const std::string& args, std::string* log) {
  return test::run_command(test::cli_path() + " " + args, log);
}

struct CliCase {
  std::string name;                // case folder
  std::vector<std::string> loras;  // --lora FILE[:S] arguments, relative to the case's lora/
  std::string extra;               // other options, e.g. "--lora-scale 0.5"
  std::string output;              // expected tensor
};

class ForwardLoraCli : public ::testing::TestWithParam<CliCase> {};

TEST_P(ForwardLoraCli, MatchesUpstreamRunTimeAndMerged) {
  const CliCase& c = GetParam();
  const bool small = c.name == "small_lora";
  const std::string dir = small ? test::fixture_dir("small_lora") : test::lora_case_dir(c.name);
  const std::string model = small ? dir : test::lora_case_model(c.name);
  std::string args;
  for (const std::string& l : c.loras) args += " --lora " + dir + "/lora/" + l;
  if (!c.extra.empty()) args += " " + c.extra;
  const Tolerance tol = test::read_tolerance_file(dir + "/case.json");
  SafetensorsFile expected(dir + "/expected.safetensors");
  for (const char* mode : {"", " --lora-merge"}) {
    test::TempDir tmp;
    std::string log;
    ASSERT_EQ(krea2("forward --quiet --model " + model + " --inputs " + dir +
                        "/inputs.safetensors --output " + tmp.file("out.safetensors") + args + mode,
                    &log),
              0)
        << log;
    SafetensorsFile got(tmp.file("out.safetensors"));
    test::expect_close(to_float_tensor(*got.find("sample")), *expected.find(c.output), tol,
                       c.name + ":" + args + mode);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Fixtures, ForwardLoraCli,
    ::testing::Values(
        CliCase{"formats_small", {"peft_diffusers.safetensors"}, "", "sample_scale_1"},
        CliCase{"formats_small", {"krea_original.safetensors:0.5"}, "", "sample_scale_0.5"},
        CliCase{"formats_small", {"kohya.safetensors"}, "--lora-scale 0.5", "sample_scale_0.5"},
        CliCase{"formats_small", {"lycoris_loha.safetensors"}, "", "sample_loha_scale_1"},
        CliCase{"formats_small",
                {"lycoris_lokr_w2_decomposed.safetensors"},
                "",
                "sample_lokr_decomposed_scale_1"},
        CliCase{"formats_small", {"lycoris_lokr_w2_full.safetensors:1"}, "", "sample_lokr_full_scale_1"},
        CliCase{"formats_small", {"full_diff.safetensors"}, "", "sample_diff_scale_1"},
        CliCase{"formats_small",
                {"peft_diffusers.safetensors:0.8", "lycoris_lokr_w2_decomposed.safetensors:0.5"},
                "",
                "sample_stack"},
        CliCase{"formats_small",
                {"peft_diffusers.safetensors:1.6", "lycoris_lokr_w2_decomposed.safetensors"},
                "--lora-scale 0.5",
                "sample_stack"},
        CliCase{"small_lora", {"pytorch_lora_weights.safetensors"}, "", "sample_lora_scale_1"},
        CliCase{"small_lora", {"pytorch_lora_weights.safetensors:0.5"}, "", "sample_lora_scale_0.5"},
        CliCase{"bf16_original_names", {"kohya_bf16.safetensors"}, "", "sample_scale_1"},
        CliCase{"bf16_original_names", {"kohya_bf16.safetensors:0.75"}, "", "sample_scale_0.75"}));

std::map<std::string, Tensor> read_all(const std::string& path) {
  std::map<std::string, Tensor> out;
  for (auto& [name, t] : test::read_tensors(path)) out[name] = std::move(t);
  return out;
}

// `krea2 generate --lora` (run time and --lora-merge) equals `krea2 generate` on a checkpoint with the
// deltas merged and saved by Model::save; and the adapters change the result.
TEST(GenerateLoraCli, EqualsGenerateOnMergedSavedCheckpoint) {
  const std::string base = test::fixture_dir("sample_base_cfg");  // formats_small's model
  const std::string lora = test::lora_case_dir("formats_small") + "/lora/";
  test::TempDir tmp;
  LoraOptions merge;
  merge.merge = true;
  Model::load(base)
      .with_loras({{LoraAdapter::load(lora + "peft_diffusers.safetensors"), 0.8f},
                   {LoraAdapter::load(lora + "full_diff.safetensors"), 0.5f}},
                  merge)
      .save(tmp.file("merged"));
  const std::string in = base + "/inputs.safetensors";
  const std::string common = " --quiet --prompt-embeds " + in + " --negative-embeds " + in + " --noise " +
                             in + " --guidance 4.5 --steps 3 --output ";
  const std::string adapters =
      " --lora " + lora + "peft_diffusers.safetensors:0.8 --lora " + lora + "full_diff.safetensors:0.5";
  std::string log;
  ASSERT_EQ(krea2("generate --model " + tmp.file("merged") + common + tmp.file("want.safetensors"), &log), 0)
      << log;
  ASSERT_EQ(krea2("generate --model " + base + common + tmp.file("run.safetensors") + adapters, &log), 0)
      << log;
  ASSERT_EQ(
      krea2("generate --model " + base + common + tmp.file("merge.safetensors") + adapters + " --lora-merge",
            &log),
      0)
      << log;
  ASSERT_EQ(krea2("generate --model " + base + common + tmp.file("none.safetensors"), &log), 0) << log;
  const auto want = read_all(tmp.file("want.safetensors"));
  const Tensor& ref = want.at("latents");
  for (const char* f : {"run.safetensors", "merge.safetensors"}) {
    const auto got = read_all(tmp.file(f));
    EXPECT_LE(test::rel_l2(got.at("latents").ptr(), ref.ptr(), ref.data.size()), 1e-5) << f;
  }
  const auto none = read_all(tmp.file("none.safetensors"));
  EXPECT_GT(test::rel_l2(none.at("latents").ptr(), ref.ptr(), ref.data.size()), 1e-3);
}

TEST(InspectLoraCli, FormatRankAlphaTargets) {
  const std::string dir = test::lora_case_dir("bf16_original_names");
  std::string log;
  ASSERT_EQ(krea2("inspect --lora " + dir + "/lora/kohya_bf16.safetensors " +
                      test::lora_case_model("bf16_original_names"),
                  &log),
            0)
      << log;
  EXPECT_THAT(log, HasSubstr("format: kohya / musubi (lora_unet_): LoRA"));
  EXPECT_THAT(log, HasSubstr("targeted parameters: 57, rank: 6, alpha: 4"));
  EXPECT_THAT(log, HasSubstr("lora_unet_txtfusion_layerwise_blocks_0_attn_wq"));
  EXPECT_THAT(log, HasSubstr("text_fusion.layerwise_blocks.0.attn.to_q.weight"));
  EXPECT_THAT(log, HasSubstr("unmatched keys: 0"));
  // Without a model: the default config's names; JSON.
  const std::string lora = test::lora_case_dir("formats_small") + "/lora/";
  ASSERT_EQ(krea2("inspect --json --lora " + lora + "lycoris_loha.safetensors", &log), 0) << log;
  const auto j = nlohmann::json::parse(log.substr(log.find('{')));
  EXPECT_EQ(j["format"], "LyCORIS (lycoris_): LoHa");
  EXPECT_EQ(j["targets"].size(), 57u);
  EXPECT_EQ(j["rank"], "4");
  EXPECT_EQ(j["alpha"], "2");
  // Keys of another model (text encoder LoRA keys here) are listed, not an error.
  test::TempDir tmp;
  test::write_adapter(tmp.file("te.safetensors"),
                      {{"lora_te_text_model_encoder_layers_0_mlp_fc1.lora_down.weight", Tensor({2, 8})},
                       {"lora_te_text_model_encoder_layers_0_mlp_fc1.lora_up.weight", Tensor({8, 2})},
                       {"lora_unet_blocks_0_attn_wq.lora_down.weight", Tensor({2, 6144})},
                       {"lora_unet_blocks_0_attn_wq.lora_up.weight", Tensor({6144, 2})}});
  ASSERT_EQ(krea2("inspect --lora " + tmp.file("te.safetensors"), &log), 0) << log;
  EXPECT_THAT(log, HasSubstr("unmatched keys: 2"));
  EXPECT_THAT(log, HasSubstr("lora_te_text_model_encoder_layers_0_mlp_fc1.lora_down.weight"));
  EXPECT_THAT(log, HasSubstr("transformer_blocks.0.attn.to_q.weight"));
}

}  // namespace
}  // namespace krea2
