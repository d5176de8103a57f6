#include "support/fixture_io.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "support/test_util.h"

namespace krea2::test {

Tolerance read_tolerance_file(const std::string& case_json, const std::string& key) {
  std::ifstream f(case_json);
  auto j = nlohmann::json::parse(f);
  return {j[key]["rel_l2"].get<double>(), j[key].value("max_abs_over_max_ref", 1e30)};
}

ForwardInputs read_forward_inputs(const std::string& path) {
  SafetensorsFile f(path);
  ForwardInputs in;
  in.hidden_states = to_float_tensor(*f.find("hidden_states"));
  in.encoder_hidden_states = to_float_tensor(*f.find("encoder_hidden_states"));
  in.timestep = to_float_tensor(*f.find("timestep"));
  in.position_ids = to_float_tensor(*f.find("position_ids"));
  if (const TensorView* m = f.find("encoder_attention_mask")) in.encoder_attention_mask = to_float_tensor(*m);
  return in;
}

void expect_close(const Tensor& got, const TensorView& ref_view, const Tolerance& tol,
                  const std::string& what) {
  Tensor ref = to_float_tensor(ref_view);
  ASSERT_EQ(got.shape, ref.shape) << what;
  const size_t n = ref.data.size();
  const double rel = rel_l2(got.ptr(), ref.ptr(), n);
  const double max_ratio = max_abs_diff(got.ptr(), ref.ptr(), n) / max_abs(ref.ptr(), n);
  EXPECT_LE(rel, tol.rel_l2) << what;
  EXPECT_LE(max_ratio, tol.max_abs_over_max_ref) << what;
}

}  // namespace krea2::test

namespace krea2::test {

ForwardInputs random_inputs(const Config& c, int64_t batch, int64_t image_tokens, int64_t text_tokens,
                            uint64_t seed) {
  const int64_t B = batch, N = image_tokens, L = text_tokens;
  ForwardInputs in;
  in.hidden_states = Tensor({B, N, c.in_channels}, random_floats(size_t(B * N * c.in_channels), seed + 1));
  in.encoder_hidden_states =
      Tensor({B, L, c.num_text_layers, c.text_hidden_dim},
             random_floats(size_t(B * L * c.num_text_layers * c.text_hidden_dim), seed + 2));
  in.timestep = Tensor({B}, random_floats(size_t(B), seed + 3));
  for (float& t : in.timestep.data) t = 0.5f * (t + 1.0f);
  in.position_ids = Tensor({L + N, 3});
  for (int64_t i = 0; i < N; ++i) in.position_ids.data[size_t((L + i) * 3 + 2)] = static_cast<float>(i);
  return in;
}

}  // namespace krea2::test
