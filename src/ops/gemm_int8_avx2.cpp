// The int8 compute mode's AVX2 variant, for CPUs without VNNI: a 4x16 microkernel of exact integer products
// and its packers.
//
// AVX2 has no 4-way byte dot product into int32, only vpmaddubsw (u8 x s8, adjacent pairs summed into int16
// with saturation) and vpmaddwd (int16 pairs into int32). With signed codes within +-127 the pair sums are
// exact if the unsigned operand is |b| and the signed one a carries b's sign (vpsignb(a, b) = a * sign(b)):
// |a b + a' b'| <= 2 * 127 * 127 = 32258 < 32767, no saturation. vpmaddwd with ones then adds the two pairs
// of each 4-depth word into int32. So the panels hold the codes as they are and the corrections are zero.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "ops/gemm_kernels.h"
#include "ops/simd.h"

namespace krea2 {
namespace {

// Register block: 4 rows x 16 columns = 8 ymm accumulators, 2 B vectors and their absolute values, the
// broadcast A word, one temporary and the int16 ones: 15 of the 16 ymm registers. Each (row, B vector) pair
// costs 4 instructions (vpsignb, vpmaddubsw, vpmaddwd, vpaddd) per 32 multiply-adds, 3 of them on the two
// ports that multiply, so the block shape barely matters beyond sharing each |b| between the rows (taking
// |a| per row instead ran ~5 % slower).
constexpr int64_t kMR = 4;
constexpr int64_t kNR = 16;

// ---------------------------------------------------------------------------------------------------------
// Microkernel (GemmMicrokernel). Arrays of accumulators fully unrolled (constant indices), which GCC keeps in
// registers.

constexpr int64_t kPrefetchCSteps = 40;  // steps before the end at which the C tile is prefetched

#define KREA2_I8_STEP()                                                                            \
  do {                                                                                             \
    const __m256i b0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(b));                     \
    const __m256i b1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(b + 8));                 \
    const __m256i abs0 = _mm256_abs_epi8(b0), abs1 = _mm256_abs_epi8(b1);                          \
    _Pragma("GCC unroll 4") for (int i = 0; i < kMR; ++i) {                                        \
      const __m256i av = _mm256_set1_epi32(a[i]);                                                  \
      acc0[i] = _mm256_add_epi32(                                                                  \
          acc0[i], _mm256_madd_epi16(_mm256_maddubs_epi16(abs0, _mm256_sign_epi8(av, b0)), ones)); \
      acc1[i] = _mm256_add_epi32(                                                                  \
          acc1[i], _mm256_madd_epi16(_mm256_maddubs_epi16(abs1, _mm256_sign_epi8(av, b1)), ones)); \
    }                                                                                              \
    a += kMR;                                                                                      \
    b += kNR;                                                                                      \
  } while (false)

// fp-contract=off: the epilogue must round float(sum - correction) * a_scale * b_scale and then the add
// to c separately, never fused (GCC contracts vector mul + add under its default -ffp-contract=fast, and
// did so in one of these kernels), so every int8 variant and the driver's edge tiles (kernel into a
// tile, then c += tile) give bit-identical results.
__attribute__((optimize("fp-contract=off"))) void kernel_4x16(int64_t kc, const float* __restrict a_words,
                                                              const float* __restrict b_words,
                                                              float* __restrict c, int64_t ldc, bool add) {
  const int32_t* a = reinterpret_cast<const int32_t*>(a_words);
  const int32_t* b = reinterpret_cast<const int32_t*>(b_words);
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i acc0[kMR], acc1[kMR];
#pragma GCC unroll 4
  for (int i = 0; i < kMR; ++i) acc0[i] = acc1[i] = _mm256_setzero_si256();
  const int64_t steps = (kc + 3) / 4;
  const int64_t head = steps > kPrefetchCSteps ? steps - kPrefetchCSteps : 0;
#pragma GCC unroll 2
  for (int64_t s = 0; s < head; ++s) KREA2_I8_STEP();
  for (int64_t i = 0; i < kMR; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + kNR - 1), _MM_HINT_T0);
  }
#pragma GCC unroll 2
  for (int64_t s = head; s < steps; ++s) KREA2_I8_STEP();
  // c = (add ? c : 0) + float(sum - correction) * a_scale * b_scale, in the order of the other int8 kernels.
  const float* a_scale = reinterpret_cast<const float*>(a);
  const float* b_scale = reinterpret_cast<const float*>(b);
  const __m256 bs0 = _mm256_load_ps(b_scale), bs1 = _mm256_load_ps(b_scale + 8);
  const __m256i corr0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(b + kNR));
  const __m256i corr1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(b + kNR + 8));
#pragma GCC unroll 4
  for (int i = 0; i < kMR; ++i) {
    const __m256 as = _mm256_set1_ps(a_scale[i]);
    __m256 v0 = _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(acc0[i], corr0)), as), bs0);
    __m256 v1 = _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(acc1[i], corr1)), as), bs1);
    float* row = c + i * ldc;
    if (add) {
      v0 = _mm256_add_ps(_mm256_loadu_ps(row), v0);
      v1 = _mm256_add_ps(_mm256_loadu_ps(row + 8), v1);
    }
    _mm256_storeu_ps(row, v0);
    _mm256_storeu_ps(row + 8, v1);
  }
}

#undef KREA2_I8_STEP

// ---------------------------------------------------------------------------------------------------------
// Packing. Whole 32-depth chunks of full row groups go through in-register transposes of 4-byte words; the
// rest (the last partial chunk, short row groups) word by word.

