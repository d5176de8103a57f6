// conv2d's AVX-512 variant (ops/conv2d_kernels.h): the GEMM's 12x32 register block reading its left operand
// from the channels-last input region. Compiled with
// -mavx512f/bw/vl/dq (CMakeLists.txt, *_avx512.cpp), reached only through kConvKernelsAvx512 when
// active_isa() is avx512; everything here has internal linkage and uses no inline function of a shared
// header.

// GCC 12's AVX-512 intrinsics start from a self-initialised "undefined" vector and warn about it wherever
// they are inlined (GCC bug 105593); the warning is about the header, not about our code.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <cstdint>

#include "ops/conv2d_kernels.h"

#if !defined(__AVX512F__) || !defined(__AVX512BW__) || !defined(__AVX512VL__)
#error "conv2d_avx512.cpp needs -mavx512f -mavx512bw -mavx512vl (set for *_avx512.cpp by CMakeLists.txt)"
#endif

namespace krea2 {
namespace {

constexpr int64_t kMR = 12;  // as the GEMM's AVX-512 variant (gemm_avx512.cpp): 24 accumulators
constexpr int64_t kNR = 32;

// ---------------------------------------------------------------------------------------------------------
// Microkernel (ConvMicrokernel). Row i of the left operand is p0, p3, p6 or p9 plus 0, 1 or 2 row strides
// (x86 addressing: base + stride * 1 or 2), so four pointers and the stride address all twelve rows.

#define KREA2_ROW(i, p, m)                    \
  av = _mm512_set1_ps(p[(m)*ld]);             \
  c##i##a = _mm512_fmadd_ps(av, b0, c##i##a); \
  c##i##b = _mm512_fmadd_ps(av, b1, c##i##b)

#define KREA2_LOOP(steps)                                         \
  _Pragma("GCC unroll 4") for (int64_t k = 0; k < (steps); ++k) { \
    const __m512 b0 = _mm512_load_ps(b);                          \
    const __m512 b1 = _mm512_load_ps(b + 16);                     \
    __m512 av;                                                    \
    KREA2_ROW(0, p0, 0);                                          \
    KREA2_ROW(1, p0, 1);                                          \
    KREA2_ROW(2, p0, 2);                                          \
    KREA2_ROW(3, p3, 0);                                          \
    KREA2_ROW(4, p3, 1);                                          \
    KREA2_ROW(5, p3, 2);                                          \
    KREA2_ROW(6, p6, 0);                                          \
    KREA2_ROW(7, p6, 1);                                          \
    KREA2_ROW(8, p6, 2);                                          \
    KREA2_ROW(9, p9, 0);                                          \
    KREA2_ROW(10, p9, 1);                                         \
    KREA2_ROW(11, p9, 2);                                         \
    ++p0, ++p3, ++p6, ++p9;                                       \
    b += kNR;                                                     \
  }

// Depth steps before the end at which the C tile is prefetched (as the GEMM's kernel).
constexpr int64_t kPrefetchCSteps = 40;

inline void store_row(float* row, __m512 v0, __m512 v1, bool add) {
  if (add) {
    v0 = _mm512_add_ps(_mm512_loadu_ps(row), v0);
    v1 = _mm512_add_ps(_mm512_loadu_ps(row + 16), v1);
  }
  _mm512_storeu_ps(row, v0);
  _mm512_storeu_ps(row + 16, v1);
}

void kernel_12x32(int64_t ntaps, const int64_t* tap_off, int64_t kc, const float* a, int64_t ld,
                  const float* __restrict b, float* __restrict c, int64_t ldc, bool add) {
  __m512 c0a = _mm512_setzero_ps(), c0b = _mm512_setzero_ps(), c1a = _mm512_setzero_ps();
  __m512 c1b = _mm512_setzero_ps(), c2a = _mm512_setzero_ps(), c2b = _mm512_setzero_ps();
  __m512 c3a = _mm512_setzero_ps(), c3b = _mm512_setzero_ps(), c4a = _mm512_setzero_ps();
  __m512 c4b = _mm512_setzero_ps(), c5a = _mm512_setzero_ps(), c5b = _mm512_setzero_ps();
  __m512 c6a = _mm512_setzero_ps(), c6b = _mm512_setzero_ps(), c7a = _mm512_setzero_ps();
  __m512 c7b = _mm512_setzero_ps(), c8a = _mm512_setzero_ps(), c8b = _mm512_setzero_ps();
  __m512 c9a = _mm512_setzero_ps(), c9b = _mm512_setzero_ps(), c10a = _mm512_setzero_ps();
  __m512 c10b = _mm512_setzero_ps(), c11a = _mm512_setzero_ps(), c11b = _mm512_setzero_ps();
  for (int64_t t = 0; t < ntaps; ++t) {
    const float* p0 = a + tap_off[t];
    const float *p3 = p0 + 3 * ld, *p6 = p0 + 6 * ld, *p9 = p0 + 9 * ld;
    if (t + 1 < ntaps) {
      KREA2_LOOP(kc)
      continue;
    }
    const int64_t head = kc > kPrefetchCSteps ? kc - kPrefetchCSteps : 0;
    KREA2_LOOP(head)
    for (int64_t i = 0; i < kMR; ++i) {
      _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + 16), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + kNR - 1), _MM_HINT_T0);
    }
    KREA2_LOOP(kc - head)
  }
  store_row(c + 0 * ldc, c0a, c0b, add);
  store_row(c + 1 * ldc, c1a, c1b, add);
  store_row(c + 2 * ldc, c2a, c2b, add);
  store_row(c + 3 * ldc, c3a, c3b, add);
  store_row(c + 4 * ldc, c4a, c4b, add);
  store_row(c + 5 * ldc, c5a, c5b, add);
  store_row(c + 6 * ldc, c6a, c6b, add);
  store_row(c + 7 * ldc, c7a, c7b, add);
  store_row(c + 8 * ldc, c8a, c8b, add);
  store_row(c + 9 * ldc, c9a, c9b, add);
  store_row(c + 10 * ldc, c10a, c10b, add);
  store_row(c + 11 * ldc, c11a, c11b, add);
}

#undef KREA2_LOOP
#undef KREA2_ROW

}  // namespace

const ConvKernels kConvKernelsAvx512 = {
    .isa = Isa::kAvx512,
    .mr = kMR,
    .nr = kNR,
    .kernel = kernel_12x32,
};

}  // namespace krea2
