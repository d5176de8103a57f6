#include "ops/int8_activations.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "krea2/error.h"
#include "tensor/quantize.h"

namespace krea2 {
namespace {

float row_scale_reference(const float* v, int64_t K) {
  float m = 0.0f;
  for (int64_t i = 0; i < K; ++i) m = std::max(m, std::fabs(v[i]));
  return m / 127.0f;
}

// The largest lane of m8 (all >= 0).
float max_lane(__m256 m8) {
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, m8);
  float m = 0.0f;
  for (float l : lanes) m = std::max(m, l);
  return m;
}

// max |v[0..K)|.
float max_abs(const float* v, int64_t K) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 m8 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= K; i += 8) m8 = _mm256_max_ps(m8, _mm256_andnot_ps(sign, _mm256_loadu_ps(v + i)));
  float m = max_lane(m8);
  for (; i < K; ++i) m = std::max(m, std::fabs(v[i]));
  return m;
}

// One row (already rotated) of largest magnitude m into codes; AVX2: v / s rounded half-even (vroundps) and
// clamped.
float quantize_row(const float* v, int64_t K, float m, int8_t* q) {
  const float s = m / 127.0f;
  if (s == 0.0f) {
    std::memset(q, 0, size_t(K));
    return 0.0f;
  }
  const __m256 sv = _mm256_set1_ps(s), lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
  int64_t i = 0;
  for (; i + 8 <= K; i += 8) {
    __m256 r = _mm256_round_ps(_mm256_div_ps(_mm256_loadu_ps(v + i), sv),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    r = _mm256_min_ps(_mm256_max_ps(r, lo), hi);
    const __m256i w = _mm256_cvtps_epi32(r);
    const __m128i p16 = _mm_packs_epi32(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
    const __m128i p8 = _mm_packs_epi16(p16, p16);
    _mm_storel_epi64(reinterpret_cast<__m128i*>(q + i), p8);
  }
  for (; i < K; ++i) q[i] = int8_t(std::clamp(std::nearbyint(v[i] / s), -127.0f, 127.0f));
  return s;
}

// ---------------------------------------------------------------------------------------------------------
// The convrot rotation (hadamard_rotate, tensor/quantize.h) vectorised, bit-identical to it: the same radix-4
// butterflies (s = (a + b) + (c + d); a, b, c, d <- s - 2d, s - 2c, s - 2b, s - 2a) in the same pass order
// (strides 1, 4, 16, ...), then the exact scaling by 2^-k. Vector lanes only regroup the operands; the one
// liberty taken is the order of the two operands of an addition, which is commutative in IEEE arithmetic.
// The scalar rotation took ~2 ns an element for G = 16 (13 ms for 1088 x 6144 on one Sapphire Rapids core,
// ~8 % of the int8 GEMM with a 6144-row weight); this one ~0.35 ns.

// Butterflies of stride 1 (lanes 4g..4g+3) then stride 4 (lanes j of a, j + 4 of a, j of b, j + 4 of b) on
// the 16 values a, b: the first two passes of a group of 16 or more.
inline void butterflies_1_4(__m256& a, __m256& b) {
  const __m256 two = _mm256_set1_ps(2.0f);
  auto radix4_in_lanes = [&](__m256 v) {
    const __m256 p = _mm256_add_ps(v, _mm256_permute_ps(v, 0xB1));  // a+b, a+b, c+d, c+d (pairs swapped)
    const __m256 s = _mm256_add_ps(p, _mm256_permute_ps(p, 0x4E));  // (a+b) + (c+d) in all four
    return _mm256_sub_ps(s, _mm256_mul_ps(two, _mm256_permute_ps(v, 0x1B)));  // s - 2 (d, c, b, a)
  };
  a = radix4_in_lanes(a);
  b = radix4_in_lanes(b);
  // Stride 4: the quarters a.lo, a.hi, b.lo, b.hi are the butterfly's a, b, c, d.
  const __m256 ac = _mm256_permute2f128_ps(a, b, 0x20), bd = _mm256_permute2f128_ps(a, b, 0x31);
  const __m256 p = _mm256_add_ps(ac, bd);                                 // a+b | c+d
  const __m256 s = _mm256_add_ps(p, _mm256_permute2f128_ps(p, p, 0x01));  // (a+b) + (c+d) in both halves
  const __m256 dc = _mm256_permute2f128_ps(b, b, 0x01), ba = _mm256_permute2f128_ps(a, a, 0x01);
  a = _mm256_sub_ps(s, _mm256_mul_ps(two, dc));
  b = _mm256_sub_ps(s, _mm256_mul_ps(two, ba));
}

// out = x R (n values, G a power of 4 >= 16 dividing n); returns max |out|. For G = 16 one pass: load,
// butterflies, scale, store.
float rotate_row(const float* x, int64_t n, int64_t G, float* out) {
  int k = 2;  // G = 4^k
  for (int64_t g = 16; g < G; g *= 4) ++k;
  const __m256 norm = _mm256_set1_ps(std::ldexp(1.0f, -k));  // 1 / sqrt(G), exact
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 m8 = _mm256_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + i + 8);
    butterflies_1_4(a, b);
    if (G == 16) {
      a = _mm256_mul_ps(a, norm);
      b = _mm256_mul_ps(b, norm);
      m8 = _mm256_max_ps(m8, _mm256_max_ps(_mm256_andnot_ps(sign, a), _mm256_andnot_ps(sign, b)));
    }
    _mm256_storeu_ps(out + i, a);
    _mm256_storeu_ps(out + i + 8, b);
  }
  if (G == 16) return max_lane(m8);
  const __m256 two = _mm256_set1_ps(2.0f);
  for (int64_t stride = 16; stride < G; stride *= 4)
    for (int64_t base = 0; base < n; base += 4 * stride)
      for (int64_t j = base; j < base + stride; j += 8) {
        float* v = out + j;
        const __m256 a = _mm256_loadu_ps(v), b = _mm256_loadu_ps(v + stride);
        const __m256 c = _mm256_loadu_ps(v + 2 * stride), d = _mm256_loadu_ps(v + 3 * stride);
        const __m256 s = _mm256_add_ps(_mm256_add_ps(a, b), _mm256_add_ps(c, d));
        _mm256_storeu_ps(v, _mm256_sub_ps(s, _mm256_mul_ps(two, d)));
        _mm256_storeu_ps(v + stride, _mm256_sub_ps(s, _mm256_mul_ps(two, c)));
        _mm256_storeu_ps(v + 2 * stride, _mm256_sub_ps(s, _mm256_mul_ps(two, b)));
        _mm256_storeu_ps(v + 3 * stride, _mm256_sub_ps(s, _mm256_mul_ps(two, a)));
      }
  for (int64_t i = 0; i < n; i += 8) {
    const __m256 v = _mm256_mul_ps(_mm256_loadu_ps(out + i), norm);
    m8 = _mm256_max_ps(m8, _mm256_andnot_ps(sign, v));
    _mm256_storeu_ps(out + i, v);
  }
  return max_lane(m8);
}

