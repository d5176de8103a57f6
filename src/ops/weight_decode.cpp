#include "ops/weight_decode.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "tensor/decode.h"
#include "tensor/hadamard_decode.h"
#include "tensor/quant_blocks.h"

namespace krea2 {

namespace {

// log4(g) if g is a power of 4 (>= 4), else -1.
int log4(int64_t g) {
  int k = 0;
  for (; g > 1 && g % 4 == 0; g /= 4) ++k;
  return g == 1 && k > 0 ? k : -1;
}

// Dequantizes whole groups [g0, g0 + count) of a convrot row: w = (H q) * (s / sqrt(G)). s / sqrt(G) = s 2^-k
// is exact and so is the integer sum, so the one rounding of the product equals a float64 evaluation rounded
// to float32.
void decode_rotated_groups(const WeightMatrix& w, int64_t row, int64_t g0, int64_t count, float* out,
                           bool reference) {
  const int64_t G = w.rotation_group;
  const auto* q = static_cast<const int8_t*>(w.data) + row * w.cols + g0 * G;
  const float s = (w.row_scales ? w.row_scales[row] : 1.0f) * w.scale;
  const float factor = s / float(int64_t(1) << log4(G));  // / sqrt(G) = / 2^k
  (reference ? decode_hadamard_i8_reference : decode_hadamard_i8)(q, G, count, factor, out);
}

void apply_scales(const WeightMatrix& w, int64_t row, int64_t n, float* out) {
  if (w.scale != 1.0f)
    for (int64_t i = 0; i < n; ++i) out[i] *= w.scale;
  if (w.row_scales) {
    const float s = w.row_scales[row];
    for (int64_t i = 0; i < n; ++i) out[i] *= s;
  }
}

}  // namespace

void check_weight_matrix(const WeightMatrix& w, const char* what) {
  auto fail = [&](const std::string& why) {
    throw std::invalid_argument(std::string(what) + ": weight (" + std::to_string(w.rows) + ", " +
                                std::to_string(w.cols) + ") " + std::string(dtype_name(w.dtype)) + ": " +
                                why);
  };
  if (!dtype_is_decodable(w.dtype)) fail("the kernels cannot read this dtype");
  if (w.cols % dtype_block_elements(w.dtype) != 0)
    fail("rows are not a whole number of " + std::to_string(dtype_block_elements(w.dtype)) +
         "-element blocks");
  if (w.rotation_group != 0) {
    if (w.dtype != DType::I8) fail("a Hadamard rotation is only defined for I8 weights");
    if (log4(w.rotation_group) < 0 || w.cols % w.rotation_group != 0)
      fail("rotation group " + std::to_string(w.rotation_group) + " must be a power of 4 dividing the row");
  }
}

void decode_weight_segment(const WeightMatrix& w, int64_t row, int64_t k0, int64_t n, float* out) {
  const int64_t unit = w.rotation_group ? w.rotation_group : dtype_block_elements(w.dtype);
  if (k0 % unit != 0 || (n % unit != 0 && k0 + n != w.cols)) {
    // Misaligned: decode the whole units covering the segment, keep the part asked for.
    const int64_t a = k0 / unit * unit, b = std::min(w.cols, (k0 + n + unit - 1) / unit * unit);
    std::vector<float> tmp(size_t(b - a));
    decode_weight_segment(w, row, a, b - a, tmp.data());
    std::copy(tmp.begin() + (k0 - a), tmp.begin() + (k0 - a + n), out);
    return;
  }
  if (w.rotation_group) {
    decode_rotated_groups(w, row, k0 / unit, n / unit, out, false);
    return;
  }
  const auto* base = static_cast<const std::byte*>(w.data) + row * w.row_bytes();
  decode_row(w.dtype, base + dtype_row_bytes(w.dtype, k0), n, out);
  apply_scales(w, row, n, out);
}

void decode_weight_row_reference(const WeightMatrix& w, int64_t row, float* out) {
  if (w.rotation_group) {
    decode_rotated_groups(w, row, 0, w.cols / w.rotation_group, out, true);
    return;
  }
  decode_row_reference(w.dtype, static_cast<const std::byte*>(w.data) + row * w.row_bytes(), w.cols, out);
  apply_scales(w, row, w.cols, out);
}

}  // namespace krea2
