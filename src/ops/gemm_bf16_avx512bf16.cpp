// The GEMM's bf16 variant on AVX512_BF16: a 12x32 microkernel on vdpbf16ps (each 32-bit word of a packed
// panel holds two consecutive depths as bf16, the lower half the even one) and its packers, which round x and
// F32 / F16 weights to bf16 (round to nearest even, vcvtne2ps2bf16) and take BF16 weights as stored.
// Compiled with -mavx512f/bw/vl/dq/bf16 (CMakeLists.txt, *_avx512bf16.cpp) and reached only through
// kGemmKernelsBf16Avx512Bf16 (gemm_dispatch.cpp: avx512 + bf16 compute on a CPU with AVX512_BF16). As in
// gemm_avx512.cpp, everything here has internal linkage and no inline function of a shared header is used,
// so the linker can never pick this file's copy of a shared inline function for code of a lower ISA.
//
// vcvtne2ps2bf16 treats float32 denormal inputs as zero and vdpbf16ps flushes denormal inputs and results:
// values below 2^-126 (~1.2e-38) in magnitude count as zero, far below anything a forward produces.

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

#if !defined(__AVX512F__) || !defined(__AVX512BW__) || !defined(__AVX512VL__) || !defined(__AVX512BF16__)
#error "gemm_bf16_avx512bf16.cpp needs -mavx512f -mavx512bw -mavx512vl -mavx512bf16 (CMakeLists.txt)"
#endif

namespace krea2 {
namespace {

// Register block: 12 rows of x times 32 columns of W^T = 24 zmm accumulators, 2 B vectors (16 columns x one
// depth pair each) and the broadcast A word (one row's depth pair): 27 of the 32 zmm registers; per depth
// pair 2 B loads, 12 broadcasts and 24 vdpbf16ps. On the Sapphire Rapids VM vdpbf16ps issues at one per 2
// cycles (any width, any number of independent chains: it is throughput-bound, not latency-bound), a quarter
// of the two FMAs per cycle, so a step takes ~48 cycles and the loads, the broadcasts and the panel
// bandwidth (a quarter of the f32 kernel's per cycle) are far from limiting; a larger block gains nothing.
constexpr int64_t kMR = 12;
constexpr int64_t kNR = 32;
static_assert(kMR * kNR <= kGemmMaxTile);

// ---------------------------------------------------------------------------------------------------------
// Microkernel (GemmMicrokernel): kc depths = ceil(kc / 2) steps of one depth pair. Named accumulators, as in
// the float32 kernels: GCC keeps indexed arrays of vectors in memory.

// The packed x panel streams from L2: each step prefetches 16 steps (12 lines) ahead into L1, as the f32
// kernel does (a step here reads as many bytes of A, in four times the cycles).
constexpr int64_t kPrefetchA = 16 * kMR;

inline __m512bh as_bf16_pairs(__m512i v) {
  return (__m512bh)v;
}

// The A word of row i (two bf16 depths) broadcast to all 16 lanes, then its dot products with both B
// vectors: c[i][j] += a[i][2s] b[j][2s] + a[i][2s+1] b[j][2s+1].
#define KREA2_ROW(i)                                             \
  av = as_bf16_pairs(_mm512_castps_si512(_mm512_set1_ps(a[i]))); \
  c##i##a = _mm512_dpbf16_ps(c##i##a, av, b0);                   \
  c##i##b = _mm512_dpbf16_ps(c##i##b, av, b1)

#define KREA2_LOOP(steps)                                                     \
  _Pragma("GCC unroll 2") for (int64_t k = 0; k < (steps); ++k) {             \
    _mm_prefetch(reinterpret_cast<const char*>(a + kPrefetchA), _MM_HINT_T0); \
    const __m512bh b0 = as_bf16_pairs(_mm512_load_si512(b));                  \
    const __m512bh b1 = as_bf16_pairs(_mm512_load_si512(b + 16));             \
    __m512bh av;                                                              \
    KREA2_ROW(0);                                                             \
    KREA2_ROW(1);                                                             \
    KREA2_ROW(2);                                                             \
    KREA2_ROW(3);                                                             \
    KREA2_ROW(4);                                                             \
    KREA2_ROW(5);                                                             \
    KREA2_ROW(6);                                                             \
    KREA2_ROW(7);                                                             \
    KREA2_ROW(8);                                                             \
    KREA2_ROW(9);                                                             \
    KREA2_ROW(10);                                                            \
    KREA2_ROW(11);                                                            \
    a += kMR;                                                                 \
    b += kNR;                                                                 \
  }

// Steps before the end of the k loop at which the C tile is prefetched: ~500 cycles at ~48 cycles a step, as
// for the float32 kernels.
constexpr int64_t kPrefetchCSteps = 12;

inline void store_row(float* row, __m512 v0, __m512 v1, bool add) {
  if (add) {
    v0 = _mm512_add_ps(_mm512_loadu_ps(row), v0);
    v1 = _mm512_add_ps(_mm512_loadu_ps(row + 16), v1);
  }
  _mm512_storeu_ps(row, v0);
  _mm512_storeu_ps(row + 16, v1);
}

void kernel_12x32(int64_t kc, const float* __restrict a, const float* __restrict b, float* __restrict c,
                  int64_t ldc, bool add) {
  __m512 c0a = _mm512_setzero_ps(), c0b = _mm512_setzero_ps(), c1a = _mm512_setzero_ps();
  __m512 c1b = _mm512_setzero_ps(), c2a = _mm512_setzero_ps(), c2b = _mm512_setzero_ps();
  __m512 c3a = _mm512_setzero_ps(), c3b = _mm512_setzero_ps(), c4a = _mm512_setzero_ps();
  __m512 c4b = _mm512_setzero_ps(), c5a = _mm512_setzero_ps(), c5b = _mm512_setzero_ps();
  __m512 c6a = _mm512_setzero_ps(), c6b = _mm512_setzero_ps(), c7a = _mm512_setzero_ps();
  __m512 c7b = _mm512_setzero_ps(), c8a = _mm512_setzero_ps(), c8b = _mm512_setzero_ps();
  __m512 c9a = _mm512_setzero_ps(), c9b = _mm512_setzero_ps(), c10a = _mm512_setzero_ps();
  __m512 c10b = _mm512_setzero_ps(), c11a = _mm512_setzero_ps(), c11b = _mm512_setzero_ps();
  const int64_t steps = (kc + 1) / 2;
  const int64_t head = steps > kPrefetchCSteps ? steps - kPrefetchCSteps : 0;
  KREA2_LOOP(head)
  // 32 floats span 2 lines, 3 when y is not 64-byte aligned: the first, middle and last float cover them.
  for (int64_t i = 0; i < kMR; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + 16), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + kNR - 1), _MM_HINT_T0);
  }
  KREA2_LOOP(steps - head)
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

