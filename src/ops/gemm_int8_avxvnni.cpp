// The int8 compute mode's variant for AVX2-level CPUs with AVX-VNNI (the VEX-encoded vpdpbusd on ymm, e.g.
// Alder Lake and later client cores): a 6x16 microkernel and its packers. Compiled with -mavxvnni on top of
// the AVX2 floor (CMakeLists.txt, *_avxvnni.cpp) and reached only through kGemmKernelsInt8AvxVnni when
// active_isa() is avx2 and the CPU has AVX-VNNI. As in gemm_avx512.cpp, everything but the table has
// internal linkage and no inline function of a shared header is used.
//
// Same offset scheme as the AVX-512 VNNI variant: the packed x holds codes + 128 (u8), each B panel the
// per-column corrections 128 * sum_k w[k][j], subtracted by the kernel; exact in int32.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "ops/gemm_kernels.h"

#if !defined(__AVXVNNI__)
#error "gemm_int8_avxvnni.cpp needs -mavxvnni (set for *_avxvnni.cpp by CMakeLists.txt)"
#endif

namespace krea2 {
namespace {

// Register block: 6 rows x 16 columns = 12 ymm accumulators + 2 B vectors + 1 broadcast A word: 15 of the
// 16 ymm registers, as for the float32 AVX2 kernel.
constexpr int64_t kMR = 6;
constexpr int64_t kNR = 16;

// ---------------------------------------------------------------------------------------------------------
// Microkernel (GemmMicrokernel).

constexpr int64_t kPrefetchCSteps = 80;  // steps before the end at which the C tile is prefetched

#define KREA2_I8_STEP()                                                            \
  do {                                                                             \
    const __m256i b0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(b));     \
    const __m256i b1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(b + 8)); \
    _Pragma("GCC unroll 6") for (int i = 0; i < kMR; ++i) {                        \
      const __m256i av = _mm256_set1_epi32(a[i]);                                  \
      acc0[i] = _mm256_dpbusd_avx_epi32(acc0[i], av, b0);                          \
      acc1[i] = _mm256_dpbusd_avx_epi32(acc1[i], av, b1);                          \
    }                                                                              \
    a += kMR;                                                                      \
    b += kNR;                                                                      \
  } while (false)

// fp-contract=off: the epilogue must round float(sum - correction) * a_scale * b_scale and then the add
// to c separately, never fused (GCC contracts vector mul + add under its default -ffp-contract=fast, and
// did so in one of these kernels), so every int8 variant and the driver's edge tiles (kernel into a
// tile, then c += tile) give bit-identical results.
__attribute__((optimize("fp-contract=off"))) void kernel_6x16(int64_t kc, const float* __restrict a_words,
                                                              const float* __restrict b_words,
                                                              float* __restrict c, int64_t ldc, bool add) {
  const int32_t* a = reinterpret_cast<const int32_t*>(a_words);
  const int32_t* b = reinterpret_cast<const int32_t*>(b_words);
  // Fully unrolled below, so GCC keeps these arrays in registers.
  __m256i acc0[kMR], acc1[kMR];
#pragma GCC unroll 6
  for (int i = 0; i < kMR; ++i) acc0[i] = acc1[i] = _mm256_setzero_si256();
  const int64_t steps = (kc + 3) / 4;
  const int64_t head = steps > kPrefetchCSteps ? steps - kPrefetchCSteps : 0;
#pragma GCC unroll 2
  for (int64_t s = 0; s < head; ++s) KREA2_I8_STEP();
  // 16 floats = 64 bytes straddle two lines when y is not 64-byte aligned: touch both ends.
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
#pragma GCC unroll 6
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
// Packing. Whole 32-depth chunks of full row groups go through 8x8 in-register transposes of 4-byte words;
// the rest (the last partial chunk, short row groups) word by word.

// In-register 8x8 transpose of 32-bit words: on return r[j] holds word j of the input rows r[0..8).
void transpose8x8(__m256i r[8]) {
  __m256i t[8], s[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_epi32(r[i], r[i + 1]);
  }
  for (int g = 0; g < 8; g += 4) {
    s[g + 0] = _mm256_unpacklo_epi64(t[g], t[g + 2]);
    s[g + 1] = _mm256_unpackhi_epi64(t[g], t[g + 2]);
    s[g + 2] = _mm256_unpacklo_epi64(t[g + 1], t[g + 3]);
    s[g + 3] = _mm256_unpackhi_epi64(t[g + 1], t[g + 3]);
  }
  // Half h of s[c] holds word 4h + c of rows 0..3, of s[4 + c] of rows 4..7.
  for (int c = 0; c < 4; ++c) {
    r[c] = _mm256_permute2x128_si256(s[c], s[4 + c], 0x20);
    r[4 + c] = _mm256_permute2x128_si256(s[c], s[4 + c], 0x31);
  }
}

// The 4-byte word of `row` at depths [d, d + 4), `pad` bytes past `kc`.
int32_t load_word(const int8_t* row, int64_t d, int64_t kc, uint8_t pad) {
  uint8_t bytes[4] = {pad, pad, pad, pad};
  std::memcpy(bytes, row + d, size_t(kc - d < 4 ? kc - d : 4));
  int32_t v;
  std::memcpy(&v, bytes, 4);
  return v;
}

// x codes + 128 as u8 (XOR 0x80), code 0 (128) in padding rows and depths, then the row scales. Writes up
// to 2 words past the panel's words (into its scales, written last).
void pack_a(const GemmLhs& lhs, int64_t m0, int64_t mc, int64_t k0, int64_t kc, float* out_words) {
  const int64_t words = (kc + 3) / 4;
  const __m256i offset = _mm256_set1_epi8(char(0x80));
  int32_t* out = reinterpret_cast<int32_t*>(out_words);
  for (int64_t p = 0; p < mc; p += kMR, out += words * kMR + kMR) {
    const int64_t rows = mc - p < kMR ? mc - p : kMR;
    const int8_t* src = lhs.q + (m0 + p) * lhs.ld + k0;
    int64_t k = 0;
    if (rows == kMR) {
      for (; k + 32 <= kc; k += 32) {
        __m256i r[8];
        for (int i = 0; i < kMR; ++i)
          r[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i * lhs.ld + k));
        r[6] = r[7] = _mm256_setzero_si256();
        transpose8x8(r);
        // Ascending overlapping stores: each one's 2 junk lanes are overwritten by the next.
        for (int j = 0; j < 8; ++j)
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + (k / 4 + j) * kMR),
                              _mm256_xor_si256(r[j], offset));
      }
    }
    for (int64_t s = k / 4; s < words; ++s)
      for (int64_t i = 0; i < kMR; ++i)
        out[s * kMR + i] = (i < rows ? load_word(src + i * lhs.ld, 4 * s, kc, 0) : 0) ^ int32_t(0x80808080u);
    float* scales = reinterpret_cast<float*>(out + words * kMR);
    for (int64_t i = 0; i < kMR; ++i) scales[i] = i < rows ? lhs.q_scale[m0 + p + i] : 0.0f;
  }
}

