// bf16 compute mode on AVX2 CPUs: the float32 6x16 kernel and packers of kGemmKernelsAvx2 (called through
// its table), with every packed value then rounded to bf16 in place (round to nearest even, kept as a
// float32 whose low 16 bits are zero). The product of two bf16 values is exact in float32, so the kernel's
// FMAs give the bf16 mode's results at the float32 kernel's speed: correct, not faster.
#include <immintrin.h>

#include <cstdint>

#include "ops/gemm_kernels.h"

namespace krea2 {
namespace {

// Rounds the bits of one float32 to bf16 (RNE), as a float32 bit pattern with the low half zero: add 0x7FFF
// plus the lowest kept bit, clear the low half (a carry into the exponent is the correct round-up, to
// infinity past the largest bf16). NaNs are only quietened: the add could carry a NaN's low payload into
// infinity.
__m256i round_bits(__m256i v) {
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(v, 16), _mm256_set1_epi32(1));
  const __m256i high = _mm256_set1_epi32(int32_t(0xFFFF0000u));
  const __m256i r =
      _mm256_and_si256(_mm256_add_epi32(v, _mm256_add_epi32(_mm256_set1_epi32(0x7FFF), lsb)), high);
  const __m256i nan =
      _mm256_cmpgt_epi32(_mm256_and_si256(v, _mm256_set1_epi32(0x7FFFFFFF)), _mm256_set1_epi32(0x7F800000));
  const __m256i quiet = _mm256_and_si256(_mm256_or_si256(v, _mm256_set1_epi32(0x00400000)), high);
  return _mm256_blendv_epi8(r, quiet, nan);
}

// Rounds n floats in place to bf16; the tail of fewer than 8 goes through a masked load and store.
void round_to_bf16(float* p, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    float* q = p + i;
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q),
                        round_bits(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(q))));
  }
  if (i < n) {
    const __m256i lanes =
        _mm256_cmpgt_epi32(_mm256_set1_epi32(int32_t(n - i)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    int* q = reinterpret_cast<int*>(p + i);
    _mm256_maskstore_epi32(q, lanes, round_bits(_mm256_maskload_epi32(q, lanes)));
  }
}

void kernel(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool add) {
  kGemmKernelsAvx2.kernel(kc, a, b, c, ldc, add);
}

// The float32 panels hold kc words per row / column and no extras (depth_per_word 1).
void pack_a(const GemmLhs& x, int64_t m0, int64_t mc, int64_t k0, int64_t kc, float* out) {
  const GemmKernels& f32 = kGemmKernelsAvx2;
  f32.pack_a(x, m0, mc, k0, kc, out);
  round_to_bf16(out, (mc + f32.mr - 1) / f32.mr * f32.mr * kc);
}

template <GemmPackB GemmKernels::*kPack>
void pack_b(const unsigned char* w, int64_t K, int64_t n0, int64_t nc, int64_t k0, int64_t kc, float* out) {
  const GemmKernels& f32 = kGemmKernelsAvx2;
  (f32.*kPack)(w, K, n0, nc, k0, kc, out);
  round_to_bf16(out, (nc + f32.nr - 1) / f32.nr * f32.nr * kc);
}

}  // namespace

// MR, NR, blocking and weight prefetch are kGemmKernelsAvx2's (repeated: the table is constant-initialised
// and cannot read another translation unit's; tests/test_gemm_bf16.cpp checks they match).
const GemmKernels kGemmKernelsBf16Avx2 = {
    .isa = Isa::kAvx2,
    .compute = Compute::kBf16,
    .name = "avx2 6x16 (bf16 emulated)",
    .mr = 6,
    .nr = 16,
    .depth_per_word = 1,
    .a_extra = 0,
    .b_extra = 0,
    .blocking = {144, 256, 256, int64_t(24) << 20},
    .prefetch_weights = true,
    .kernel = kernel,
    .pack_a = pack_a,
    .pack_b_f32 = pack_b<&GemmKernels::pack_b_f32>,
    .pack_b_bf16 = pack_b<&GemmKernels::pack_b_bf16>,
    .pack_b_f16 = pack_b<&GemmKernels::pack_b_f16>,
    .pack_b_i8 = nullptr,
};

}  // namespace krea2
