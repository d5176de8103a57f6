// Bad adapter files and arguments: every error names the file and key (and both shapes for a misfit), no
// crash on truncated or corrupt files, unknown keys an error unless ignored (then a listed warning), and an
// error leaves nothing attached.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "io/safetensors.h"
#include "krea2/lora.h"
#include "krea2/model.h"
#include "support/fixture_io.h"
#include "support/lora_util.h"
#include "support/test_util.h"

namespace krea2 {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using Tensors = std::vector<std::pair<std::string, Tensor>>;

std::string model_dir() {
  return test::fixture_dir("sample_base_cfg");  // SMALL: hidden 64, kv 32, text 48
}

// Forward inputs for that model.
std::string inputs() {
  return test::lora_case_dir("formats_small") + "/inputs.safetensors";
}

const Model& model() {
  static const Model m = Model::load(model_dir());
  return m;
}

Tensor filled(Shape shape, float v = 0.01f) {
  Tensor t(std::move(shape));
  for (size_t i = 0; i < t.data.size(); ++i) t.data[i] = v * float(int(i % 7) - 3);
  return t;
}

// A valid rank-2 LoRA on blocks 0's to_q, original names.
Tensors good() {
  return {{"diffusion_model.blocks.0.attn.wq.lora_A.weight", filled({2, 64})},
          {"diffusion_model.blocks.0.attn.wq.lora_B.weight", filled({64, 2})}};
}

// The message of the krea2::Error `f` throws (fails the test when it does not throw).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error thrown";
  return "";
}

std::string attach_error(const Tensors& tensors, const std::map<std::string, std::string>& meta = {}) {
  test::TempDir tmp;
  const std::string path = tmp.file("bad.safetensors");
  test::write_adapter(path, tensors,
                      meta.empty() ? std::map<std::string, std::string>{{"format", "pt"}} : meta);
  return error_of([&] { (void)model().with_loras({{LoraAdapter::load(path), 1.0f}}); });
}

TEST(LoraErrors, UnknownKeysNamedOrListedWhenIgnored) {
  test::TempDir tmp;
  Tensors t = good();
  t.push_back({"transformer.not_a_module.lora_A.weight", filled({2, 64})});
  t.push_back({"transformer.not_a_module.lora_B.weight", filled({64, 2})});
  t.push_back({"lora_te_text_model_encoder_layers_0_mlp_fc1.lora_down.weight", filled({2, 8})});
  t.push_back({"lora_te_text_model_encoder_layers_0_mlp_fc1.lora_up.weight", filled({8, 2})});
  t.push_back({"some.other.tensor", filled({3})});
  t.push_back({"lora_unet_blocks_0_attn_wk.alpha", filled({})});  // an alpha with no factors
  const std::string path = tmp.file("mixed.safetensors");
  test::write_adapter(path, t);
  const LoraAdapter a = LoraAdapter::load(path);
  const std::string msg = error_of([&] { (void)model().with_loras({{a, 1.0f}}); });
  EXPECT_THAT(msg, AllOf(HasSubstr(path), HasSubstr("6 key(s) match no parameter"),
                         HasSubstr("transformer.not_a_module.lora_A.weight"), HasSubstr("some.other.tensor"),
                         HasSubstr("lora_te_text_model_encoder_layers_0_mlp_fc1.lora_up.weight"),
                         HasSubstr("lora_unet_blocks_0_attn_wk.alpha"), HasSubstr("--lora-ignore-unknown")));
  std::vector<std::string> warnings;
  LoraOptions o;
  o.ignore_unknown = true;
  o.warnings = &warnings;
  const Model m = model().with_loras({{a, 1.0f}}, o);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_THAT(warnings[0], AllOf(HasSubstr("ignored 6 key(s)"), HasSubstr("some.other.tensor")));
  // The matched part is applied exactly as on its own.
  test::write_adapter(tmp.file("good.safetensors"), good());
  const std::string in = inputs();
  const Tensor want =
      test::lora_forward(model().with_loras({{LoraAdapter::load(tmp.file("good.safetensors")), 1.0f}}), in);
  const Tensor got = test::lora_forward(m, in);
  EXPECT_EQ(got.data, want.data);
  // Nothing at all matches: an error even when ignoring.
  test::write_adapter(tmp.file("none.safetensors"), {t[2], t[3]});
  EXPECT_THAT(error_of([&] {
                (void)model().with_loras({{LoraAdapter::load(tmp.file("none.safetensors")), 1.0f}}, o);
              }),
              HasSubstr("no key of the adapter matches a parameter"));
}

