// `krea2 bench` through the CLI on small shapes: the JSON line carries the fields issue 3 asks for with
// values that agree with the analytic FLOP formula and with each other, the GEMM options are applied, and bad
// options fail with a message and a non-zero exit.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "bench/flops.h"
#include "krea2/config.h"
#include "krea2/vae.h"
#include "support/test_util.h"

namespace krea2 {
namespace {

using ::testing::HasSubstr;

// Runs `krea2 bench <args>`; returns the exit status and fills `output` with stdout + stderr.
int bench(const std::string& args, std::string* output) {
  return test::run_command(test::cli_path() + " bench " + args, output);
}

// The last line of `output` that is a JSON object.
nlohmann::json json_line(const std::string& output) {
  std::istringstream lines(output);
  std::string line, last;
  while (std::getline(lines, line))
    if (!line.empty() && line.front() == '{') last = line;
  return nlohmann::json::parse(last);
}

std::string tiny_config() {
  return test::fixture_dir("tiny") + "/transformer/config.json";
}

// The fields every --json line must have, and how they relate.
void expect_summary(const nlohmann::json& j, double flops, double peak) {
  ASSERT_TRUE(j.contains("median_s") && j.contains("flops") && j.contains("gflops") &&
              j.contains("peak_gflops") && j.contains("peak_rss_bytes"))
      << j.dump();
  const double median = j["median_s"];
  EXPECT_GT(median, 0.0);
  EXPECT_DOUBLE_EQ(j["flops"].get<double>(), flops);
  EXPECT_NEAR(j["gflops"].get<double>(), flops * 1e-9 / median, 1e-9 * flops / median);
  EXPECT_DOUBLE_EQ(j["peak_gflops"].get<double>(), peak);
  EXPECT_NEAR(j["percent_of_peak"].get<double>(), 100.0 * j["gflops"].get<double>() / peak, 1e-9 * 100.0);
  EXPECT_GT(j["peak_rss_bytes"].get<int64_t>(), int64_t(1) << 20);
  EXPECT_LE(j["min_s"].get<double>(), median);
  EXPECT_GE(j["max_s"].get<double>(), median);
}

TEST(BenchCli, ForwardJsonOnAnyConfig) {
  std::string out;
  ASSERT_EQ(bench("--config " + tiny_config() +
                      " --layers 1 --image-tokens 12 --text-tokens 5 --batch 2 --reps 2 --warmup 0"
                      " --peak-gflops 100 --json --quiet",
                  &out),
            0)
      << out;
  const nlohmann::json j = json_line(out);
  Config c = Config::from_json_file(tiny_config());
  c.num_layers = 1;
  expect_summary(j, forward_flops(c, 2, 12, 5).total(), 100.0);
  EXPECT_EQ(j["mode"], "forward");
  EXPECT_EQ(j["reps"], 2);
  EXPECT_EQ(j["image_tokens"], 12);
  EXPECT_EQ(j["image_grid"], nlohmann::json({3, 4}));
  EXPECT_EQ(j["config"]["num_layers"], 1);
  EXPECT_EQ(j["weights"], "F32");
  EXPECT_EQ(j["gemm"], "packed");
  EXPECT_FALSE(j.contains("kernel_ceiling_gflops"));  // --peak-gflops: nothing measured, no ceiling either
  // Per-stage times: the text path and each kind of op in the blocks, each with a time >= 0.
  for (const char* stage :
       {"text_path", "text.gemm", "gemm", "attention", "norm_mod_rope", "final_layer", "timestep"}) {
    ASSERT_TRUE(j["stages"].contains(stage)) << stage << " in " << j["stages"].dump();
    EXPECT_GE(j["stages"][stage]["seconds"].get<double>(), 0.0) << stage;
  }
}

TEST(BenchCli, GemmBackendAndBlockingAreApplied) {
  std::string out;
  ASSERT_EQ(bench("--config " + tiny_config() +
                      " --layers 1 --image-tokens 8 --text-tokens 3 --reps 1 --warmup 0 --weights bf16"
                      " --gemm openblas --gemm-blocking 12,32,64 --peak-gflops 50 --json --quiet",
                  &out),
            0)
      << out;
  const nlohmann::json j = json_line(out);
  EXPECT_EQ(j["gemm"], "openblas");
  EXPECT_EQ(j["gemm_blocking"], nlohmann::json({12, 32, 64}));
  EXPECT_EQ(j["weights"], "BF16");
}

TEST(BenchCli, AttentionJsonWithMeasuredPeak) {
  std::string out;
  ASSERT_EQ(
      bench("--only attention --seq 100 --heads 4 --kv-heads 2 --head-dim 16 --reps 2 --json --quiet", &out),
      0)
      << out;
  const nlohmann::json j = json_line(out);
  ASSERT_TRUE(j.contains("peak_gflops"));
  const double peak = j["peak_gflops"];
  EXPECT_GT(peak, 1.0);  // measured by the FMA micro-benchmark
  expect_summary(j, attention_flops(100, 4, 16), peak);
  EXPECT_DOUBLE_EQ(attention_flops(100, 4, 16), 4.0 * 100 * 100 * 16 * 4);
  EXPECT_EQ(j["mode"], "attention");
  EXPECT_GE(j["attention_extra_bytes"].get<int64_t>(), 0);
  // With a measured peak comes the GEMM ceiling, as a share of that peak.
  ASSERT_TRUE(j.contains("kernel_ceiling_gflops") && j.contains("kernel_ceiling_best_gflops") &&
              j.contains("fma_chains_median_gflops"))
      << j.dump();
  const double ceiling = j["kernel_ceiling_gflops"];
  EXPECT_GT(ceiling, 0.0);
  EXPECT_LE(ceiling, j["kernel_ceiling_best_gflops"].get<double>());
  EXPECT_NEAR(j["kernel_ceiling_percent_of_peak"].get<double>(), 100.0 * ceiling / peak, 1e-9 * ceiling);
  EXPECT_EQ(j["kernel_ceiling_rounds"], 10);  // 5 rounds after each timed rep (--reps 2)
}

TEST(BenchCli, TextEncoderJson) {
  std::string out;
  ASSERT_EQ(bench("--model text-encoder --text-config " + test::fixture_dir("text/encoder_tiny") +
                      "/text_encoder/config.json --layers 4 --tokens 20 --batch 2 --reps 2 --warmup 0"
                      " --weights f32 --peak-gflops 100 --json --quiet",
                  &out),
            0)
      << out;
  const nlohmann::json j = json_line(out);
  TextEncoderConfig c =
      TextEncoderConfig::from_json_file(test::fixture_dir("text/encoder_tiny") + "/text_encoder/config.json");
  expect_summary(j, 2 * text_encoder_flops(c, 4, 20).total(), 100.0);
  EXPECT_EQ(j["mode"], "text-encoder");
  EXPECT_EQ(j["layers"], 4);
  EXPECT_EQ(j["weights"], "F32");
  for (const char* stage : {"gemm", "qkv", "attention", "ff_down", "norm_rope"})
    EXPECT_GE(j["stages"][stage]["seconds"].get<double>(), 0.0) << stage;
  EXPECT_NE(bench("--model text-encoder --image-tokens 5 --peak-gflops 10 --quiet", &out), 0);
  EXPECT_THAT(out, HasSubstr("does not apply to --model text-encoder"));
  EXPECT_NE(bench("--model unet --peak-gflops 10 --quiet", &out), 0);
  EXPECT_THAT(out, HasSubstr("--model must be"));
  EXPECT_NE(bench("--tokens 5 --peak-gflops 10 --quiet", &out), 0);
  EXPECT_THAT(out, HasSubstr("needs --model text-encoder"));
}

TEST(BenchCli, VaeJson) {
  std::string out;
  const std::string config = test::fixture_dir("vae/decoder_tiny") + "/vae/config.json";
  ASSERT_EQ(bench("--model vae --vae-config " + config +
                      " --height 48 --width 40 --batch 2 --reps 2 --warmup 0 --weights f32 --peak-gflops 100"
                      " --json --quiet",
                  &out),
            0)
      << out;
  const nlohmann::json j = json_line(out);
  expect_summary(j, 2 * vae_decode_flops(VaeConfig::from_json_file(config), 6, 5), 100.0);
  EXPECT_EQ(j["mode"], "vae");
  EXPECT_EQ(j["latent_height"], 6);
  EXPECT_EQ(j["latent_width"], 5);
  EXPECT_EQ(j["weights"], "F32");
  for (const char* stage : {"conv", "upsample", "conv1x1", "attention", "attention_proj", "norm", "convs"})
    EXPECT_GE(j["stages"][stage]["seconds"].get<double>(), 0.0) << stage;
  EXPECT_NE(bench("--model vae --height 30 --peak-gflops 10 --quiet", &out), 0);
  EXPECT_THAT(out, HasSubstr("multiples of 8"));
  EXPECT_NE(bench("--model vae --layers 2 --peak-gflops 10 --quiet", &out), 0);
  EXPECT_THAT(out, HasSubstr("does not apply to --model vae"));
  EXPECT_NE(bench("--height 64 --peak-gflops 10 --quiet", &out), 0);
  EXPECT_THAT(out, HasSubstr("needs --model vae"));
}

TEST(BenchCli, BadOptionsFailClearly) {
  const std::string small = " --config " + tiny_config() + " --layers 1 --image-tokens 4 --text-tokens 2";
  const std::pair<std::string, std::string> cases[] = {
      {small + " --gemm mkl", "--gemm must be 'packed' or 'openblas', found 'mkl'"},
      {small + " --gemm-blocking 1,2", "--gemm-blocking must be three positive integers"},
      {small + " --gemm-blocking 6,0,16", "--gemm-blocking must be three positive integers"},
      {small + " --weights f64",
       "--weights must be f32, bf16, f16 or a quantization recipe: unknown quantization type 'f64'"},
      {small + " --seq 10", "--seq"},
      {" --only attention", "--only attention needs --seq"},
      {" --only attention --seq 10 --gemm packed", "--gemm"},
      {" --only attention --seq 10 --heads 6 --kv-heads 4", "must be divisible"},
  };
  for (const auto& [args, message] : cases) {
    SCOPED_TRACE(args);
    std::string out;
    EXPECT_NE(bench(args + " --peak-gflops 10 --quiet", &out), 0);
    EXPECT_THAT(out, HasSubstr(message));
  }
}

}  // namespace
}  // namespace krea2

