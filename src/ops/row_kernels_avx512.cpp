// The element-wise row kernels on zmm registers (ops/row_kernels.h): 16 lanes, masked loads and stores for
// the tails (so a row of any length takes one path). Compiled with -mavx512f/bw/vl/dq (*_avx512.cpp) and
// reached only through kRowKernelsAvx512 when active_isa() is avx512. Internal linkage only, and no inline
// function of a shared header (ops/simd.h's AVX2 helpers are rewritten here for 16 lanes), as in the GEMM's
// AVX-512 file.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <cmath>
#include <cstdint>

#include "ops/row_kernels.h"

#if !defined(__AVX512F__) || !defined(__AVX512DQ__)
#error "row_kernels_avx512.cpp needs -mavx512f -mavx512dq (set for *_avx512.cpp by CMakeLists.txt)"
#endif

namespace krea2 {
namespace {

__mmask16 lanes_left(int64_t n) {
  return n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1);
}

// e^x for x <= 0, as exp_nonpositive in ops/simd.h (Cody-Waite reduction, degree-7 Taylor polynomial, 2^n
// built in the exponent; exactly 0 below -87; within ~2 ulp).
__m512 exp_nonpositive16(__m512 x) {
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  const __m512i pow2n =
      _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
  const __m512 e = _mm512_mul_ps(p, _mm512_castsi512_ps(pow2n));
  const __mmask16 underflow = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.0f), _CMP_LT_OQ);
  return _mm512_mask_mov_ps(e, underflow, _mm512_setzero_ps());
}

// sigmoid(x) through e = e^-|x| (never overflows): 1 / (1 + e) for x >= 0, e / (1 + e) below.
__m512 sigmoid16(__m512 x) {
  const __m512 e = exp_nonpositive16(_mm512_or_ps(x, _mm512_set1_ps(-0.0f)));
  const __mmask16 negative = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
  const __m512 num = _mm512_mask_mov_ps(_mm512_set1_ps(1.0f), negative, e);
  return _mm512_div_ps(num, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

float inverse_rms(const float* x, int64_t dim, float eps) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= dim; i += 32) {
    const __m512 a = _mm512_loadu_ps(x + i), b = _mm512_loadu_ps(x + i + 16);
    s0 = _mm512_fmadd_ps(a, a, s0);
    s1 = _mm512_fmadd_ps(b, b, s1);
  }
  for (; i < dim; i += 16) {
    const __m512 a = _mm512_maskz_loadu_ps(lanes_left(dim - i), x + i);
    s0 = _mm512_fmadd_ps(a, a, s0);
  }
  const float ss = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
  return 1.0f / std::sqrt(ss / float(dim) + eps);
}

void norm(const float* x, int64_t dim, const float* weight, float eps, float* out, const float* scale,
          const float* shift) {
  const __m512 inv = _mm512_set1_ps(inverse_rms(x, dim, eps));
  const __m512 one = _mm512_set1_ps(1.0f);
  for (int64_t i = 0; i < dim; i += 16) {
    const __mmask16 m = lanes_left(dim - i);
    // x * inv * (1 + w), rounded in that order as the AVX2 kernel does.
    __m512 v = _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), inv),
                             _mm512_add_ps(one, _mm512_maskz_loadu_ps(m, weight + i)));
    if (scale)
      v = _mm512_fmadd_ps(_mm512_add_ps(one, _mm512_maskz_loadu_ps(m, scale + i)), v,
                          _mm512_maskz_loadu_ps(m, shift + i));
    _mm512_mask_storeu_ps(out + i, m, v);
  }
}

void norm_plain(const float* x, int64_t dim, const float* weight, float eps, float* out) {
  const __m512 inv = _mm512_set1_ps(inverse_rms(x, dim, eps));
  for (int64_t i = 0; i < dim; i += 16) {
    const __mmask16 m = lanes_left(dim - i);
    _mm512_mask_storeu_ps(out + i, m,
                          _mm512_mul_ps(_mm512_maskz_loadu_ps(m, weight + i),
                                        _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), inv)));
  }
}

// 8 pairs a step: each angle's cosine and sine spread over its pair's two lanes, the pair swapped, then
// fmaddsub: even lanes a c - b s, odd lanes b c + a s.
void rotate_pairs(float* x, const float* c, const float* s, int64_t half) {
  const __m512i spread = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
  for (int64_t k = 0; k < half; k += 8) {
    const int64_t pairs = half - k < 8 ? half - k : 8;
    const __mmask8 mp = __mmask8((1u << pairs) - 1);
    const __mmask16 mx = lanes_left(2 * pairs);
    const __m512 cc = _mm512_permutexvar_ps(spread, _mm512_castps256_ps512(_mm256_maskz_loadu_ps(mp, c + k)));
    const __m512 ss = _mm512_permutexvar_ps(spread, _mm512_castps256_ps512(_mm256_maskz_loadu_ps(mp, s + k)));
    const __m512 v = _mm512_maskz_loadu_ps(mx, x + 2 * k);
    const __m512 swapped = _mm512_permute_ps(v, 0xB1);
    _mm512_mask_storeu_ps(x + 2 * k, mx, _mm512_fmaddsub_ps(v, cc, _mm512_mul_ps(swapped, ss)));
  }
}

void swiglu(float* a, const float* b, int64_t dim) {
  for (int64_t i = 0; i < dim; i += 16) {
    const __mmask16 m = lanes_left(dim - i);
    const __m512 x = _mm512_maskz_loadu_ps(m, a + i);
    _mm512_mask_storeu_ps(a + i, m,
                          _mm512_mul_ps(_mm512_mul_ps(x, sigmoid16(x)), _mm512_maskz_loadu_ps(m, b + i)));
  }
}

void sigmoid_gate(float* o, const float* g, int64_t dim) {
  for (int64_t i = 0; i < dim; i += 16) {
    const __mmask16 m = lanes_left(dim - i);
    _mm512_mask_storeu_ps(
        o + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, o + i), sigmoid16(_mm512_maskz_loadu_ps(m, g + i))));
  }
}

void gated_residual(float* x, const float* y, const float* gate, int64_t dim) {
  for (int64_t i = 0; i < dim; i += 16) {
    const __mmask16 m = lanes_left(dim - i);
    const __m512 xv = _mm512_maskz_loadu_ps(m, x + i), yv = _mm512_maskz_loadu_ps(m, y + i);
    const __m512 r =
        gate ? _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, gate + i), yv, xv) : _mm512_add_ps(xv, yv);
    _mm512_mask_storeu_ps(x + i, m, r);
  }
}

}  // namespace

const RowKernels kRowKernelsAvx512 = {
    .isa = Isa::kAvx512,
    .name = "avx512",
    .norm = norm,
    .norm_plain = norm_plain,
    .rotate_pairs = rotate_pairs,
    .swiglu = swiglu,
    .sigmoid_gate = sigmoid_gate,
    .gated_residual = gated_residual,
};

}  // namespace krea2
