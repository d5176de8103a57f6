// The flow-matching schedule: upstream's sigmas/timesteps for both sampler fixtures, and general properties
// (other step counts, mu values, the linear shift, custom sigmas) against values from a float32 emulation of
// the numpy code of FlowMatchEulerDiscreteScheduler.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "krea2/error.h"
#include "krea2/sampler.h"
#include "support/test_util.h"

namespace krea2 {
namespace {

using ::testing::HasSubstr;

Tensor fixture_tensor(const std::string& case_name, const std::string& file, const std::string& name) {
  SafetensorsFile f(test::fixture_dir(case_name) + "/" + file);
  const TensorView* v = f.find(name);
  if (!v) throw Error("fixture tensor " + name + " missing");
  return to_float_tensor(*v);
}

nlohmann::json case_json(const std::string& case_name) {
  std::ifstream in(test::fixture_dir(case_name) + "/case.json");
  return nlohmann::json::parse(in);
}

// The schedule options the pipeline uses for a fixture case.
ScheduleOptions fixture_options(const nlohmann::json& c) {
  ScheduleOptions o;
  o.steps = c["num_inference_steps"].get<int>();
  o.turbo = c["is_distilled"].get<bool>();
  return o;
}

class FixtureSchedule : public ::testing::TestWithParam<std::string> {};

TEST_P(FixtureSchedule, MatchesUpstream) {
  const auto c = case_json(GetParam());
  const LatentSize size{c["latent_height"].get<int64_t>(), c["latent_width"].get<int64_t>()};
  const Schedule s = make_schedule(fixture_options(c), size.tokens());
  EXPECT_DOUBLE_EQ(s.mu, c["mu"].get<double>());
  const Tensor sigmas = fixture_tensor(GetParam(), "expected.safetensors", "sigmas");
  const Tensor timesteps = fixture_tensor(GetParam(), "expected.safetensors", "timesteps");
  ASSERT_EQ(s.sigmas.size(), size_t(sigmas.numel()));
  ASSERT_EQ(s.timesteps.size(), size_t(timesteps.numel()));
  for (size_t i = 0; i < s.sigmas.size(); ++i) EXPECT_NEAR(s.sigmas[i], sigmas.data[i], 1e-6) << i;
  for (size_t i = 0; i < s.timesteps.size(); ++i) EXPECT_NEAR(s.timesteps[i], timesteps.data[i], 1e-6) << i;
  // Bit-exact in practice: every operation is the float32 operation numpy performs.
  EXPECT_EQ(s.sigmas, sigmas.data);
  EXPECT_EQ(s.timesteps, timesteps.data);
}

INSTANTIATE_TEST_SUITE_P(Sampler, FixtureSchedule, ::testing::Values("sample_base_cfg", "sample_turbo"));

TEST(Schedule, CalculateShift) {
  EXPECT_DOUBLE_EQ(calculate_shift(24), 0.4754557291666667);
  EXPECT_NEAR(calculate_shift(256), 0.5, 1e-15);
  EXPECT_NEAR(calculate_shift(6400), 1.15, 1e-15);
  EXPECT_DOUBLE_EQ(calculate_shift(4096), 0.90625);
  // Not clamped beyond the configured range, as upstream.
  EXPECT_GT(calculate_shift(16384), 1.15);
}

void expect_schedule(const Schedule& s, const std::vector<float>& want) {
  ASSERT_EQ(s.sigmas.size(), want.size() + 1);
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_FLOAT_EQ(s.sigmas[i], want[i]) << i;
    EXPECT_NEAR(s.sigmas[i], want[i], 1e-7) << i;
    EXPECT_EQ(s.timesteps[i], s.sigmas[i] * 1000.0f);
  }
  EXPECT_EQ(s.sigmas.back(), 0.0f);
}

TEST(Schedule, FiveStepsTurbo) {
  ScheduleOptions o;
  o.steps = 5;
  o.turbo = true;
  const Schedule s = make_schedule(o, 4096);  // turbo ignores the token count
  EXPECT_DOUBLE_EQ(s.mu, 1.15);
  expect_schedule(s,
                  {1.0f, 0.9266473650932312f, 0.8257016539573669f, 0.677986741065979f, 0.44119974970817566f});
}

TEST(Schedule, FiveStepsBaseDependsOnTokens) {
  ScheduleOptions o;
  o.steps = 5;
  const Schedule s = make_schedule(o, 4096);
  EXPECT_DOUBLE_EQ(s.mu, 0.90625);
  expect_schedule(s,
                  {1.0f, 0.9082576632499695f, 0.7878000736236572f, 0.622643768787384f, 0.3822416365146637f});
  // More tokens -> larger mu -> sigmas stay higher for longer.
  const Schedule small = make_schedule(o, 256);
  for (int i = 1; i < 5; ++i) EXPECT_LT(small.sigmas[size_t(i)], s.sigmas[size_t(i)]);
}

TEST(Schedule, Properties) {
  for (int steps : {1, 2, 3, 5, 28, 50}) {
    for (bool turbo : {false, true}) {
      ScheduleOptions o;
      o.steps = steps;
      o.turbo = turbo;
      const Schedule s = make_schedule(o, 15);
      ASSERT_EQ(s.steps(), steps);
      ASSERT_EQ(s.sigmas.size(), size_t(steps) + 1);
      EXPECT_EQ(s.sigmas.front(), 1.0f);
      EXPECT_EQ(s.sigmas.back(), 0.0f);
      for (int i = 0; i < steps; ++i) {
        EXPECT_GT(s.sigmas[size_t(i)], s.sigmas[size_t(i) + 1]);
        EXPECT_EQ(s.timesteps[size_t(i)], s.sigmas[size_t(i)] * 1000.0f);
        EXPECT_EQ(s.transformer_timestep(i), s.timesteps[size_t(i)] / 1000.0f);
        EXPECT_NEAR(s.transformer_timestep(i), s.sigmas[size_t(i)], 1e-7);
      }
    }
  }
}

TEST(Schedule, CustomMuOverridesTurbo) {
  ScheduleOptions o;
  o.steps = 4;
  o.turbo = true;
  o.mu = 0.0;  // e^0 = 1: the exponential shift becomes the identity
  const Schedule s = make_schedule(o, 24);
  expect_schedule(s, {1.0f, 0.75f, 0.5f, 0.25f});
}

TEST(Schedule, LinearShift) {
  ScheduleOptions o;
  o.steps = 5;
  o.mu = 1.5;
  o.shift = TimeShift::kLinear;
  expect_schedule(make_schedule(o, 24),
                  {1.0f, 0.8571428656578064f, 0.6923077702522278f, 0.5f, 0.27272728085517883f});
  o.mu = 0.0;
  EXPECT_THROW(make_schedule(o, 24), Error);
}

TEST(Schedule, NoShift) {
  ScheduleOptions o;
  o.steps = 5;
  o.shift = TimeShift::kNone;
  expect_schedule(make_schedule(o, 24), {1.0f, 0.8f, 0.6f, 0.4f, 0.2f});
}

TEST(Schedule, CustomSigmasAreShifted) {
  ScheduleOptions o;
  o.custom_sigmas = parse_sigmas("1, 0.8,0.5 ,0.25");
  o.mu = 0.7;
  o.steps = 99;  // ignored: the list sets the step count
  const Schedule s = make_schedule(o, 24);
  EXPECT_EQ(s.steps(), 4);
  expect_schedule(s, {1.0f, 0.8895639181137085f, 0.6681877970695496f, 0.4016457796096802f});
}

TEST(Schedule, ParseSigmas) {
  EXPECT_EQ(parse_sigmas("1"), std::vector<float>{1.0f});
  EXPECT_EQ(parse_sigmas("1,0.5"), (std::vector<float>{1.0f, 0.5f}));
  EXPECT_EQ(parse_sigmas("0.1")[0], static_cast<float>(0.1));
  for (const char* bad : {"", "1,", ",1", "1,,0.5", "1;0.5", "abc", "0.5x"}) {
    EXPECT_THROW(parse_sigmas(bad), Error) << bad;
  }
}

TEST(Schedule, Errors) {
  ScheduleOptions o;
  o.steps = 0;
  EXPECT_THAT([&] { make_schedule(o, 24); }, ::testing::ThrowsMessage<Error>(HasSubstr("steps")));
  o.steps = 4;
  for (float bad : {0.0f, -0.5f, 1.5f, NAN}) {
    o.custom_sigmas = {1.0f, bad};
    EXPECT_THROW(make_schedule(o, 24), Error) << bad;
  }
  o.custom_sigmas.clear();
  o.mu = INFINITY;
  EXPECT_THROW(make_schedule(o, 24), Error);
}

}  // namespace
}  // namespace krea2