TEST(LoraErrors, ShapeMismatchNamesTensorAndBothShapes) {
  // to_k is (32, 64) in this model.
  EXPECT_THAT(
      attach_error({{"transformer.transformer_blocks.1.attn.to_k.lora_A.weight", filled({4, 64})},
                    {"transformer.transformer_blocks.1.attn.to_k.lora_B.weight", filled({64, 4})}}),
      AllOf(HasSubstr("bad.safetensors"),
            HasSubstr("'transformer.transformer_blocks.1.attn.to_k.lora_B.weight'"), HasSubstr("(64, 4)"),
            HasSubstr("'transformer_blocks.1.attn.to_k.weight' is (32, 64)"), HasSubstr("expected (32, 4)")));
  EXPECT_THAT(attach_error({{"lora_unet_blocks_0_attn_wq.lora_down.weight", filled({4, 48})},
                            {"lora_unet_blocks_0_attn_wq.lora_up.weight", filled({64, 4})}}),
              AllOf(HasSubstr("(4, 48)"), HasSubstr("(64, 64)"), HasSubstr("expected (4, 64)")));
  EXPECT_THAT(attach_error({{"diffusion_model.blocks.0.attn.wq.diff", filled({64, 63})}}),
              AllOf(HasSubstr("(64, 63)"), HasSubstr("(64, 64)")));
  EXPECT_THAT(attach_error({{"diffusion_model.blocks.0.prenorm.scale.diff", filled({65})}}),
              AllOf(HasSubstr("(65,)"), HasSubstr("transformer_blocks.0.norm1.weight' is (64,)")));
  EXPECT_THAT(attach_error({{"lycoris_transformer_blocks_0_attn_to_q.lokr_w1", filled({4, 4})},
                            {"lycoris_transformer_blocks_0_attn_to_q.lokr_w2", filled({16, 8})}}),
              AllOf(HasSubstr("kron(w1 (4, 4), w2 (16, 8))"), HasSubstr("(64, 64)")));
  EXPECT_THAT(attach_error({{"diffusion_model.blocks.0.attn.wq.diff_b", filled({64})}}),
              HasSubstr("has no bias"));
  // A LoRA on a 1-D parameter.
  EXPECT_THAT(attach_error({{"diffusion_model.blocks.0.prenorm.scale.lora_A.weight", filled({2, 64})},
                            {"diffusion_model.blocks.0.prenorm.scale.lora_B.weight", filled({64, 2})}}),
              HasSubstr("not a matrix"));
}

TEST(LoraErrors, TwoKeysForOneParameter) {
  Tensors t = good();
  t.push_back({"lora_unet_blocks_0_attn_wq.lora_down.weight", filled({2, 64})});
  t.push_back({"lora_unet_blocks_0_attn_wq.lora_up.weight", filled({64, 2})});
  EXPECT_THAT(attach_error(t),
              AllOf(HasSubstr("both change"), HasSubstr("transformer_blocks.0.attn.to_q.weight")));
}

std::string load_error(const Tensors& tensors,
                       const std::map<std::string, std::string>& meta = {{"format", "pt"}}) {
  test::TempDir tmp;
  const std::string path = tmp.file("bad.safetensors");
  test::write_adapter(path, tensors, meta);
  return error_of([&] { (void)LoraAdapter::load(path); });
}

