// The whole forward against every upstream fixture: `sample` at the case.json tolerances, the per-stage
// traces where present, the bf16-activation reference where present, and the same through the krea2 CLI.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "krea2/model.h"
#include "support/fixture_io.h"
#include "support/test_util.h"

namespace krea2 {
namespace {

using test::fixture_dir;

using test::expect_close;
using test::Tolerance;

Tolerance read_tolerance(const std::string& name) {
  return test::read_tolerance_file(fixture_dir(name) + "/case.json");
}

ForwardInputs read_inputs(const std::string& path) {
  return test::read_forward_inputs(path);
}

class FixtureCase : public ::testing::TestWithParam<std::string> {};

TEST_P(FixtureCase, SampleMatchesUpstream) {
  const std::string dir = fixture_dir(GetParam());
  Model model = Model::load(dir);
  ForwardInputs in = read_inputs(dir + "/inputs.safetensors");
  SafetensorsFile expected(dir + "/expected.safetensors");
  const Tolerance tol = read_tolerance(GetParam());
  for (bool skip : {true, false}) {
    ForwardOptions options;
    options.skip_padded_text = skip;
    expect_close(model.forward(in, options), *expected.find("sample"), tol,
                 GetParam() + (skip ? " (padding dropped)" : " (padding kept)"));
  }
}

class TracedFixtureCase : public ::testing::TestWithParam<std::string> {};

TEST_P(TracedFixtureCase, TraceMatchesUpstream) {
  const std::string dir = fixture_dir(GetParam());
  ASSERT_TRUE(std::filesystem::exists(dir + "/trace.safetensors"));
  Model model = Model::load(dir);
  ForwardInputs in = read_inputs(dir + "/inputs.safetensors");
  std::map<std::string, Tensor> trace;
  ForwardOptions options;
  options.skip_padded_text = false;  // the trace holds padded rows too
  options.trace = &trace;
  model.forward(in, options);
  SafetensorsFile expected(dir + "/trace.safetensors");
  const Tolerance tol = read_tolerance(GetParam());
  ASSERT_FALSE(expected.tensors().empty());
  for (const TensorView& ref : expected.tensors()) {
    ASSERT_TRUE(trace.count(ref.name)) << "stage not traced: " << ref.name;
    expect_close(trace[ref.name], ref, tol, GetParam() + " stage " + ref.name);
  }
}

TEST_P(FixtureCase, CliForwardMatchesUpstream) {
  const std::string dir = fixture_dir(GetParam());
  test::TempDir tmp;
  const std::string out = tmp.file("out.safetensors");
  std::string log;
  ASSERT_EQ(test::run_command(test::cli_path() + " forward --quiet --model " + dir + " --inputs " + dir +
                                  "/inputs.safetensors --output " + out,
                              &log),
            0)
      << log;
  SafetensorsFile got(out), expected(dir + "/expected.safetensors");
  ASSERT_NE(got.find("sample"), nullptr);
  expect_close(to_float_tensor(*got.find("sample")), *expected.find("sample"), read_tolerance(GetParam()),
               GetParam() + " via CLI");
}

INSTANTIATE_TEST_SUITE_P(Upstream, FixtureCase,
                         ::testing::Values("tiny", "small_nomask", "small_masked_batch", "small_sharded_bf16",
                                           "small_lora"));
// The cases that ship per-stage traces.
INSTANTIATE_TEST_SUITE_P(Upstream, TracedFixtureCase, ::testing::Values("tiny", "small_masked_batch"));

// position_ids may come as I64 (as torch builds them): same result, through the CLI.
TEST(FixtureInputs, IntegerPositionIdsThroughCli) {
  const std::string dir = fixture_dir("small_masked_batch");
  SafetensorsFile original(dir + "/inputs.safetensors");
  Tensor pos = to_float_tensor(*original.find("position_ids"));
  std::vector<int64_t> ids(pos.data.begin(), pos.data.end());
  std::vector<TensorToWrite> tensors;
  for (const TensorView& t : original.tensors())
    if (t.name != "position_ids") tensors.push_back({t.name, t.dtype, t.shape, t.data});
  tensors.push_back({"position_ids", DType::I64, pos.shape, ids.data()});
  test::TempDir tmp;
  write_safetensors(tmp.file("inputs.safetensors"), tensors);
  std::string log;
  ASSERT_EQ(test::run_command(test::cli_path() + " forward --quiet --model " + dir + " --inputs " +
                                  tmp.file("inputs.safetensors") + " --output " + tmp.file("out.safetensors"),
                              &log),
            0)
      << log;
  SafetensorsFile got(tmp.file("out.safetensors")), expected(dir + "/expected.safetensors");
  expect_close(to_float_tensor(*got.find("sample")), *expected.find("sample"),
               read_tolerance("small_masked_batch"), "I64 position ids");
}

// float32 math on bf16 weights vs diffusers' bf16-activation run: within the case's own bf16 tolerance.
TEST(FixtureBf16, NearTorchBf16Activations) {
  const std::string dir = fixture_dir("small_sharded_bf16");
  Model model = Model::load(dir);
  Tensor got = model.forward(read_inputs(dir + "/inputs.safetensors"));
  SafetensorsFile expected(dir + "/expected.safetensors");
  Tensor ref = to_float_tensor(*expected.find("sample_torch_bf16"));
  std::ifstream f(dir + "/case.json");
  const double tol = nlohmann::json::parse(f)["tolerance_vs_sample_torch_bf16"]["rel_l2"].get<double>();
  EXPECT_LE(test::rel_l2(got.ptr(), ref.ptr(), ref.data.size()), tol);
}

// Bf16 weights stay bf16 in memory (used in place from the mapping), norms stay F32.
TEST(FixtureBf16, WeightsKeptInStoredDtype) {
  Model model = Model::load(fixture_dir("small_sharded_bf16"));
  auto bytes = model.bytes_per_dtype();
  EXPECT_GT(bytes[DType::BF16], 0);
  for (const auto& p : model.parameters()) {
    const bool matrix = p.shape.size() == 2 && p.name.find("table") == std::string::npos &&
                        p.name.find("projector") == std::string::npos;
    if (matrix) {
      EXPECT_EQ(p.dtype, DType::BF16) << p.name;
    }
  }
}

}  // namespace
}  // namespace krea2
