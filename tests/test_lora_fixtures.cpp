// Every LoRA fixture output through the library: each adapter format at run time and merged, LoHa / LoKr in
// both their low-rank and their merged form, stacked adapters, the per-call scale, and equivalent layouts.
#include <gtest/gtest.h>

#include "io/safetensors.h"
#include "krea2/lora.h"
#include "krea2/model.h"
#include "support/fixture_io.h"
#include "support/lora_util.h"
#include "support/test_util.h"

namespace krea2 {
namespace {

using test::expect_close;
using test::lora_case_dir;
using test::Tolerance;

struct Mode {
  const char* name;
  LoraOptions options;
};

// Run time (default), merged, LoHa / LoKr always in their low-rank form, and always merged.
std::vector<Mode> modes() {
  LoraOptions merge, low, dense;
  merge.merge = true;
  low.low_rank_cost_limit = 1e9;
  dense.low_rank_cost_limit = 0;
  return {{"run time", {}}, {"merged", merge}, {"low-rank forms", low}, {"full-rank merged", dense}};
}

// The AI-Toolkit layout of the same adapter, made from the original-names file: prefix base_model.model.,
// and the factor 2 moved from B to A (README: B stores A0, 2 B0; C stores 2 A0, B0). Powers of two: exact.
std::string write_aitoolkit(const test::TempDir& tmp) {
  auto tensors = test::read_tensors(lora_case_dir("formats_small") + "/lora/krea_original.safetensors");
  for (auto& [name, t] : tensors) {
    const bool is_a = name.find(".lora_A.") != std::string::npos;
    for (float& v : t.data) v *= is_a ? 2.0f : 0.5f;
    name = "base_model.model." + name.substr(std::string("diffusion_model.").size());
  }
  const std::string path = tmp.file("aitoolkit.safetensors");
  test::write_adapter(path, tensors);
  return path;
}

class FormatsSmall : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_ = new Model(Model::load(test::lora_case_model("formats_small")));
    expected_ = new SafetensorsFile(dir() + "/expected.safetensors");
  }
  static void TearDownTestSuite() {
    delete model_;
    delete expected_;
  }
  static std::string dir() { return lora_case_dir("formats_small"); }
  static std::string lora(const std::string& name) { return dir() + "/lora/" + name + ".safetensors"; }
  static Tolerance tol() { return test::read_tolerance_file(dir() + "/case.json"); }
  static const TensorView& want(const std::string& name) { return *expected_->find(name); }
  static Tensor run(const Model& m, float scale = 1.0f) {
    return test::lora_forward(m, dir() + "/inputs.safetensors", scale);
  }
  static Model* model_;
  static SafetensorsFile* expected_;
};
Model* FormatsSmall::model_ = nullptr;
SafetensorsFile* FormatsSmall::expected_ = nullptr;

TEST_F(FormatsSmall, BaseWithoutAdapter) {
  expect_close(run(*model_), want("sample"), tol(), "no adapter");
}

TEST_F(FormatsSmall, LowRankLayoutsEveryMode) {
  test::TempDir tmp;
  const std::vector<std::string> files = {lora("peft_diffusers"), lora("krea_original"), write_aitoolkit(tmp),
                                          lora("kohya")};
  for (const Mode& mode : modes())
    for (const std::string& f : files) {
      const LoraAdapter a = LoraAdapter::load(f);
      const std::string what = f + " (" + mode.name + ")";
      const Model full = model_->with_loras({{a, 1.0f}}, mode.options);
      // One model, the scale changed between calls (diffusers' attention_kwargs scale).
      expect_close(run(full), want("sample_scale_1"), tol(), what + " scale 1");
      expect_close(run(full, 0.5f), want("sample_scale_0.5"), tol(), what + " lora_scale 0.5");
      expect_close(run(full, 0.0f), want("sample"), tol(), what + " lora_scale 0");
      expect_close(run(full), want("sample_scale_1"), tol(), what + " scale 1 again");
      const Model half = model_->with_loras({{a, 0.5f}}, mode.options);
      expect_close(run(half), want("sample_scale_0.5"), tol(), what + " strength 0.5");
    }
}

TEST_F(FormatsSmall, LycorisAndFullDeltasEveryMode) {
  const std::pair<const char*, const char*> cases[] = {
      {"lycoris_loha", "sample_loha_scale_1"},
      {"lycoris_lokr_w2_decomposed", "sample_lokr_decomposed_scale_1"},
      {"lycoris_lokr_w2_full", "sample_lokr_full_scale_1"},
      {"full_diff", "sample_diff_scale_1"},
  };
  for (const Mode& mode : modes())
    for (const auto& [file, output] : cases) {
      const LoraAdapter a = LoraAdapter::load(lora(file));
      const std::string what = std::string(file) + " (" + mode.name + ")";
      const Model m = model_->with_loras({{a, 1.0f}}, mode.options);
      expect_close(run(m), want(output), tol(), what);
      expect_close(run(m, 0.0f), want("sample"), tol(), what + " lora_scale 0");
      // Another scale per call equals the delta merged at that strength.
      LoraOptions merged = mode.options;
      merged.merge = true;
      const Tensor at_half = run(model_->with_loras({{a, 0.5f}}, merged));
      const Tensor got = run(m, 0.5f);
      EXPECT_LE(test::rel_l2(got.ptr(), at_half.ptr(), got.data.size()), 1e-6) << what << " lora_scale 0.5";
      EXPECT_GT(test::rel_l2(got.ptr(), run(m).ptr(), got.data.size()), 1e-2)
          << what << " scale has an effect";
    }
}

