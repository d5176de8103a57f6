// General behaviour of the sampler beyond the two fixtures, on a random model with another config
// (in_channels 8, so 2 latent channels): odd non-square grids, 5 steps, guidance with a negative prompt of
// another length and other masks, batched vs two-pass guidance, cached vs recomputed text, batch
// independence, and input validation.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "krea2/error.h"
#include "krea2/model.h"
#include "krea2/sampler.h"
#include "support/test_util.h"

namespace krea2 {
namespace {

using ::testing::HasSubstr;

Config small_config() {
  Config c;
  c.in_channels = 8;
  c.num_layers = 2;
  c.attention_head_dim = 8;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.intermediate_size = 24;
  c.timestep_embed_dim = 16;
  c.text_hidden_dim = 12;
  c.num_text_layers = 3;
  c.text_num_attention_heads = 2;
  c.text_num_key_value_heads = 1;
  c.text_intermediate_size = 20;
  c.num_layerwise_text_blocks = 1;
  c.num_refiner_text_blocks = 1;
  c.axes_dims_rope = {2, 2, 4};
  return c;
}

const Model& model() {
  static const Model m = Model::random(small_config(), DType::F32, 11);
  return m;
}

TextEmbeddings text(int64_t batch, int64_t len, uint64_t seed, std::vector<float> mask = {}) {
  const Config& c = model().config();
  const Shape shape{batch, len, c.num_text_layers, c.text_hidden_dim};
  TextEmbeddings t{Tensor(shape, test::random_floats(size_t(shape_numel(shape)), seed)), std::nullopt};
  if (!mask.empty()) t.mask = Tensor({batch, len}, std::move(mask));
  return t;
}

double rel(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape, b.shape);
  return test::rel_l2(a.ptr(), b.ptr(), size_t(b.numel()));
}

Tensor sample_of(const Tensor& t, int64_t s) {
  Shape shape = t.shape;
  shape[0] = 1;
  const int64_t n = shape_numel(shape);
  return Tensor(shape, std::vector<float>(t.data.begin() + s * n, t.data.begin() + (s + 1) * n));
}

TextEmbeddings text_of(const TextEmbeddings& t, int64_t s) {
  TextEmbeddings out{sample_of(t.embeds, s), std::nullopt};
  if (t.mask) out.mask = sample_of(*t.mask, s);
  return out;
}

// The pipeline loop over Model::forward, one call per prompt per step, built from make_schedule and
// make_position_ids.
Tensor reference_loop(const TextEmbeddings& prompt, const TextEmbeddings* negative, const Tensor& noise,
                      const GenerateOptions& o) {
  const LatentSize size{noise.dim(2), noise.dim(3)};
  const Schedule s = make_schedule(o.schedule, size.tokens());
  Tensor x = pack_latents(noise);
  const float g = float(o.guidance);
  for (int i = 0; i < s.steps(); ++i) {
    auto run = [&](const TextEmbeddings& t) {
      ForwardInputs in;
      in.hidden_states = x;
      in.encoder_hidden_states = t.embeds;
      in.timestep =
          Tensor({x.dim(0)}, std::vector<float>(size_t(x.dim(0)), s.timesteps[size_t(i)] / 1000.0f));
      in.position_ids = make_position_ids(t.embeds.dim(1), size);
      in.encoder_attention_mask = t.mask;
      return model().forward(in);
    };
    Tensor v = run(prompt);
    if (g > 0) {
      const Tensor u = run(*negative);
      for (size_t k = 0; k < v.data.size(); ++k) v.data[k] = v.data[k] + g * (v.data[k] - u.data[k]);
    }
    const float dt = s.sigmas[size_t(i) + 1] - s.sigmas[size_t(i)];
    for (size_t k = 0; k < x.data.size(); ++k) x.data[k] = x.data[k] + dt * v.data[k];
  }
  return x;
}

GenerateOptions five_steps(double guidance = 0) {
  GenerateOptions o;
  o.schedule.steps = 5;
  o.guidance = guidance;
  return o;
}

TEST(Generate, OddNonSquareGridsMatchTheReferenceLoop) {
  const TextEmbeddings prompt = text(2, 5, 1, {1, 1, 1, 0, 0, 1, 1, 1, 1, 1});
  for (auto [h, w] : std::vector<std::pair<int64_t, int64_t>>{{6, 10}, {10, 6}, {2, 14}}) {
    const Tensor noise = gaussian_noise({2, 2, h, w}, 3);
    GenerateOptions o = five_steps();
    o.keep_step_latents = true;
    const GenerateResult r = generate(model(), prompt, nullptr, noise, o);
    ASSERT_EQ(r.latents.shape, (Shape{2, (h / 2) * (w / 2), 8}));
    EXPECT_EQ(r.latents_unpacked.shape, noise.shape);
    EXPECT_EQ(pack_latents(r.latents_unpacked).data, r.latents.data);
    EXPECT_EQ(r.step_latents.size(), 5u);
    EXPECT_EQ(r.step_latents.back().data, r.latents.data);
    EXPECT_EQ(r.position_ids.data, make_position_ids(5, {h, w}).data);
    EXPECT_DOUBLE_EQ(r.schedule.mu, calculate_shift((h / 2) * (w / 2)));
    EXPECT_EQ(r.step_seconds.size(), 5u);
    EXPECT_LE(rel(r.latents, reference_loop(prompt, nullptr, noise, o)), 1e-6) << h << "x" << w;
  }
}

TEST(Generate, GuidanceWithOtherNegativeLengthAndMasks) {
  // The negative prompt is longer, with padding where the prompt has none and vice versa.
  const TextEmbeddings prompt = text(2, 4, 5, {1, 1, 0, 0, 1, 1, 1, 1});
  const TextEmbeddings negative = text(2, 6, 6, {1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0});
  const Tensor noise = gaussian_noise({2, 2, 6, 4}, 9);
  GenerateOptions o = five_steps(3.0);
  const Tensor want = reference_loop(prompt, &negative, noise, o);
  std::map<std::string, Tensor> runs;
  for (bool batched : {true, false})
    for (bool recompute : {false, true})
      for (bool skip : {true, false}) {
        o.cfg_mode = batched ? CfgMode::kBatched : CfgMode::kTwoPass;
        o.recompute_text = recompute;
        o.forward.skip_padded_text = skip;
        const std::string name = std::string(batched ? "batched" : "two-pass") +
                                 (recompute ? " recompute" : "") + (skip ? "" : " keep-padding");
        runs[name] = generate(model(), prompt, &negative, noise, o).latents;
        EXPECT_LE(rel(runs[name], want), 1e-6) << name;
      }
  // Two passes over cached text are exactly two Model::forward calls (different L: recompute runs two
  // passes).
  EXPECT_EQ(runs["two-pass"].data, runs["two-pass recompute"].data);
  EXPECT_EQ(runs["two-pass"].data, runs["batched recompute"].data);
  // Guidance does something.
  GenerateOptions plain = five_steps();
  EXPECT_GT(rel(generate(model(), prompt, &negative, noise, plain).latents, want), 1e-3);
}

TEST(Generate, GuidanceZeroIgnoresTheNegative) {
  const TextEmbeddings prompt = text(1, 3, 1);
  const TextEmbeddings negative = text(1, 3, 2);
  const Tensor noise = gaussian_noise({1, 2, 4, 4}, 1);
  EXPECT_EQ(generate(model(), prompt, &negative, noise, five_steps()).latents.data,
            generate(model(), prompt, nullptr, noise, five_steps()).latents.data);
}

TEST(Generate, NegativeEqualToPromptCancels) {
  // v_cond - v_uncond = 0, so any guidance gives the unguided latents.
  const TextEmbeddings prompt = text(1, 3, 4, {1, 1, 0});
  const Tensor noise = gaussian_noise({1, 2, 4, 6}, 2);
  GenerateOptions o = five_steps(7.0);
  o.cfg_mode = CfgMode::kTwoPass;
  EXPECT_EQ(generate(model(), prompt, &prompt, noise, o).latents.data,
            generate(model(), prompt, nullptr, noise, five_steps()).latents.data);
}

TEST(Generate, SamplesAreIndependent) {
  const TextEmbeddings prompt = text(2, 4, 7, {1, 1, 1, 0, 1, 1, 1, 1});
  const TextEmbeddings negative = text(2, 2, 8, {1, 0, 1, 1});
  const Tensor noise = gaussian_noise({2, 2, 6, 10}, 4);
  const GenerateOptions o = five_steps(2.0);
  const GenerateResult both = generate(model(), prompt, &negative, noise, o);
  for (int64_t s = 0; s < 2; ++s) {
    const TextEmbeddings p = text_of(prompt, s), n = text_of(negative, s);
    const GenerateResult one = generate(model(), p, &n, sample_of(noise, s), o);
    EXPECT_LE(rel(one.latents, sample_of(both.latents, s)), 1e-6) << s;
  }
}

TEST(Generate, PaddedTokensDoNotMatter) {
  TextEmbeddings prompt = text(1, 5, 3, {1, 1, 1, 0, 0});
  const Tensor noise = gaussian_noise({1, 2, 4, 4}, 5);
  const Tensor a = generate(model(), prompt, nullptr, noise, five_steps()).latents;
  const int64_t row = model().config().num_text_layers * model().config().text_hidden_dim;
  for (int64_t k = 3 * row; k < 5 * row; ++k) prompt.embeds.data[size_t(k)] = 100.0f;
  EXPECT_EQ(generate(model(), prompt, nullptr, noise, five_steps()).latents.data, a.data);
}

TEST(Generate, ScheduleOptionsReachTheLoop) {
  const TextEmbeddings prompt = text(1, 2, 1);
  const Tensor noise = gaussian_noise({1, 2, 4, 4}, 6);
  GenerateOptions o;
  o.schedule.custom_sigmas = {1.0f, 0.7f, 0.3f};
  o.schedule.shift = TimeShift::kLinear;
  o.schedule.mu = 2.0;
  std::vector<StepInfo> seen;
  o.on_step = [&](const StepInfo& s) { seen.push_back(s); };
  const GenerateResult r = generate(model(), prompt, nullptr, noise, o);
  const Schedule want = make_schedule(o.schedule, 4);
  EXPECT_EQ(r.schedule.sigmas, want.sigmas);
  EXPECT_EQ(r.schedule.timesteps, want.timesteps);
  ASSERT_EQ(seen.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(seen[size_t(i)].step, i);
    EXPECT_EQ(seen[size_t(i)].steps, 3);
    EXPECT_EQ(seen[size_t(i)].sigma, want.sigmas[size_t(i)]);
    EXPECT_EQ(seen[size_t(i)].sigma_next, want.sigmas[size_t(i) + 1]);
  }
  EXPECT_LE(rel(r.latents, reference_loop(prompt, nullptr, noise, o)), 1e-6);
}

TEST(Generate, OneStepIsOneEulerStepFromNoise) {
  // sigmas (1, 0): x = noise - v(noise, t = 1).
  const TextEmbeddings prompt = text(1, 2, 2);
  const Tensor noise = gaussian_noise({1, 2, 2, 4}, 7);
  GenerateOptions o;
  o.schedule.steps = 1;
  const GenerateResult r = generate(model(), prompt, nullptr, noise, o);
  ForwardInputs in;
  in.hidden_states = pack_latents(noise);
  in.encoder_hidden_states = prompt.embeds;
  in.timestep = Tensor({1}, {1.0f});
  in.position_ids = make_position_ids(2, {2, 4});
  const Tensor v = model().forward(in);
  for (size_t k = 0; k < v.data.size(); ++k)
    EXPECT_EQ(r.latents.data[k], in.hidden_states.data[k] - v.data[k]);
}

TEST(Generate, Errors) {
  const TextEmbeddings prompt = text(2, 3, 1);
  const Tensor noise = gaussian_noise({2, 2, 4, 4}, 1);
  auto fails = [&](const TextEmbeddings& p, const TextEmbeddings* n, const Tensor& z,
                   const GenerateOptions& o, const std::string& message) {
    EXPECT_THAT([&] { generate(model(), p, n, z, o); }, ::testing::ThrowsMessage<Error>(HasSubstr(message)))
        << message;
  };
  fails(prompt, nullptr, noise, five_steps(1.0), "negative");
  GenerateOptions negative_g = five_steps(-1.0);
  fails(prompt, nullptr, noise, negative_g, "guidance");
  fails(text(1, 3, 1), nullptr, noise, five_steps(), "batch");
  const TextEmbeddings neg1 = text(1, 3, 1);
  fails(prompt, &neg1, noise, five_steps(1.0), "batch");
  fails(prompt, nullptr, gaussian_noise({2, 4, 4, 4}, 1), five_steps(), "noise must be");
  fails(prompt, nullptr, gaussian_noise({2, 2, 5, 4}, 1), five_steps(), "multiples of 2");
  fails(prompt, nullptr, gaussian_noise({2, 2, 16}, 1), five_steps(), "noise must be");
  TextEmbeddings bad_mask = prompt;
  bad_mask.mask = Tensor({2, 4});
  fails(bad_mask, nullptr, noise, five_steps(), "mask");
  TextEmbeddings bad_dim{Tensor({2, 3, 3, 5}), std::nullopt};
  fails(bad_dim, nullptr, noise, five_steps(), "embeddings");
  GenerateOptions no_steps = five_steps();
  no_steps.schedule.steps = 0;
  fails(prompt, nullptr, noise, no_steps, "steps");
}

}  // namespace
}  // namespace krea2
