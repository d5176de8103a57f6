#include "ops/int8_activations.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "tensor/quantize.h"

namespace krea2 {
namespace {

float row_scale_reference(const float* v, int64_t K) {
  float m = 0.0f;
  for (int64_t i = 0; i < K; ++i) m = std::max(m, std::fabs(v[i]));
  return m / 127.0f;
}

// One row (already rotated) into codes; AVX2: |v| max, then v / s rounded half-even (vroundps) and clamped.
float quantize_row(const float* v, int64_t K, int8_t* q) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 m8 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= K; i += 8) m8 = _mm256_max_ps(m8, _mm256_andnot_ps(sign, _mm256_loadu_ps(v + i)));
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, m8);
  float m = 0.0f;
  for (float l : lanes) m = std::max(m, l);
  for (int64_t j = i; j < K; ++j) m = std::max(m, std::fabs(v[j]));
  const float s = m / 127.0f;
  if (s == 0.0f) {
    std::memset(q, 0, size_t(K));
    return 0.0f;
  }
  const __m256 sv = _mm256_set1_ps(s), lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
  for (i = 0; i + 8 <= K; i += 8) {
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
  const bool parallel = !omp_in_parallel() && M * K >= (int64_t(1) << 16);
#pragma omp parallel if (parallel)
  {
    std::vector<float> row(group > 0 ? size_t(K) : 0);
#pragma omp for schedule(static)
    for (int64_t m = 0; m < M; ++m) {
      const float* v = x + m * ldx;
      if (group > 0) {
        std::copy(v, v + K, row.begin());
        hadamard_rotate(row.data(), K, group);
        v = row.data();
      }
      scales[m] = quantize_row(v, K, q + m * K);
    }
  }
}

}  // namespace krea2
