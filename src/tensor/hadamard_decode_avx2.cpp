// AVX2 int8 convrot decode: the integer butterflies run in float32, where every intermediate is an integer
// below 2^24 and so exact; the one rounding is the final multiply, as in the reference.
#include <immintrin.h>

#include "tensor/hadamard_decode.h"

namespace krea2 {

namespace {

inline __m256 load8_codes(const int8_t* q) {
  const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(q));
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b));
}

// Stride 1 on each 4-lane group: out = sum(x) - 2 reverse(x).
inline __m256 butterfly4(__m256 x) {
  const __m256 t = _mm256_add_ps(x, _mm256_permute_ps(x, 0x4E));  // + [2, 3, 0, 1]
  const __m256 s = _mm256_add_ps(t, _mm256_permute_ps(t, 0xB1));  // + [1, 0, 3, 2]
  const __m256 rev = _mm256_permute_ps(x, 0x1B);                  // [3, 2, 1, 0]
  return _mm256_sub_ps(s, _mm256_add_ps(rev, rev));
}

// Stride 4 on 16 values (p = 0..7, q = 8..15; a, b, c, d = the four 128-bit halves).
inline void butterfly16(__m256& p, __m256& q) {
  const __m256 u = _mm256_add_ps(p, q);                                // [a + c, b + d]
  const __m256 s = _mm256_add_ps(u, _mm256_permute2f128_ps(u, u, 1));  // a + b + c + d in both halves
  const __m256 ps = _mm256_permute2f128_ps(p, p, 1), qs = _mm256_permute2f128_ps(q, q, 1);
  p = _mm256_sub_ps(s, _mm256_add_ps(qs, qs));  // [s - 2d, s - 2c]
  q = _mm256_sub_ps(s, _mm256_add_ps(ps, ps));  // [s - 2b, s - 2a]
}

// One group of G >= 16 codes, in place in out.
void group(const int8_t* q, int64_t G, float factor, float* out) {
  for (int64_t i = 0; i < G; i += 16) {
    __m256 p = butterfly4(load8_codes(q + i)), r = butterfly4(load8_codes(q + i + 8));
    butterfly16(p, r);
    _mm256_storeu_ps(out + i, p);
    _mm256_storeu_ps(out + i + 8, r);
  }
  for (int64_t st = 16; st < G; st *= 4) {
    for (int64_t base = 0; base < G; base += 4 * st) {
      for (int64_t j = base; j < base + st; j += 8) {
        const __m256 a = _mm256_loadu_ps(out + j), b = _mm256_loadu_ps(out + j + st);
        const __m256 c = _mm256_loadu_ps(out + j + 2 * st), d = _mm256_loadu_ps(out + j + 3 * st);
        const __m256 s = _mm256_add_ps(_mm256_add_ps(a, b), _mm256_add_ps(c, d));
        _mm256_storeu_ps(out + j, _mm256_sub_ps(s, _mm256_add_ps(d, d)));
        _mm256_storeu_ps(out + j + st, _mm256_sub_ps(s, _mm256_add_ps(c, c)));
        _mm256_storeu_ps(out + j + 2 * st, _mm256_sub_ps(s, _mm256_add_ps(b, b)));
        _mm256_storeu_ps(out + j + 3 * st, _mm256_sub_ps(s, _mm256_add_ps(a, a)));
      }
    }
  }
  const __m256 f = _mm256_set1_ps(factor);
  for (int64_t i = 0; i < G; i += 8) _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_loadu_ps(out + i), f));
}

}  // namespace

void decode_hadamard_i8_avx2(const int8_t* q, int64_t G, int64_t groups, float factor, float* out) {
  if (G >= 16) {
    for (int64_t g = 0; g < groups; ++g) group(q + g * G, G, factor, out + g * G);
    return;
  }
  // G = 4: two groups per vector, the odd one through the reference.
  const __m256 f = _mm256_set1_ps(factor);
  int64_t g = 0;
  for (; g + 2 <= groups; g += 2)
    _mm256_storeu_ps(out + g * 4, _mm256_mul_ps(butterfly4(load8_codes(q + g * 4)), f));
  if (g < groups) decode_hadamard_i8_reference(q + g * 4, 4, 1, factor, out + g * 4);
}

}  // namespace krea2