namespace krea2 {
namespace {

// --compute: the mode and its kernel in the JSON, the error for an unknown mode, and (without
// --peak-gflops) every unit's peak with the one in use named.
TEST(BenchCli, ComputeModes) {
  for (const char* mode : {"bf16", "int8"}) {
    std::string out;
    ASSERT_EQ(bench("--config " + tiny_config() +
                        " --layers 1 --image-tokens 12 --text-tokens 5 --reps 1 --warmup 0 --json --quiet"
                        " --compute " +
                        mode + (mode == std::string("bf16") ? " --peak-gflops 100" : ""),
                    &out),
              0)
        << out;
    const nlohmann::json j = json_line(out);
    EXPECT_EQ(j["compute"], mode);
    EXPECT_THAT(j["gemm_kernel"].get<std::string>(),
                HasSubstr(mode == std::string("int8") ? "int8" : "bf16"));
    if (mode == std::string("bf16")) {
      EXPECT_FALSE(j.contains("peaks"));  // --peak-gflops measures nothing
      continue;
    }
    ASSERT_TRUE(j.contains("peaks")) << j.dump();
    EXPECT_TRUE(j["peaks"].contains("fp32_avx2"));
    for (const auto& [unit, peak] : j["peaks"].items()) EXPECT_GT(peak.get<double>(), 0.0) << unit;
    EXPECT_FALSE(j["peak_unit"].get<std::string>().empty());
  }
  std::string out;
  EXPECT_NE(bench("--config " + tiny_config() + " --compute fp8 --peak-gflops 100 --json --quiet", &out), 0);
  EXPECT_THAT(out, HasSubstr("--compute must be f32, bf16 or int8, found 'fp8'"));
}

}  // namespace
}  // namespace krea2
