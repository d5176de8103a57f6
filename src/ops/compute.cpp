#include "krea2/compute.h"

namespace krea2 {

const char* compute_name(Compute c) {
  switch (c) {
    case Compute::kBf16:
      return "bf16";
    case Compute::kInt8:
      return "int8";
    case Compute::kF32:
      break;
  }
  return "f32";
}

std::optional<Compute> parse_compute(std::string_view name) {
  for (Compute c : kComputeModes)
    if (name == compute_name(c)) return c;
  return std::nullopt;
}

}  // namespace krea2
