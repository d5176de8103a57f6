// Compute modes of the matrix products (`--compute`): what the linear layers multiply in. Norms, softmax,
// rope, attention and residuals are float32 in every mode.
#pragma once
#include <optional>
#include <string_view>

namespace krea2 {

enum class Compute : int {
  kF32 = 0,   // float32 products (the exact upstream forward)
  kBf16 = 1,  // bf16 inputs (activations rounded when packed, weights rounded or used as stored), f32 sums
  kInt8 = 2,  // int8 weights (a scale per output row) times int8 activations (a scale per row), int32 sums
};
inline constexpr Compute kComputeModes[] = {Compute::kF32, Compute::kBf16, Compute::kInt8};

const char* compute_name(Compute c);                          // "f32", "bf16", "int8"
std::optional<Compute> parse_compute(std::string_view name);  // the inverse; nullopt for anything else

}  // namespace krea2
