// quantize_row: argument checks and the plain float conversions; the block formats live in
// quantize_legacy.cpp and quantize_k.cpp.
#include <cstring>
#include <string>

#include "krea2/error.h"
#include "tensor/convert.h"
#include "tensor/quantize.h"
#include "tensor/quantize_internal.h"

namespace krea2 {

bool dtype_is_quantizable(DType t) {
  switch (t) {
    case DType::F32:
    case DType::F16:
    case DType::BF16:
    case DType::Q8_0:
    case DType::Q4_0:
    case DType::Q4_1:
    case DType::Q5_0:
    case DType::Q5_1:
    case DType::Q2_K:
    case DType::Q3_K:
    case DType::Q4_K:
    case DType::Q5_K:
    case DType::Q6_K:
      return true;
    default:
      return false;
  }
}

void quantize_row(DType t, const float* x, int64_t n, void* out) {
  if (!dtype_is_quantizable(t)) throw Error("quantize_row: cannot quantize to " + std::string(dtype_name(t)));
  if (dtype_row_bytes(t, n) < 0)
    throw Error("quantize_row: " + std::to_string(n) + " elements is not a whole number of " +
                std::string(dtype_name(t)) + " blocks (" + std::to_string(dtype_block_elements(t)) + ")");
  auto* o = static_cast<uint8_t*>(out);
  switch (t) {
    case DType::F32:
      std::memcpy(o, x, size_t(n) * 4);
      return;
    case DType::F16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = f32_to_f16(x[i]);
        std::memcpy(o + 2 * i, &h, 2);
      }
      return;
    case DType::BF16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = f32_to_bf16(x[i]);
        std::memcpy(o + 2 * i, &h, 2);
      }
      return;
    case DType::Q8_0:
    case DType::Q4_0:
    case DType::Q4_1:
    case DType::Q5_0:
    case DType::Q5_1:
      return quantize_legacy_blocks(t, x, n / dtype_block_elements(t), o);
    default:
      return quantize_k_blocks(t, x, n / dtype_block_elements(t), o);
  }
}

}  // namespace krea2