TEST_F(FormatsSmall, StackedAdapters) {
  const LoraAdapter peft = LoraAdapter::load(lora("peft_diffusers"));
  const LoraAdapter lokr = LoraAdapter::load(lora("lycoris_lokr_w2_decomposed"));
  for (const Mode& mode : modes()) {
    const Model m = model_->with_loras({{peft, 0.8f}, {lokr, 0.5f}}, mode.options);
    expect_close(run(m), want("sample_stack"), tol(), std::string("stack (") + mode.name + ")");
  }
  // The same adapters in another order, and a stack of the full deltas with a LoRA on the same matrices.
  expect_close(run(model_->with_loras({{lokr, 0.5f}, {peft, 0.8f}})), want("sample_stack"), tol(),
               "reversed");
}

TEST_F(FormatsSmall, EquivalentLayoutsAgree) {
  test::TempDir tmp;
  const Tensor ref = run(model_->with_loras({{LoraAdapter::load(lora("peft_diffusers")), 1.0f}}));
  for (const std::string& f : {lora("krea_original"), write_aitoolkit(tmp), lora("kohya")}) {
    const Tensor got = run(model_->with_loras({{LoraAdapter::load(f), 1.0f}}));
    EXPECT_LE(test::rel_l2(got.ptr(), ref.ptr(), ref.data.size()), 1e-6) << f;
  }
}

TEST_F(FormatsSmall, DetachAndReplace) {
  const LoraAdapter peft = LoraAdapter::load(lora("peft_diffusers"));
  const LoraAdapter loha = LoraAdapter::load(lora("lycoris_loha"));
  const Model with = model_->with_loras({{peft, 1.0f}});
  EXPECT_TRUE(with.has_loras());
  EXPECT_FALSE(with.without_loras().has_loras());
  expect_close(run(with.without_loras()), want("sample"), tol(), "detached");
  expect_close(run(*model_), want("sample"), tol(), "the model attached to is unchanged");
  // with_loras on a model with adapters replaces them.
  expect_close(run(with.with_loras({{loha, 1.0f}})), want("sample_loha_scale_1"), tol(), "replaced");
  expect_close(run(with.with_loras({})), want("sample"), tol(), "empty list");
}

// Run time never copies or changes a stored weight; merged copies only the matrices an adapter changes.
TEST_F(FormatsSmall, WhatEachModeCopies) {
  const LoraAdapter diff = LoraAdapter::load(lora("full_diff"));
  const auto stored = model_->parameters();
  LoraOptions merge;
  merge.merge = true;
  const auto runtime = model_->with_loras({{LoraAdapter::load(lora("peft_diffusers")), 1.0f}}).parameters();
  const auto merged = model_->with_loras({{diff, 1.0f}}, merge).parameters();
  int copies = 0;
  for (size_t i = 0; i < stored.size(); ++i) {
    if (stored[i].shape.size() != 2 || stored[i].name.find("table") != std::string::npos ||
        stored[i].name.find("projector") != std::string::npos)
      continue;  // vectors are the model's own float32 copies anyway
    EXPECT_EQ(runtime[i].data, stored[i].data) << stored[i].name;
    copies += merged[i].data != stored[i].data;
  }
  EXPECT_EQ(copies, 5);  // full_diff changes 6 weights; the projector is a vector
}

TEST(SmallLora, PeftScalesRunTimeAndMerged) {
  const std::string dir = test::fixture_dir("small_lora");
  const Model model = Model::load(dir);
  const LoraAdapter a = LoraAdapter::load(dir + "/lora/pytorch_lora_weights.safetensors");
  SafetensorsFile expected(dir + "/expected.safetensors");
  const Tolerance tol = test::read_tolerance_file(dir + "/case.json");
  for (bool merge : {false, true}) {
    LoraOptions o;
    o.merge = merge;
    const Model m = model.with_loras({{a, 1.0f}}, o);
    const std::string what = merge ? " merged" : " run time";
    expect_close(test::lora_forward(m, dir + "/inputs.safetensors"), *expected.find("sample_lora_scale_1"),
                 tol, "scale 1" + what);
    expect_close(test::lora_forward(m, dir + "/inputs.safetensors", 0.5f),
                 *expected.find("sample_lora_scale_0.5"), tol, "scale 0.5" + what);
  }
}

TEST(Bf16OriginalNames, KohyaOnTextFusionToo) {
  const std::string dir = lora_case_dir("bf16_original_names");
  const Model model = Model::load(test::lora_case_model("bf16_original_names"));
  const LoraAdapter a = LoraAdapter::load(dir + "/lora/kohya_bf16.safetensors");
  SafetensorsFile expected(dir + "/expected.safetensors");
  const Tolerance tol = test::read_tolerance_file(dir + "/case.json");
  const std::string in = dir + "/inputs.safetensors";
  expect_close(test::lora_forward(model, in), *expected.find("sample"), tol, "no adapter");
  for (bool merge : {false, true}) {
    LoraOptions o;
    o.merge = merge;
    const std::string what = merge ? " merged" : " run time";
    const Model m = model.with_loras({{a, 1.0f}}, o);
    expect_close(test::lora_forward(m, in), *expected.find("sample_scale_1"), tol, "scale 1" + what);
    expect_close(test::lora_forward(m, in, 0.75f), *expected.find("sample_scale_0.75"), tol,
                 "scale 0.75" + what);
    const Model m75 = model.with_loras({{a, 0.75f}}, o);
    expect_close(test::lora_forward(m75, in), *expected.find("sample_scale_0.75"), tol,
                 "strength 0.75" + what);
  }
}

}  // namespace
}  // namespace krea2
