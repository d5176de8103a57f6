// Validates the float64 reference forward (tests/support/reference_forward) against the upstream fixtures, so
// that test_general_configs can trust it on configurations the fixtures do not cover.
#include <gtest/gtest.h>

#include <map>
#include <sstream>
#include <string>

#include "io/safetensors.h"
#include "krea2/model.h"
#include "support/reference_forward.h"
#include "support/test_util.h"

namespace krea2 {
namespace {

// case.json tolerances (identical for every case).
constexpr double kRelL2 = 1e-5;
constexpr double kMaxAbsOverMaxRef = 1e-4;

ForwardInputs load_inputs(const std::string& dir) {
  SafetensorsFile f(dir + "/inputs.safetensors");
  auto get = [&](const char* name) {
    const TensorView* v = f.find(name);
    if (!v) throw Error(dir + ": inputs.safetensors lacks " + name);
    return to_float_tensor(*v);
  };
  ForwardInputs in;
  in.hidden_states = get("hidden_states");
  in.encoder_hidden_states = get("encoder_hidden_states");
  in.timestep = get("timestep");
  in.position_ids = get("position_ids");
  if (f.find("encoder_attention_mask")) in.encoder_attention_mask = get("encoder_attention_mask");
  return in;
}

void expect_close(const std::string& what, const Tensor& got, const TensorView& expected_view) {
  const Tensor ref = to_float_tensor(expected_view);
  ASSERT_EQ(got.shape, ref.shape) << what;
  const size_t n = ref.data.size();
  const double rel = test::rel_l2(got.ptr(), ref.ptr(), n);
  const double mad = test::max_abs_diff(got.ptr(), ref.ptr(), n);
  const double mref = test::max_abs(ref.ptr(), n);
  // Kept in the XML report (--gtest_output=xml): how far inside the tolerance the reference sits.
  ::testing::Test::RecordProperty(what + ".rel_l2", (std::ostringstream() << rel).str());
  EXPECT_LE(rel, kRelL2) << what;
  EXPECT_LE(mad, kMaxAbsOverMaxRef * mref) << what << " (max |ref| " << mref << ")";
}

class ReferenceFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(ReferenceFixture, SampleMatchesUpstream) {
  const std::string dir = test::fixture_dir(GetParam());
  const Model model = Model::load(dir);
  const ForwardInputs in = load_inputs(dir);
  const Tensor got = test::reference_forward(model, in);

  SafetensorsFile expected(dir + "/expected.safetensors");
  const TensorView* sample = expected.find("sample");
  ASSERT_NE(sample, nullptr);
  expect_close("sample", got, *sample);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ReferenceFixture,
                         ::testing::Values("tiny", "small_nomask", "small_masked_batch", "small_sharded_bf16",
                                           "small_lora"),
                         [](const auto& info) { return info.param; });

// The fixtures with a trace: every intermediate stage matches as well (padded text rows included:
// upstream computes them like any other row, and so does the reference).
class ReferenceTrace : public ::testing::TestWithParam<std::string> {};

TEST_P(ReferenceTrace, EveryStageMatchesUpstream) {
  const std::string dir = test::fixture_dir(GetParam());
  const Model model = Model::load(dir);
  std::map<std::string, Tensor> trace;
  test::reference_forward(model, load_inputs(dir), &trace);
  SafetensorsFile expected(dir + "/trace.safetensors");
  ASSERT_FALSE(expected.tensors().empty());
  for (const TensorView& v : expected.tensors()) {
    auto it = trace.find(v.name);
    ASSERT_NE(it, trace.end()) << "reference trace lacks " << v.name;
    expect_close(v.name, it->second, v);
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ReferenceTrace, ::testing::Values("tiny", "small_masked_batch"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace krea2
