#include <immintrin.h>

#include <cstring>

#include "tensor/convert.h"

namespace krea2 {

// Unaligned loads throughout: mmap'd tensors need not be aligned to their element size.
void widen_to_f32(DType dtype, const void* src, float* dst, size_t n) {
  if (n == 0) return;  // dst may be null for an empty tensor
  const auto* bytes = static_cast<const unsigned char*>(src);
  size_t i = 0;
  switch (dtype) {
    case DType::F32:
      std::memcpy(dst, src, n * 4);
      return;
    case DType::BF16:
      for (; i + 8 <= n; i += 8) {
        __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(bytes + 2 * i));
        __m256i w = _mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16);
        _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(w));
      }
      for (; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, bytes + 2 * i, 2);
        dst[i] = bf16_to_f32(h);
      }
      return;
    case DType::F16:
      for (; i + 8 <= n; i += 8) {
        __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(bytes + 2 * i));
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
      }
      for (; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, bytes + 2 * i, 2);
        dst[i] = f16_to_f32(h);
      }
      return;
    case DType::F64:
      for (; i < n; ++i) {
        double d;
        std::memcpy(&d, bytes + 8 * i, 8);
        dst[i] = float(d);
      }
      return;
    default:
      for (; i < n; ++i) dst[i] = 0.0f;  // callers only pass float dtypes
  }
}

}  // namespace krea2
