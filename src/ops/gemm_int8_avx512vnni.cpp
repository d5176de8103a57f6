// The int8 compute mode's AVX-512 variant: a 12x32 vpdpbusd microkernel (AVX512_VNNI) and its packers.
// Compiled with -mavx512f/bw/vl/dq/vnni (CMakeLists.txt, *_avx512vnni.cpp) and reached only through
// kGemmKernelsInt8Avx512Vnni when active_isa() is avx512 and the CPU has AVX512_VNNI. As in gemm_avx512.cpp,
// everything but the table has internal linkage and no inline function of a shared header is used.
//
// vpdpbusd multiplies unsigned by signed bytes, so the packed x holds its codes + 128 (u8) and each packed B
// panel carries, per column, the correction 128 * sum_k w[k][j] over the panel's depths, which the kernel
// subtracts: sum_k (a + 128) w - 128 sum_k w = sum_k a w, exact in int32 (|terms| <= 255 * 127, so a panel
// of up to 66 000 depths cannot overflow). Depths past the end are zero in B (so whatever A holds there adds
// nothing) and code 0 (byte 128) in A.

// GCC 12's AVX-512 intrinsics start from a self-initialised "undefined" vector and warn about it wherever
// they are inlined (GCC bug 105593); the warning is about the header, not about our code.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <cstdint>

#include "ops/gemm_kernels.h"
#include "ops/pack_avx512.h"

#if !defined(__AVX512F__) || !defined(__AVX512BW__) || !defined(__AVX512VNNI__)
#error "gemm_int8_avx512vnni.cpp needs -mavx512f -mavx512bw -mavx512vnni (set by CMakeLists.txt)"
#endif

namespace krea2 {
namespace {

// Register block: 12 rows x 32 columns = 24 zmm accumulators + 2 B vectors + 1 broadcast A word, as for the
// float32 kernel; per 4-depth step 2 B loads, 12 broadcasts and 24 vpdpbusd. On L1 panels it runs at ~86 %
// of the vpdpbusd chain peak of a Sapphire Rapids core (636-669 of 742-784 GOP/s, CPU time); the GEMM at
// ~65-70 %.
constexpr int64_t kMR = 12;
constexpr int64_t kNR = 32;
constexpr int kVecs = int(kNR / 16);
static_assert(kMR * kNR <= kGemmMaxTile && kMR <= 16 && kNR % 16 == 0);

// ---------------------------------------------------------------------------------------------------------
// Microkernel (GemmMicrokernel).

// The packed x panel streams from L2 (a new 12-word-wide panel each call): each step prefetches 16 steps
// (768 bytes) ahead into L1, running into the next panel near the end (8 to 48 steps measured the same).
constexpr int64_t kPrefetchA = 16 * kMR;

// Steps before the end of the depth loop at which the C tile (12 rows x 128 bytes) is prefetched: ~500
// cycles at 12 cycles a step, as for the float32 kernel (20 to 120 measured the same within noise).
constexpr int64_t kPrefetchCSteps = 40;

// One 4-depth step: acc[v][i] += a[i] (4 bytes, broadcast) . b[16 v .. 16 v + 16) (4 bytes per lane).
#define KREA2_I8_STEP()                                                                            \
  do {                                                                                             \
    _mm_prefetch(reinterpret_cast<const char*>(a + kPrefetchA), _MM_HINT_T0);                      \
    __m512i bv[kVecs];                                                                             \
    _Pragma("GCC unroll 4") for (int v = 0; v < kVecs; ++v) bv[v] = _mm512_load_si512(b + 16 * v); \
    _Pragma("GCC unroll 16") for (int i = 0; i < kMR; ++i) {                                       \
      const __m512i av = _mm512_set1_epi32(a[i]);                                                  \
      _Pragma("GCC unroll 4") for (int v = 0; v < kVecs; ++v) acc[v][i] =                          \
          _mm512_dpbusd_epi32(acc[v][i], av, bv[v]);                                               \
    }                                                                                              \
    a += kMR;                                                                                      \
    b += kNR;                                                                                      \
  } while (false)

// fp-contract=off: the epilogue must round float(sum - correction) * a_scale * b_scale and then the add
// to c separately, never fused (GCC contracts vector mul + add under its default -ffp-contract=fast, and
// did so in one of these kernels), so every int8 variant and the driver's edge tiles (kernel into a
// tile, then c += tile) give bit-identical results.
__attribute__((optimize("fp-contract=off"))) void kernel(int64_t kc, const float* __restrict a_words,
                                                         const float* __restrict b_words, float* __restrict c,
                                                         int64_t ldc, bool add) {
  const int32_t* a = reinterpret_cast<const int32_t*>(a_words);
  const int32_t* b = reinterpret_cast<const int32_t*>(b_words);
  // Every loop over the accumulators is fully unrolled, so GCC keeps them in registers. Its allocation of
  // all 32 zmm registers is fragile, though: small changes of the loop structure (one depth loop instead of
  // the two around the C prefetch, other unroll factors, 14 rows) made it copy accumulators and store some
  // to the stack every step, up to ~40 % slower; check the disassembly of the loop after changing it.
  __m512i acc[kVecs][kMR];
#pragma GCC unroll 16
  for (int i = 0; i < kMR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < kVecs; ++v) acc[v][i] = _mm512_setzero_si512();
  const int64_t steps = (kc + 3) / 4;
  const int64_t head = steps > kPrefetchCSteps ? steps - kPrefetchCSteps : 0;
#pragma GCC unroll 1
  for (int64_t s = 0; s < head; ++s) KREA2_I8_STEP();
  // kNR floats of a row, one line more when y is not 64-byte aligned: prefetch every 16th and the last.
  for (int64_t i = 0; i < kMR; ++i) {
    for (int64_t j = 0; j < kNR; j += 16)
      _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + j), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + kNR - 1), _MM_HINT_T0);
  }