TEST(LoraErrors, MalformedGroups) {
  EXPECT_THAT(load_error({good()[0]}), AllOf(HasSubstr("bad.safetensors"), HasSubstr("lora_A and lora_B")));
  EXPECT_THAT(load_error({{"x.lora_down.weight", filled({2, 8})}, {"x.lora_up.weight", filled({8, 3})}}),
              AllOf(HasSubstr("'x.lora_up.weight'"), HasSubstr("(8, 3)"), HasSubstr("rank")));
  EXPECT_THAT(load_error({{"x.lora_down.weight", filled({2, 8})}, {"x.hada_w1_a", filled({8, 2})}}),
              HasSubstr("mixes lora and loha"));
  EXPECT_THAT(load_error({{"x.hada_w1_a", filled({8, 2})}, {"x.hada_w1_b", filled({2, 8})}}),
              HasSubstr("LoHa needs"));
  EXPECT_THAT(load_error({{"x.lokr_w1", filled({2, 2})},
                          {"x.lokr_w1_a", filled({2, 1})},
                          {"x.lokr_w1_b", filled({1, 2})},
                          {"x.lokr_w2", filled({4, 4})}}),
              HasSubstr("exactly one"));
  EXPECT_THAT(load_error({good()[0], good()[1], {"diffusion_model.blocks.0.attn.wq.alpha", filled({2})}}),
              HasSubstr("alpha must hold one value"));
  EXPECT_THAT(load_error({{"x.alpha", filled({})}}), HasSubstr("no LoRA keys"));
  EXPECT_THAT(
      load_error({good()[0], good()[1], {"diffusion_model.blocks.0.attn.wq.dora_scale", filled({64})}}),
      HasSubstr("not supported"));
  EXPECT_THAT(
      load_error({{"x.lora_A.weight", filled({2, 8, 1, 1})}, {"x.lora_B.weight", filled({8, 2, 1, 1})}}),
      AllOf(HasSubstr("2-D"), HasSubstr("(2, 8, 1, 1)")));
  EXPECT_THAT(load_error({{"x.diff_b", filled({2, 8})}}), HasSubstr("bias delta must be 1-D"));
  EXPECT_THAT(load_error(good(), {{"lora_adapter_metadata", "{not json"}}),
              AllOf(HasSubstr("lora_adapter_metadata"), HasSubstr("not valid JSON")));
  EXPECT_THAT(load_error(good(), {{"lora_adapter_metadata", R"({"transformer.use_dora": true})"}}),
              HasSubstr("DoRA"));
  // Integer factors.
  test::TempDir tmp;
  const std::vector<int32_t> ints(16, 1);
  write_safetensors(tmp.file("int.safetensors"), {{"x.lora_A.weight", DType::I32, {2, 8}, ints.data()},
                                                  {"x.lora_B.weight", DType::I32, {8, 2}, ints.data()}});
  EXPECT_THAT(error_of([&] { (void)LoraAdapter::load(tmp.file("int.safetensors")); }),
              AllOf(HasSubstr("'x.lora_A.weight'"), HasSubstr("I32")));
}

TEST(LoraErrors, NoLoraKeysSaysSo) {
  EXPECT_THAT(error_of([] {
                (void)LoraAdapter::load(model_dir() + "/transformer/diffusion_pytorch_model.safetensors");
              }),
              AllOf(HasSubstr("diffusion_pytorch_model.safetensors"), HasSubstr("no LoRA keys"),
                    HasSubstr("img_in.weight")));
  EXPECT_THAT(load_error({}), AllOf(HasSubstr("no LoRA keys"), HasSubstr("holds no tensors")));
}

