// AVX2 inner loops of the K-quant search (quantize_k.cpp): one sub-block of n values (n a multiple of 8)
// against one grid. Levels are q = round(clamp(a x + b, lo, hi)) (NaN -> lo), the grid value of q is
// S q + off (affine formats: a = 1 / S, b = M / S, off = -M; signed: b = off = 0).
#pragma once
#include <immintrin.h>

namespace krea2::kquant {

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

struct Grid {
  float a, b, lo, hi;
};

inline __m256 levels8(const float* x, const Grid& g) {
  __m256 v = _mm256_fmadd_ps(_mm256_loadu_ps(x), _mm256_set1_ps(g.a), _mm256_set1_ps(g.b));
  v = _mm256_min_ps(_mm256_max_ps(v, _mm256_set1_ps(g.lo)), _mm256_set1_ps(g.hi));
  return _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}

// Sums of the levels: l = sum q, ll = sum q^2, xl = sum x q.
struct LevelSums {
  float l, ll, xl;
};

inline LevelSums level_sums(const float* x, int n, const Grid& g) {
  __m256 l = _mm256_setzero_ps(), ll = l, xl = l;
  for (int i = 0; i < n; i += 8) {
    const __m256 q = levels8(x + i, g);
    l = _mm256_add_ps(l, q);
    ll = _mm256_fmadd_ps(q, q, ll);
    xl = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), q, xl);
  }
  return {hsum(l), hsum(ll), hsum(xl)};
}

// Squared error sum (S q + off - x)^2.
inline float grid_error(const float* x, int n, const Grid& g, float S, float off) {
  __m256 err = _mm256_setzero_ps();
  for (int i = 0; i < n; i += 8) {
    const __m256 q = levels8(x + i, g);
    const __m256 e =
        _mm256_fmadd_ps(q, _mm256_set1_ps(S), _mm256_sub_ps(_mm256_set1_ps(off), _mm256_loadu_ps(x + i)));
    err = _mm256_fmadd_ps(e, e, err);
  }
  return hsum(err);
}

inline void grid_levels(const float* x, int n, const Grid& g, int* q) {
  for (int i = 0; i < n; i += 8)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + i), _mm256_cvtps_epi32(levels8(x + i, g)));
}

}  // namespace krea2::kquant
