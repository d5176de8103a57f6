// conv2d's AVX2 + FMA variant (the build floor, ops/conv2d_kernels.h): the GEMM's 6x16 register block reading
// its left operand from the channels-last input region.
#include <immintrin.h>

#include <cstdint>

#include "ops/conv2d_kernels.h"

namespace krea2 {
namespace {

constexpr int64_t kMR = 6;  // as the GEMM's AVX2 variant (gemm_avx2.cpp): 12 accumulators
constexpr int64_t kNR = 16;

// Row i of the left operand is p0 or p3 plus 0, 1 or 2 row strides.
#define KREA2_ROW(i, p, m)                    \
  av = _mm256_broadcast_ss(p + (m)*ld);       \
  c##i##0 = _mm256_fmadd_ps(av, b0, c##i##0); \
  c##i##1 = _mm256_fmadd_ps(av, b1, c##i##1)

#define KREA2_LOOP(steps)                                         \
  _Pragma("GCC unroll 4") for (int64_t k = 0; k < (steps); ++k) { \
    const __m256 b0 = _mm256_load_ps(b);                          \
    const __m256 b1 = _mm256_load_ps(b + 8);                      \
    __m256 av;                                                    \
    KREA2_ROW(0, p0, 0);                                          \
    KREA2_ROW(1, p0, 1);                                          \
    KREA2_ROW(2, p0, 2);                                          \
    KREA2_ROW(3, p3, 0);                                          \
    KREA2_ROW(4, p3, 1);                                          \
    KREA2_ROW(5, p3, 2);                                          \
    ++p0, ++p3;                                                   \
    b += kNR;                                                     \
  }

// Depth steps before the end at which the C tile is prefetched (as the GEMM's kernel).
constexpr int64_t kPrefetchCSteps = 80;

inline void store_row(float* row, __m256 v0, __m256 v1, bool add) {
  if (add) {
    v0 = _mm256_add_ps(_mm256_loadu_ps(row), v0);
    v1 = _mm256_add_ps(_mm256_loadu_ps(row + 8), v1);
  }
  _mm256_storeu_ps(row, v0);
  _mm256_storeu_ps(row + 8, v1);
}

void kernel_6x16(int64_t ntaps, const int64_t* tap_off, int64_t kc, const float* a, int64_t ld,
                 const float* __restrict b, float* __restrict c, int64_t ldc, bool add) {
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
  __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
  __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
  __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
  __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
  for (int64_t t = 0; t < ntaps; ++t) {
    const float* p0 = a + tap_off[t];
    const float* p3 = p0 + 3 * ld;
    if (t + 1 < ntaps) {
      KREA2_LOOP(kc)
      continue;
    }
    const int64_t head = kc > kPrefetchCSteps ? kc - kPrefetchCSteps : 0;
    KREA2_LOOP(head)
    for (int64_t i = 0; i < kMR; ++i) {
      _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + kNR - 1), _MM_HINT_T0);
    }
    KREA2_LOOP(kc - head)
  }
  store_row(c + 0 * ldc, c00, c01, add);
  store_row(c + 1 * ldc, c10, c11, add);
  store_row(c + 2 * ldc, c20, c21, add);
  store_row(c + 3 * ldc, c30, c31, add);
  store_row(c + 4 * ldc, c40, c41, add);
  store_row(c + 5 * ldc, c50, c51, add);
}

#undef KREA2_LOOP
#undef KREA2_ROW

}  // namespace

const ConvKernels kConvKernelsAvx2 = {
    .isa = Isa::kAvx2,
    .mr = kMR,
    .nr = kNR,
    .kernel = kernel_6x16,
};

}  // namespace krea2
