// Encoding float32 weight rows into a storage type: the one place the quantize command and the random
// quantized models turn floats into stored codes.
#pragma once
#include <cstddef>
#include <cstdint>

#include "krea2/tensor.h"

namespace krea2 {

struct RowEncoding {
  DType dtype = DType::F32;    // F32, F16, BF16, a ggml block format, F8_E4M3 / F8_E5M2, or I8 (convrot)
  float scale = 1.0f;          // fp8: the per-tensor scale (code = encode(w / scale))
  int64_t rotation_group = 0;  // I8: the convrot group G
};

// fp8 scale of a whole tensor from its largest |w|: max / fp8_max, 1 if all zero (ComfyUI's rule).
float fp8_tensor_scale(DType t, float max_abs);

// Encodes n rows of `cols` floats (row stride cols) into out (n * dtype_row_bytes(enc.dtype, cols) bytes),
// rows in parallel. I8 writes one scale per row to row_scales.
void encode_rows(const RowEncoding& enc, const float* x, int64_t n, int64_t cols, std::byte* out,
                 float* row_scales);

}  // namespace krea2
