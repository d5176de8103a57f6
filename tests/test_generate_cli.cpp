// `krea2 generate` end to end: reproduces both sampler fixtures from the files alone, seeded runs, --help,
// and clear errors with a non-zero exit and no output file.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "io/safetensors.h"
#include "krea2/sampler.h"
#include "support/test_util.h"

namespace krea2 {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::map<std::string, Tensor> read_all(const std::string& path) {
  SafetensorsFile f(path);
  std::map<std::string, Tensor> out;
  for (const TensorView& v : f.tensors()) out[v.name] = to_float_tensor(v);
  return out;
}

std::string fixture(const std::string& name) {
  return test::fixture_dir(name);
}

// Runs `krea2 generate <args>`; returns the exit status and fills `output` with stdout + stderr.
int generate(const std::string& args, std::string* output = nullptr) {
  std::string out;
  const int rc = test::run_command(test::cli_path() + " generate " + args, &out);
  if (output) *output = out;
  return rc;
}

void expect_fixture_outputs(const std::string& case_name, const std::string& path) {
  const auto got = read_all(path);
  const auto want = read_all(fixture(case_name) + "/expected.safetensors");
  for (const auto& [name, ref] : want) {
    ASSERT_TRUE(got.count(name)) << name;
    const Tensor& t = got.at(name);
    ASSERT_EQ(t.shape, ref.shape) << name;
    if (name == "sigmas" || name == "timesteps" || name == "position_ids") {
      EXPECT_LE(test::max_abs_diff(t.ptr(), ref.ptr(), size_t(ref.numel())), 1e-6) << name;
    } else {
      EXPECT_LE(test::rel_l2(t.ptr(), ref.ptr(), size_t(ref.numel())), 1e-5) << name;
    }
  }
}

TEST(GenerateCli, ReproducesTurboFixture) {
  test::TempDir tmp;
  const std::string dir = fixture("sample_turbo");
  std::string out;
  ASSERT_EQ(generate("--model " + dir + " --prompt-embeds " + dir + "/inputs.safetensors --noise " + dir +
                         "/inputs.safetensors --turbo --steps 4 --save-steps --output " +
                         tmp.file("out.safetensors"),
                     &out),
            0)
      << out;
  expect_fixture_outputs("sample_turbo", tmp.file("out.safetensors"));
  EXPECT_FALSE(std::filesystem::exists(tmp.file("out.safetensors.tmp")));
  EXPECT_THAT(out, HasSubstr("wrote"));
}

TEST(GenerateCli, ReproducesGuidedFixtureInBothCfgModes) {
  const std::string dir = fixture("sample_base_cfg"), inputs = dir + "/inputs.safetensors";
  for (const char* mode : {"on", "off"}) {
    test::TempDir tmp;
    std::string out;
    ASSERT_EQ(
        generate("--model " + dir + " --prompt-embeds " + inputs + " --negative-embeds " + inputs +
                     " --noise " + inputs + " --guidance 4.5 --steps 6 --save-steps --quiet --batch-cfg " +
                     mode + " --output " + tmp.file("out.safetensors"),
                 &out),
        0)
        << out;
    EXPECT_EQ(out, "");  // --quiet
    expect_fixture_outputs("sample_base_cfg", tmp.file("out.safetensors"));
  }
}

TEST(GenerateCli, SeededNoiseAndPixelSize) {
  test::TempDir tmp;
  const std::string dir = fixture("sample_turbo");
  const std::string base =
      "--model " + dir + " --prompt-embeds " + dir + "/inputs.safetensors --steps 2 --quiet ";
  ASSERT_EQ(generate(base + "--height 48 --width 32 --seed 5 --output " + tmp.file("a.safetensors")), 0);
  ASSERT_EQ(
      generate(base + "--latent-height 6 --latent-width 4 --seed 5 --output " + tmp.file("b.safetensors")),
      0);
  ASSERT_EQ(
      generate(base + "--latent-height 6 --latent-width 4 --seed 6 --output " + tmp.file("c.safetensors")),
      0);
  const auto a = read_all(tmp.file("a.safetensors")), b = read_all(tmp.file("b.safetensors")),
             c = read_all(tmp.file("c.safetensors"));
  EXPECT_EQ(a.at("latents_unpacked").shape, (Shape{1, 4, 6, 4}));
  EXPECT_EQ(a.at("latents").shape, (Shape{1, 6, 16}));
  EXPECT_EQ(a.at("latents").data, b.at("latents").data);
  EXPECT_NE(a.at("latents").data, c.at("latents").data);
  EXPECT_EQ(a.at("sigmas").numel(), 3);
  EXPECT_EQ(a.at("position_ids").shape, (Shape{5 + 6, 3}));
  EXPECT_EQ(SafetensorsFile(tmp.file("a.safetensors")).metadata().at("seed"), "5");
}

TEST(GenerateCli, ScheduleOptions) {
  test::TempDir tmp;
  const std::string dir = fixture("sample_turbo");
  const std::string base = "--model " + dir + " --prompt-embeds " + dir + "/inputs.safetensors --noise " +
                           dir + "/inputs.safetensors --quiet ";
  ASSERT_EQ(
      generate(base + "--sigmas 1,0.6,0.2 --mu 0.8 --shift linear --output " + tmp.file("o.safetensors")), 0);
  ScheduleOptions o;
  o.custom_sigmas = {1.0f, 0.6f, 0.2f};
  o.mu = 0.8;
  o.shift = TimeShift::kLinear;
  EXPECT_EQ(read_all(tmp.file("o.safetensors")).at("sigmas").data, make_schedule(o, 15).sigmas);
}

TEST(GenerateCli, Help) {
  std::string out;
  EXPECT_EQ(generate("--help", &out), 0);
  for (const char* flag : {"--model", "--prompt-embeds", "--negative-embeds", "--height", "--latent-height",
                           "--noise", "--seed", "--steps", "--guidance", "--turbo", "--mu", "--sigmas",
                           "--shift", "--batch-cfg", "--output", "--quiet"}) {
    EXPECT_THAT(out, HasSubstr(flag));
  }
}

TEST(GenerateCli, Errors) {
  test::TempDir tmp;
  const std::string dir = fixture("sample_turbo"), inputs = dir + "/inputs.safetensors";
  const std::string base =
      "--model " + dir + " --prompt-embeds " + inputs + " --output " + tmp.file("o.safetensors");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"--prompt-embeds " + inputs + " --output x --noise " + inputs, "missing --model"},
      {base + " --height 100 --width 64", "multiples of 16"},
      {base + " --latent-height 5 --latent-width 4", "multiples of 2"},
      {base, "--height/--width"},
      {base + " --height 64 --width 64 --latent-height 8 --latent-width 8", "not both"},
      {base + " --noise " + inputs + " --guidance 2", "--negative-embeds"},
      {base + " --noise " + inputs + " --guidance -1", "--guidance"},
      {base + " --noise " + inputs + " --shift cubic", "--shift"},
      {base + " --noise " + inputs + " --sigmas 1,x", "bad sigma"},
      {base + " --noise " + inputs + " --sigmas 1,0.5 --steps 3", "disagrees"},
      {base + " --noise " + inputs + " --batch-cfg maybe", "--batch-cfg"},
      {base + " --noise " + inputs + " --steps 0", "--steps"},
      {base + " --noise " + inputs + " --height 64 --width 64", "differs from the noise"},
      {base + " --noise " + fixture("sample_base_cfg") + "/inputs.safetensors", "noise must be"},
      {base + " --noise " + dir + "/expected.safetensors", "missing tensor 'noise'"},
      {base + " --noise " + inputs + " --frobnicate 1", "unknown option"},
      {"--model " + dir + " --prompt-embeds " + tmp.file("absent.safetensors") + " --noise " + inputs +
           " --output " + tmp.file("o.safetensors"),
       "absent.safetensors"},
  };
  for (const auto& [args, message] : cases) {
    std::string out;
    EXPECT_NE(generate(args, &out), 0) << args;
    EXPECT_THAT(out, HasSubstr(message)) << args;
    EXPECT_THAT(out, HasSubstr("error")) << args;
  }
  EXPECT_FALSE(std::filesystem::exists(tmp.file("o.safetensors")));
  EXPECT_FALSE(std::filesystem::exists(tmp.file("o.safetensors.tmp")));
}

}  // namespace
}  // namespace krea2