bool power_of_4(int64_t g) {
  int64_t p = 1;
  while (p < g) p *= 4;
  return g >= 1 && p == g;
}

}  // namespace

void quantize_activations_i8_reference(const float* x, int64_t M, int64_t ldx, int64_t K, int64_t group,
                                       int8_t* q, float* scales) {
  std::vector<float> row(static_cast<size_t>(K));
  for (int64_t m = 0; m < M; ++m) {
    std::copy(x + m * ldx, x + m * ldx + K, row.begin());
    if (group > 0) hadamard_rotate(row.data(), K, group);
    const float s = row_scale_reference(row.data(), K);
    scales[m] = s;
    for (int64_t i = 0; i < K; ++i)
      q[m * K + i] = s == 0.0f ? 0 : int8_t(std::clamp(std::nearbyint(row[size_t(i)] / s), -127.0f, 127.0f));
  }
}

void quantize_activations_i8(const float* x, int64_t M, int64_t ldx, int64_t K, int64_t group, int8_t* q,
                             float* scales) {
  // Checked here: an exception must not leave the parallel region below.
  if (group > 0 && (!power_of_4(group) || K % group != 0))
    throw Error("quantize_activations_i8: the rotation group " + std::to_string(group) +
                " must be a power of 4 dividing " + std::to_string(K));
  const bool parallel = !omp_in_parallel() && M * K >= (int64_t(1) << 16);
#pragma omp parallel if (parallel)
  {
    std::vector<float> row(group > 1 ? size_t(K) : 0);
#pragma omp for schedule(static)
    for (int64_t m = 0; m < M; ++m) {
      const float* v = x + m * ldx;
      float max = 0.0f;
      if (group >= 16) {
        max = rotate_row(v, K, group, row.data());
        v = row.data();
      } else {
        if (group == 4) {  // rare: the scalar rotation
          std::copy(v, v + K, row.begin());
          hadamard_rotate(row.data(), K, group);
          v = row.data();
        }
        max = max_abs(v, K);
      }
      scales[m] = quantize_row(v, K, max, q + m * K);
    }
  }
}

}  // namespace krea2
