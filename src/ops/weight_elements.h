// Reading weight elements of the float dtypes (F32 / BF16 / F16) as float32, for the kernels that widen
// weights on the fly, and the one switch from a run-time dtype to a compile-time one.
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "krea2/tensor.h"
#include "tensor/convert.h"

namespace krea2 {

template <DType kType>
constexpr int64_t kWeightElementBytes = kType == DType::F32 ? 4 : 2;

// 8 consecutive weight elements as float32 (unaligned: weights come from an mmap).
template <DType kType>
inline __m256 load8_weights(const void* p) {
  if constexpr (kType == DType::F32) {
    return _mm256_loadu_ps(static_cast<const float*>(p));
  } else {
    const __m128i h = _mm_loadu_si128(static_cast<const __m128i*>(p));
    if constexpr (kType == DType::BF16)
      return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    return _mm256_cvtph_ps(h);
  }
}

// One weight element as float32.
template <DType kType>
inline float load1_weight(const void* p) {
  if constexpr (kType == DType::F32) {
    float f;
    std::memcpy(&f, p, 4);
    return f;
  } else {
    uint16_t h;
    std::memcpy(&h, p, 2);
    return kType == DType::BF16 ? bf16_to_f32(h) : f16_to_f32(h);
  }
}

// Calls f(std::integral_constant<DType, dtype>{}) for F32, BF16 or F16; throws std::invalid_argument naming
// `what` for any other dtype.
template <typename F>
decltype(auto) with_weight_dtype(DType dtype, const char* what, F&& f) {
  switch (dtype) {
    case DType::F32:
      return f(std::integral_constant<DType, DType::F32>{});
    case DType::BF16:
      return f(std::integral_constant<DType, DType::BF16>{});
    case DType::F16:
      return f(std::integral_constant<DType, DType::F16>{});
    default:
      throw std::invalid_argument(std::string(what) + ": unsupported weight dtype " +
                                  std::string(dtype_name(dtype)));
  }
}

}  // namespace krea2
