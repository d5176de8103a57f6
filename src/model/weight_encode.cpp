#include "model/weight_encode.h"

#include "krea2/error.h"
#include "tensor/quantize.h"

namespace krea2 {

float fp8_tensor_scale(DType t, float max_abs) {
  const float fp8_max = t == DType::F8_E5M2 ? 57344.0f : 448.0f;
  return max_abs > 0 ? max_abs / fp8_max : 1.0f;
}

void encode_rows(const RowEncoding& enc, const float* x, int64_t n, int64_t cols, std::byte* out,
                 float* row_scales) {
  const int64_t row_bytes = dtype_row_bytes(enc.dtype, cols);
  if (row_bytes < 0)
    throw Error("cannot store rows of " + std::to_string(cols) + " values as " +
                std::string(dtype_name(enc.dtype)));
  const bool fp8 = enc.dtype == DType::F8_E4M3 || enc.dtype == DType::F8_E5M2;
  if (enc.dtype == DType::I8 && enc.rotation_group <= 0)
    throw Error("I8 weights are stored with convrot only");
  if (!fp8 && enc.dtype != DType::I8 && !dtype_is_quantizable(enc.dtype))
    throw Error("cannot quantize to " + std::string(dtype_name(enc.dtype)));
#pragma omp parallel for schedule(dynamic, 4) if (n * cols > (1 << 16))
  for (int64_t r = 0; r < n; ++r) {
    const float* row = x + r * cols;
    std::byte* dst = out + r * row_bytes;
    if (fp8) {
      auto* codes = reinterpret_cast<uint8_t*>(dst);
      for (int64_t i = 0; i < cols; ++i)
        codes[i] = enc.dtype == DType::F8_E4M3 ? f32_to_f8_e4m3(row[i] / enc.scale)
                                               : f32_to_f8_e5m2(row[i] / enc.scale);
    } else if (enc.dtype == DType::I8) {
      row_scales[r] =
          quantize_int8_convrot_row(row, cols, enc.rotation_group, reinterpret_cast<int8_t*>(dst));
    } else {
      quantize_row(enc.dtype, row, cols, dst);
    }
  }
}

}  // namespace krea2
