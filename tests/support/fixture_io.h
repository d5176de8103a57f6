// Reading upstream fixture cases: forward inputs, tolerances, and comparing an output with its reference.
#pragma once
#include <string>

#include "krea2/model.h"
#include "krea2/tensor.h"

namespace krea2::test {

struct Tolerance {
  double rel_l2 = 0, max_abs_over_max_ref = 0;
};

// case.json "tolerance" (or another key of the same layout) of a case folder.
Tolerance read_tolerance_file(const std::string& case_json, const std::string& key = "tolerance");
// The forward inputs of an inputs.safetensors under diffusers' argument names.
ForwardInputs read_forward_inputs(const std::string& path);
// Random forward inputs for `config`: pipeline positions (text at 0, image on a 1 x N grid), t in [0, 1].
ForwardInputs random_inputs(const Config& config, int64_t batch, int64_t image_tokens, int64_t text_tokens,
                            uint64_t seed);
// EXPECTs rel L2 and max-abs ratio of `got` against `ref` within `tol`.
void expect_close(const Tensor& got, const TensorView& ref, const Tolerance& tol, const std::string& what);

}  // namespace krea2::test