// W^T panels of int8 codes (zero in padding columns and depths), then per column the row scale and
// 128 * (sum of the panel's codes), summed over the packed words with vpdpbusd.
void pack_b_i8(const int8_t* w, const float* row_scale, int64_t K, int64_t n0, int64_t nc, int64_t k0,
               int64_t kc, float* out_words) {
  const int64_t words = (kc + 3) / 4;
  const __m256i u8_128 = _mm256_set1_epi8(char(0x80));
  int32_t* out = reinterpret_cast<int32_t*>(out_words);
  for (int64_t q = 0; q < nc; q += kNR, out += words * kNR + 2 * kNR) {
    const int64_t cols = nc - q < kNR ? nc - q : kNR;
    const int8_t* src = w + (n0 + q) * K + k0;
    int64_t k = 0;
    if (cols == kNR) {
      for (; k + 32 <= kc; k += 32) {
        for (int g = 0; g < kNR; g += 8) {
          __m256i r[8];
          for (int j = 0; j < 8; ++j)
            r[j] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + (g + j) * K + k));
          transpose8x8(r);
          for (int s = 0; s < 8; ++s)
            _mm256_store_si256(reinterpret_cast<__m256i*>(out + (k / 4 + s) * kNR + g), r[s]);
        }
      }
    }
    for (int64_t s = k / 4; s < words; ++s)
      for (int64_t j = 0; j < kNR; ++j)
        out[s * kNR + j] = j < cols ? load_word(src + j * K, 4 * s, kc, 0) : 0;
    __m256i corr0 = _mm256_setzero_si256(), corr1 = _mm256_setzero_si256();
    for (int64_t s = 0; s < words; ++s) {
      corr0 = _mm256_dpbusd_avx_epi32(corr0, u8_128,
                                      _mm256_load_si256(reinterpret_cast<const __m256i*>(out + s * kNR)));
      corr1 = _mm256_dpbusd_avx_epi32(corr1, u8_128,
                                      _mm256_load_si256(reinterpret_cast<const __m256i*>(out + s * kNR + 8)));
    }
    float* scales = reinterpret_cast<float*>(out + words * kNR);
    for (int64_t j = 0; j < kNR; ++j) scales[j] = j < cols ? row_scale[n0 + q + j] : 0.0f;
    _mm256_store_si256(reinterpret_cast<__m256i*>(out + words * kNR + kNR), corr0);
    _mm256_store_si256(reinterpret_cast<__m256i*>(out + words * kNR + kNR + 8), corr1);
  }
}

}  // namespace

// Blocking measured with krea2_bench_gemm_int8 --isa avx2 --cpu-time on the Sapphire Rapids VM (one thread,
// 1088 x {6144 x 6144, 16384 x 6144, 6144 x 16384}): MC 48 ~3 % faster than 144; KC 1024 (a 16 KiB B
// micro-panel) ~5 % faster than 512 and level with 2048; NC 512 level with 256. 345-360 GOP/s, ~85 % of
// the vpdpbusd ymm peak and ~4x the float32 AVX2 GEMM there.
const GemmKernels kGemmKernelsInt8AvxVnni = {
    .isa = Isa::kAvx2,
    .compute = Compute::kInt8,
    .name = "avx2-vnni 6x16 int8",
    .mr = kMR,
    .nr = kNR,
    .depth_per_word = 4,
    .a_extra = kMR,
    .b_extra = 2 * kNR,
    .blocking = {48, 1024, 512, int64_t(96) << 20},
    .prefetch_weights = true,
    .kernel = kernel_6x16,
    .pack_a = pack_a,
    .pack_b_f32 = nullptr,
    .pack_b_bf16 = nullptr,
    .pack_b_f16 = nullptr,
    .pack_b_i8 = pack_b_i8,
};

}  // namespace krea2