// The 4-byte word of `row` at depths [d, d + 4), zero past `kc`.
int32_t load_word(const int8_t* row, int64_t d, int64_t kc) {
  int32_t v = 0;
  std::memcpy(&v, row + d, size_t(std::min<int64_t>(4, kc - d)));
  return v;
}

// Signed codes, then the row scales.
void pack_a(const GemmLhs& lhs, int64_t m0, int64_t mc, int64_t k0, int64_t kc, float* out_words) {
  const int64_t words = (kc + 3) / 4;
  int32_t* out = reinterpret_cast<int32_t*>(out_words);
  for (int64_t p = 0; p < mc; p += kMR, out += words * kMR + kMR) {
    const int64_t rows = std::min(kMR, mc - p);
    const int8_t* src = lhs.q + (m0 + p) * lhs.ld + k0;
    int64_t k = 0;
    if (rows == kMR) {
      for (; k + 32 <= kc; k += 32) {
        __m256i r[kMR];
        for (int i = 0; i < kMR; ++i)
          r[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i * lhs.ld + k));
        // 4x4 word transposes inside each 128-bit half: half h of t[j] holds word 4h + j of the 4 rows.
        const __m256i u0 = _mm256_unpacklo_epi32(r[0], r[1]), u1 = _mm256_unpackhi_epi32(r[0], r[1]);
        const __m256i u2 = _mm256_unpacklo_epi32(r[2], r[3]), u3 = _mm256_unpackhi_epi32(r[2], r[3]);
        const __m256i t[4] = {_mm256_unpacklo_epi64(u0, u2), _mm256_unpackhi_epi64(u0, u2),
                              _mm256_unpacklo_epi64(u1, u3), _mm256_unpackhi_epi64(u1, u3)};
        int32_t* dst = out + k / 4 * kMR;
        for (int j = 0; j < 4; ++j) {
          _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + j * kMR), _mm256_castsi256_si128(t[j]));
          _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + (4 + j) * kMR),
                           _mm256_extracti128_si256(t[j], 1));
        }
      }
    }
    for (int64_t s = k / 4; s < words; ++s)
      for (int64_t i = 0; i < kMR; ++i)
        out[s * kMR + i] = i < rows ? load_word(src + i * lhs.ld, 4 * s, kc) : 0;
    float* scales = reinterpret_cast<float*>(out + words * kMR);
    for (int64_t i = 0; i < kMR; ++i) scales[i] = i < rows ? lhs.q_scale[m0 + p + i] : 0.0f;
  }
}

// W^T panels of signed codes, then the column scales and zero corrections.
void pack_b_i8(const int8_t* w, const float* row_scale, int64_t K, int64_t n0, int64_t nc, int64_t k0,
               int64_t kc, float* out_words) {
  const int64_t words = (kc + 3) / 4;
  int32_t* out = reinterpret_cast<int32_t*>(out_words);
  for (int64_t q = 0; q < nc; q += kNR, out += words * kNR + 2 * kNR) {
    const int64_t cols = std::min(kNR, nc - q);
    const int8_t* src = w + (n0 + q) * K + k0;
    int64_t k = 0;
    if (cols == kNR) {
      for (; k + 32 <= kc; k += 32) {
        for (int g = 0; g < kNR; g += 8) {
          __m256 r[8];
          for (int j = 0; j < 8; ++j)
            r[j] = _mm256_loadu_ps(reinterpret_cast<const float*>(src + (g + j) * K + k));
          transpose8x8(r);  // r[s] = word s of the 8 columns (moved as bits, never as float values)
          for (int s = 0; s < 8; ++s)
            _mm256_store_ps(reinterpret_cast<float*>(out + (k / 4 + s) * kNR + g), r[s]);
        }
      }
    }
    for (int64_t s = k / 4; s < words; ++s)
      for (int64_t j = 0; j < kNR; ++j) out[s * kNR + j] = j < cols ? load_word(src + j * K, 4 * s, kc) : 0;
    float* scales = reinterpret_cast<float*>(out + words * kNR);
    for (int64_t j = 0; j < kNR; ++j) scales[j] = j < cols ? row_scale[n0 + q + j] : 0.0f;
    std::memset(out + words * kNR + kNR, 0, kNR * sizeof(int32_t));
  }
}

}  // namespace

// Blocking as measured for the AVX-VNNI variant (same 16-column panels; this kernel cannot be reached through
// the driver on the CPUs with AVX-VNNI we measure on). On L1 panels it runs ~1.2x the float32 AVX2 kernel
// (131 vs 108 G(FL)OP/s on a Sapphire Rapids core, CPU time): each 32 multiply-adds take 3 instructions on
// the two multiplying ports (vpsignb, vpmaddubsw, vpmaddwd) where float32 takes 4 FMAs on the same two.
const GemmKernels kGemmKernelsInt8Avx2 = {
    .isa = Isa::kAvx2,
    .compute = Compute::kInt8,
    .name = "avx2 4x16 int8",
    .mr = kMR,
    .nr = kNR,
    .depth_per_word = 4,
    .a_extra = kMR,
    .b_extra = 2 * kNR,
    .blocking = {48, 1024, 512, int64_t(96) << 20},
    .prefetch_weights = true,
    .kernel = kernel_4x16,
    .pack_a = pack_a,
    .pack_b_f32 = nullptr,
    .pack_b_bf16 = nullptr,
    .pack_b_f16 = nullptr,
    .pack_b_i8 = pack_b_i8,
};

}  // namespace krea2