#pragma GCC unroll 1
  for (int64_t s = head; s < steps; ++s) KREA2_I8_STEP();
  // c = (add ? c : 0) + float(sum - correction) * a_scale * b_scale, in that order (as the other int8
  // kernels, so all agree bit for bit on equal blockings).
  const float* a_scale = reinterpret_cast<const float*>(a);
  const float* b_scale = reinterpret_cast<const float*>(b);
#pragma GCC unroll 16
  for (int i = 0; i < kMR; ++i) {
    const __m512 as = _mm512_set1_ps(a_scale[i]);
    float* row = c + i * ldc;
#pragma GCC unroll 4
    for (int v = 0; v < kVecs; ++v) {
      const __m512i corr = _mm512_load_si512(b + kNR + 16 * v);
      __m512 r = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[v][i], corr));
      r = _mm512_mul_ps(_mm512_mul_ps(r, as), _mm512_load_ps(b_scale + 16 * v));
      if (add) r = _mm512_add_ps(_mm512_loadu_ps(row + 16 * v), r);
      _mm512_storeu_ps(row + 16 * v, r);
    }
  }
}

#undef KREA2_I8_STEP

// ---------------------------------------------------------------------------------------------------------
// Packing: 16 rows x 64 depths (16 words of 4 bytes) at a time, the words transposed in registers. Rows
// past the valid ones are zero and depths past kc are masked off the loads, so edges take the same path.

// x codes + 128 as u8 (XOR 0x80 flips a two's-complement byte into its offset-binary value), then the row
// scales. Writes nothing past its panels.
void pack_a(const GemmLhs& lhs, int64_t m0, int64_t mc, int64_t k0, int64_t kc, float* out_words) {
  const int64_t words = (kc + 3) / 4;
  const __m512i offset = _mm512_set1_epi8(char(0x80));
  int32_t* out = reinterpret_cast<int32_t*>(out_words);
  for (int64_t p = 0; p < mc; p += kMR, out += words * kMR + kMR) {
    const int64_t rows = mc - p < kMR ? mc - p : kMR;
    const int8_t* src = lhs.q + (m0 + p) * lhs.ld + k0;
    for (int64_t k = 0; k < kc; k += 64) {
      const __mmask64 depths = first_bytes64(kc - k);
      __m512i r[16];
      for (int64_t i = 0; i < 16; ++i)
        r[i] = i < rows ? _mm512_maskz_loadu_epi8(depths, src + i * lhs.ld + k) : _mm512_setzero_si512();
      transpose16x16(r);
      const int64_t chunk_words = (kc - k + 3) / 4 < 16 ? (kc - k + 3) / 4 : 16;
      for (int64_t j = 0; j < chunk_words; ++j)
        _mm512_mask_storeu_epi32(out + (k / 4 + j) * kMR, first_lanes16(kMR), _mm512_xor_si512(r[j], offset));
    }
    float* scales = reinterpret_cast<float*>(out + words * kMR);
    for (int64_t i = 0; i < kMR; ++i) scales[i] = i < rows ? lhs.q_scale[m0 + p + i] : 0.0f;
  }
}

