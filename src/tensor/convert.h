// Scalar conversions between float32 and the 16-bit float formats, plus bulk widening to float32.
#pragma once
#include <cstdint>
#include <cstring>

#include "krea2/tensor.h"

namespace krea2 {

inline float bf16_to_f32(uint16_t h) {
  uint32_t bits = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Round to nearest even; NaN stays NaN.
inline uint16_t f32_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return uint16_t((bits >> 16) | 0x40);
  uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
  return uint16_t((bits + rounding) >> 16);
}

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

// Widens `n` elements of a float dtype (F32, F16, BF16, F64) at `src` to float32 (AVX2 where it matters).
void widen_to_f32(DType dtype, const void* src, float* dst, size_t n);

}  // namespace krea2
