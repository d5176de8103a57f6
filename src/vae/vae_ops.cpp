#include "vae/vae_ops.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "ops/activations.h"
#include "ops/simd.h"

namespace krea2 {

namespace {

constexpr int64_t kParallelMin = 1 << 15;  // elements below which threads cost more than they save

inline __m256 silu8(__m256 x) {
  return _mm256_mul_ps(x, sigmoid8(x));
}

}  // namespace

void channel_rms_norm(const float* x, int64_t pixels, int64_t C, const float* gamma, bool silu, float* out) {
  const float root_c = std::sqrt(float(C));
#pragma omp parallel for schedule(static) if (pixels * C > kParallelMin)
  for (int64_t p = 0; p < pixels; ++p) {
    const float* xr = x + p * C;
    float* yr = out + p * C;
    __m256 acc = _mm256_setzero_ps();
    int64_t c = 0;
    for (; c + 8 <= C; c += 8) {
      const __m256 v = _mm256_loadu_ps(xr + c);
      acc = _mm256_fmadd_ps(v, v, acc);
    }
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, acc);
    double ss = 0;
    for (float l : lanes) ss += l;
    for (; c < C; ++c) ss += double(xr[c]) * xr[c];
    // As F.normalize: x / max(norm, eps), then the sqrt(C) * gamma scale.
    const float inv = 1.0f / std::max(float(std::sqrt(ss)), 1e-12f);
    const __m256 vinv = _mm256_set1_ps(inv), vroot = _mm256_set1_ps(root_c);
    c = 0;
    for (; c + 8 <= C; c += 8) {
      __m256 v = _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(xr + c), vinv), vroot),
                               _mm256_loadu_ps(gamma + c));
      if (silu) v = silu8(v);
      _mm256_storeu_ps(yr + c, v);
    }
    for (; c < C; ++c) {
      const float v = xr[c] * inv * root_c * gamma[c];
      yr[c] = silu ? krea2::silu(v) : v;
    }
  }
}

void silu_inplace(float* x, int64_t n) {
  const int64_t blocks = n / 8;
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t b = 0; b < blocks; ++b) _mm256_storeu_ps(x + 8 * b, silu8(_mm256_loadu_ps(x + 8 * b)));
  for (int64_t i = blocks * 8; i < n; ++i) x[i] = silu(x[i]);
}

void to_channels_first(const float* x, int64_t pixels, int64_t C, float* out) {
#pragma omp parallel for schedule(static) if (pixels * C > kParallelMin)
  for (int64_t c = 0; c < C; ++c)
    for (int64_t p = 0; p < pixels; ++p) out[c * pixels + p] = x[p * C + c];
}

void to_channels_last(const float* x, int64_t pixels, int64_t C, float* out) {
#pragma omp parallel for schedule(static) if (pixels * C > kParallelMin)
  for (int64_t p = 0; p < pixels; ++p)
    for (int64_t c = 0; c < C; ++c) out[p * C + c] = x[c * pixels + p];
}

}  // namespace krea2
