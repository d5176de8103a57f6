// ComfyUI's per-layer quantization description: the `<layer>.comfy_quant` U8 tensor holding JSON such as
// {"format": "float8_e4m3fn"} or {"format": "int8_tensorwise", "convrot": true, "convrot_groupsize": 16}.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "krea2/tensor.h"

namespace krea2 {

struct ComfyQuant {
  std::string format;
  DType dtype = DType::F32;    // the storage type the format implies
  int64_t rotation_group = 0;  // convrot group size, 0 = no rotation
};

// Parses the JSON bytes of `t` (any shape, U8 or I8). Throws krea2::Error naming `source` and the tensor for
// invalid JSON, a missing or unsupported format, or a bad group size.
ComfyQuant parse_comfy_quant(const TensorView& t, const std::string& source);

}  // namespace krea2