// ---------------------------------------------------------------------------------------------------------
// Packing (GemmPackA / GemmPackB): 16 rows x 32 depths at a time. Each row's 32 depths become 16 words of
// bf16 pairs in one register (rounded, or loaded as stored), then a 16x16 transpose of 32-bit words turns
// rows into depth-pair steps. Rows past the valid ones are zero and depths past kc are masked off the loads
// (zero), so edges take the same path and the word of an odd kc's last depth has a zero upper half.

void pack_a(const GemmLhs& lhs, int64_t m0, int64_t mc, int64_t k0, int64_t kc, float* out) {
  const float* x = lhs.x;
  const int64_t ldx = lhs.ld;
  const int64_t words = (kc + 1) / 2;
  for (int64_t p = 0; p < mc; p += kMR, out += words * kMR) {
    const int64_t rows = mc - p < kMR ? mc - p : kMR;
    const float* src = x + (m0 + p) * ldx + k0;
    for (int64_t k = 0; k < kc; k += 32) {
      const int64_t depth = kc - k < 32 ? kc - k : 32;
      __m512 r[16];
      for (int64_t i = 0; i < 16; ++i)
        r[i] = i < rows ? load32_as_pairs<DType::F32>(
                              reinterpret_cast<const unsigned char*>(src + i * ldx + k), depth)
                        : _mm512_setzero_ps();
      transpose16x16(r);
      for (int64_t j = 0; j < (depth + 1) / 2; ++j)
        _mm512_mask_storeu_ps(out + (k / 2 + j) * kMR, first_lanes16(kMR), r[j]);
    }
  }
}

template <DType kType>
void pack_b(const unsigned char* w, int64_t K, int64_t n0, int64_t nc, int64_t k0, int64_t kc, float* out) {
  pack_b_pairs<kType, kNR>(w, K, n0, nc, k0, kc, out, 0, false);
}

}  // namespace

// Blocking measured on the 2-core Sapphire Rapids VM (48 KiB L1d, 2 MiB L2 per core) at 1088 x {6144 x
// 6144, 16384 x 6144, 6144 x 16384}, BF16 weights, 2 threads, interleaved with a vdpbf16ps loop
// (bench/bench_gemm_modes.cpp): every blocking tried (MC 96 / 144 / 288, KC 256 / 512 / 768 / 1024 depths,
// NC 256 / 512 / 1024) ran at 82-92 % of that loop, within the noise of a shared machine: with the kernel
// bound by vdpbf16ps's issue rate, the operands' traffic is a quarter of the f32 kernel's per cycle. KC 512
// depths (a 32 KiB B micro-panel, as the f32 kernel's KC 256) and the f32 kernel's MC and NC.
const GemmKernels kGemmKernelsBf16Avx512Bf16 = {
    .isa = Isa::kAvx512,
    .compute = Compute::kBf16,
    .name = "avx512-bf16 12x32",
    .mr = kMR,
    .nr = kNR,
    .depth_per_word = 2,
    .a_extra = 0,
    .b_extra = 0,
    .blocking = {144, 512, 512, int64_t(24) << 20},
    .prefetch_weights = false,
    .kernel = kernel_12x32,
    .pack_a = pack_a,
    .pack_b_f32 = pack_b<DType::F32>,
    .pack_b_bf16 = pack_b<DType::BF16>,
    .pack_b_f16 = pack_b<DType::F16>,
    .pack_b_i8 = nullptr,
};

}  // namespace krea2