// W^T panels of int8 codes, then per column the row scale and 128 * (sum of the panel's codes).
void pack_b_i8(const int8_t* w, const float* row_scale, int64_t K, int64_t n0, int64_t nc, int64_t k0,
               int64_t kc, float* out_words) {
  const int64_t words = (kc + 3) / 4;
  const __m512i u8_128 = _mm512_set1_epi8(char(0x80));  // 128 as the unsigned operand of vpdpbusd
  int32_t* out = reinterpret_cast<int32_t*>(out_words);
  for (int64_t q = 0; q < nc; q += kNR, out += words * kNR + 2 * kNR) {
    for (int64_t g = 0; g < kNR; g += 16) {
      const int64_t cols = nc - q - g;  // valid weight rows of this group of 16 (may be <= 0)
      const int8_t* src = w + (n0 + q + g) * K + k0;
      __m512i corr = _mm512_setzero_si512();
      for (int64_t k = 0; k < kc; k += 64) {
        const __mmask64 depths = first_bytes64(kc - k);
        __m512i r[16];
        for (int64_t j = 0; j < 16; ++j)
          r[j] = j < cols ? _mm512_maskz_loadu_epi8(depths, src + j * K + k) : _mm512_setzero_si512();
        transpose16x16(r);
        const int64_t chunk_words = (kc - k + 3) / 4 < 16 ? (kc - k + 3) / 4 : 16;
        for (int64_t j = 0; j < chunk_words; ++j) {
          _mm512_store_si512(out + (k / 4 + j) * kNR + g, r[j]);
          corr = _mm512_dpbusd_epi32(corr, u8_128, r[j]);
        }
      }
      const __mmask16 valid = first_lanes16(cols);
      _mm512_store_ps(out + words * kNR + g, _mm512_maskz_loadu_ps(valid, row_scale + n0 + q + g));
      _mm512_store_si512(out + words * kNR + kNR + g, corr);
    }
  }
}

}  // namespace

// Blocking measured on the 2-core Sapphire Rapids Xeon VM (48 KiB L1d, 2 MiB L2 per core) with
// krea2_bench_gemm_int8 --cpu-time (CPU time: the VM's cores were shared with other work) at 1088 x {6144 x
// 6144, 16384 x 6144, 6144 x 16384}, interleaved: MC 48 ~3-5 % faster than 144 and ~6 % than 288 (12 and 24
// the same as 48); KC 2048 within ~2 % of 1024 (ahead on K = 6144, level on K = 16384), 512 ~5 % slower,
// 3072 ~4 % slower at K = 16384; NC 512 the same as or ~2 % faster than 1024. The 8x48 and 6x64 blocks
// (fewer loads per vpdpbusd) ran ~5 % faster than 12x32 on L1 panels but the same within noise in the
// GEMM. pack_limit 96 Mi depths = 96 MiB of packed x, the float32 kernels' memory bound.
const GemmKernels kGemmKernelsInt8Avx512Vnni = {
    .isa = Isa::kAvx512,
    .compute = Compute::kInt8,
    .name = "avx512-vnni 12x32 int8",
    .mr = kMR,
    .nr = kNR,
    .depth_per_word = 4,
    .a_extra = kMR,
    .b_extra = 2 * kNR,
    .blocking = {48, 2048, 512, int64_t(96) << 20},
    .prefetch_weights = false,
    .kernel = kernel,
    .pack_a = pack_a,
    .pack_b_f32 = nullptr,
    .pack_b_bf16 = nullptr,
    .pack_b_f16 = nullptr,
    .pack_b_i8 = pack_b_i8,
};

}  // namespace krea2