// Cut anywhere or with bytes flipped: a krea2::Error naming the file, or a valid adapter; never a crash.
TEST(LoraErrors, TruncatedAndCorruptFiles) {
  const std::string src = test::lora_case_dir("formats_small") + "/lora/kohya.safetensors";
  const std::string bytes = test::read_file(src);
  test::TempDir tmp;
  const std::string path = tmp.file("cut.safetensors");
  int errors = 0;
  for (size_t n : {size_t(0), size_t(7), size_t(8), size_t(100), bytes.size() / 2, bytes.size() - 1}) {
    test::write_file(path, bytes.substr(0, n));
    const std::string msg = error_of([&] { (void)LoraAdapter::load(path); });
    EXPECT_THAT(msg, HasSubstr(path)) << n;
    errors += !msg.empty();
  }
  EXPECT_EQ(errors, 6);
  for (size_t at = 8; at < 2000; at += 37) {
    std::string b = bytes;
    b[at] = char(b[at] ^ 0x5a);
    test::write_file(path, b);
    try {
      const LoraAdapter a = LoraAdapter::load(path);
      LoraOptions o;
      o.ignore_unknown = true;
      (void)model().with_loras({{a, 1.0f}}, o);
    } catch (const Error& e) {
      EXPECT_THAT(std::string(e.what()), HasSubstr(path));
    }
  }
}

// One bad adapter in a list: an error, and nothing of the good one is attached anywhere.
TEST(LoraErrors, NothingHalfApplied) {
  test::TempDir tmp;
  test::write_adapter(tmp.file("good.safetensors"), good());
  test::write_adapter(tmp.file("bad.safetensors"),
                      {{"diffusion_model.blocks.0.attn.wk.lora_A.weight", filled({2, 64})},
                       {"diffusion_model.blocks.0.attn.wk.lora_B.weight", filled({64, 2})}});
  const LoraAdapter g = LoraAdapter::load(tmp.file("good.safetensors"));
  const LoraAdapter b = LoraAdapter::load(tmp.file("bad.safetensors"));
  const std::string in = inputs();
  const Tensor base = test::lora_forward(model(), in);
  const Model with = model().with_loras({{g, 1.0f}});
  const Tensor with_good = test::lora_forward(with, in);
  EXPECT_THAT(error_of([&] { (void)with.with_loras({{g, 1.0f}, {b, 1.0f}}); }), HasSubstr("bad.safetensors"));
  EXPECT_THAT(error_of([&] { (void)model().with_loras({{g, NAN}}); }), HasSubstr("not finite"));
  EXPECT_FALSE(model().has_loras());
  EXPECT_EQ(test::lora_forward(model(), in).data, base.data);
  EXPECT_EQ(test::lora_forward(with, in).data, with_good.data);
  EXPECT_THAT(error_of([&] { (void)test::lora_forward(with, in, INFINITY); }), HasSubstr("lora_scale"));
}

// Writing a model whose adapters run at run time would drop part of them: refused; merged, it is written.
TEST(LoraErrors, SaveNeedsMergedAdapters) {
  test::TempDir tmp;
  test::write_adapter(tmp.file("good.safetensors"), good());
  const LoraAdapter g = LoraAdapter::load(tmp.file("good.safetensors"));
  EXPECT_THAT(error_of([&] {
                model().with_loras({{g, 1.0f}}).save(tmp.file("runtime"));
              }),
              AllOf(HasSubstr("run time"), HasSubstr("--lora-merge")));
  EXPECT_FALSE(std::filesystem::exists(tmp.file("runtime")));
  LoraOptions merge;
  merge.merge = true;
  model().with_loras({{g, 1.0f}}, merge).save(tmp.file("merged"));
  const Tensor saved = test::lora_forward(Model::load(tmp.file("merged")), inputs());
  const Tensor runtime = test::lora_forward(model().with_loras({{g, 1.0f}}), inputs());
  EXPECT_LE(test::rel_l2(saved.ptr(), runtime.ptr(), saved.data.size()), 1e-6);
}

