// bf16 compute mode on AVX-512 CPUs without AVX512_BF16: the float32 12x32 kernel and packers of
// kGemmKernelsAvx512 (called through its table), with every packed value then rounded to bf16 in place
// (round to nearest even, kept as a float32 whose low 16 bits are zero). The product of two bf16 values is
// exact in float32, so the kernel's FMAs give the bf16 mode's results at the float32 kernel's speed: correct,
// not faster. Compiled with -mavx512f/bw/vl/dq (*_avx512.cpp); internal linkage and no inline function of a
// shared header, as in gemm_avx512.cpp.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <cstdint>

#include "ops/gemm_kernels.h"

#if !defined(__AVX512F__) || !defined(__AVX512BW__) || !defined(__AVX512VL__)
#error "gemm_bf16_avx512.cpp needs -mavx512f -mavx512bw -mavx512vl (set for *_avx512.cpp by CMakeLists.txt)"
#endif

namespace krea2 {
namespace {

// Rounds n floats in place to bf16 (RNE): add 0x7FFF plus the lowest kept bit, clear the low half (a carry
// into the exponent is the correct round-up, to infinity past the largest bf16). NaNs are only quietened:
// the rounding add could carry a NaN's low payload into infinity.
void round_to_bf16(float* p, int64_t n) {
  const __m512i bias = _mm512_set1_epi32(0x7FFF), one = _mm512_set1_epi32(1);
  const __m512i high = _mm512_set1_epi32(int32_t(0xFFFF0000u)), abs = _mm512_set1_epi32(0x7FFFFFFF);
  const __m512i inf = _mm512_set1_epi32(0x7F800000), quiet = _mm512_set1_epi32(0x00400000);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 lanes = n - i >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (n - i)) - 1);
    const __m512i v = _mm512_maskz_loadu_epi32(lanes, p + i);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(v, 16), one);
    __m512i r = _mm512_and_si512(_mm512_add_epi32(v, _mm512_add_epi32(bias, lsb)), high);
    const __mmask16 nan = _mm512_cmpgt_epi32_mask(_mm512_and_si512(v, abs), inf);
    r = _mm512_mask_mov_epi32(r, nan, _mm512_and_si512(_mm512_or_si512(v, quiet), high));
    _mm512_mask_storeu_epi32(p + i, lanes, r);
  }
}

void kernel(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool add) {
  kGemmKernelsAvx512.kernel(kc, a, b, c, ldc, add);
}

// The float32 panels hold kc words per row / column and no extras (depth_per_word 1).
void pack_a(const GemmLhs& x, int64_t m0, int64_t mc, int64_t k0, int64_t kc, float* out) {
  const GemmKernels& f32 = kGemmKernelsAvx512;
  f32.pack_a(x, m0, mc, k0, kc, out);
  round_to_bf16(out, (mc + f32.mr - 1) / f32.mr * f32.mr * kc);
}

template <GemmPackB GemmKernels::*kPack>
void pack_b(const unsigned char* w, int64_t K, int64_t n0, int64_t nc, int64_t k0, int64_t kc, float* out) {
  const GemmKernels& f32 = kGemmKernelsAvx512;
  (f32.*kPack)(w, K, n0, nc, k0, kc, out);
  round_to_bf16(out, (nc + f32.nr - 1) / f32.nr * f32.nr * kc);
}

}  // namespace

// MR, NR, blocking and weight prefetch are kGemmKernelsAvx512's (repeated: the table is constant-initialised
// and cannot read another translation unit's; tests/test_gemm_bf16.cpp checks they match).
const GemmKernels kGemmKernelsBf16Avx512 = {
    .isa = Isa::kAvx512,
    .compute = Compute::kBf16,
    .name = "avx512 12x32 (bf16 emulated)",
    .mr = 12,
    .nr = 32,
    .depth_per_word = 1,
    .a_extra = 0,
    .b_extra = 0,
    .blocking = {144, 1024, 512, int64_t(24) << 20},
    .prefetch_weights = false,
    .kernel = kernel,
    .pack_a = pack_a,
    .pack_b_f32 = pack_b<&GemmKernels::pack_b_f32>,
    .pack_b_bf16 = pack_b<&GemmKernels::pack_b_bf16>,
    .pack_b_f16 = pack_b<&GemmKernels::pack_b_f16>,
    .pack_b_i8 = nullptr,
};

}  // namespace krea2