TEST(LoraErrors, PeftAlphaPatternAndRslora) {
  test::TempDir tmp;
  const Tensors t = {{"transformer.transformer_blocks.0.attn.to_q.lora_A.weight", filled({4, 64})},
                     {"transformer.transformer_blocks.0.attn.to_q.lora_B.weight", filled({64, 4})},
                     {"transformer.transformer_blocks.0.attn.to_k.lora_A.weight", filled({4, 64})},
                     {"transformer.transformer_blocks.0.attn.to_k.lora_B.weight", filled({32, 4})}};
  test::write_adapter(
      tmp.file("p.safetensors"), t,
      {{"lora_adapter_metadata",
        R"({"transformer.r": 4, "transformer.lora_alpha": 8, "transformer.alpha_pattern": {"to_k": 2}})"}});
  const LoraSummary s = LoraAdapter::load(tmp.file("p.safetensors")).summary(model().config());
  ASSERT_EQ(s.targets.size(), 2u);
  EXPECT_EQ(s.targets[0].factor, 2.0);
  EXPECT_EQ(s.targets[1].factor, 0.5);
  test::write_adapter(tmp.file("r.safetensors"), t,
                      {{"lora_adapter_metadata", R"({"lora_alpha": 8, "use_rslora": true})"}});
  EXPECT_EQ(LoraAdapter::load(tmp.file("r.safetensors")).summary(model().config()).targets[0].factor, 4.0);
}

TEST(LoraErrors, LoraArgument) {
  EXPECT_EQ(parse_lora_argument("a.safetensors:0.5"), (std::pair<std::string, float>{"a.safetensors", 0.5f}));
  EXPECT_EQ(parse_lora_argument("dir:x/a.safetensors"),
            (std::pair<std::string, float>{"dir:x/a.safetensors", 1.0f}));
  EXPECT_EQ(parse_lora_argument("a:b:-2"), (std::pair<std::string, float>{"a:b", -2.0f}));
  EXPECT_THAT(error_of([] { parse_lora_argument(":0.5"); }), HasSubstr("missing the file"));
  EXPECT_THAT(error_of([] { parse_lora_argument("a:inf"); }), HasSubstr("finite"));
}

TEST(LoraErrors, Cli) {
  test::TempDir tmp;
  Tensors t = good();
  t.push_back({"transformer.nowhere.lora_A.weight", filled({2, 64})});
  t.push_back({"transformer.nowhere.lora_B.weight", filled({64, 2})});
  test::write_adapter(tmp.file("unknown.safetensors"), t);
  const std::string forward = test::cli_path() + " forward --quiet --model " + model_dir() + " --inputs " +
                              inputs() + " --output " + tmp.file("out.safetensors");
  std::string log;
  EXPECT_EQ(test::run_command(forward + " --lora " + tmp.file("unknown.safetensors"), &log), 1);
  EXPECT_THAT(log, AllOf(HasSubstr("transformer.nowhere.lora_A.weight"), HasSubstr("--lora-ignore-unknown")));
  EXPECT_FALSE(std::filesystem::exists(tmp.file("out.safetensors")));
  EXPECT_EQ(test::run_command(
                forward + " --lora " + tmp.file("unknown.safetensors") + " --lora-ignore-unknown", &log),
            0)
      << log;
  EXPECT_THAT(log, AllOf(HasSubstr("warning:"), HasSubstr("transformer.nowhere.lora_B.weight")));
  EXPECT_EQ(test::run_command(forward + " --lora-scale 0.5", &log), 1);
  EXPECT_THAT(log, HasSubstr("--lora-scale needs --lora"));
  EXPECT_EQ(test::run_command(forward + " --lora " + tmp.file("missing.safetensors"), &log), 1);
  EXPECT_THAT(log, HasSubstr("missing.safetensors"));
  EXPECT_EQ(test::run_command(test::cli_path() + " inspect --lora " + model_dir() +
                                  "/transformer/diffusion_pytorch_model.safetensors",
                              &log),
            1);
  EXPECT_THAT(log, HasSubstr("no LoRA keys"));
}

}  // namespace
}  // namespace krea2
