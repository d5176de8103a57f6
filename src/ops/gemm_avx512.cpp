// The GEMM's AVX-512 variant: a 12x32 microkernel on zmm registers and its packers (16x16 in-register
// transposes, masked loads for the edges). Compiled with -mavx512f/bw/vl/dq (CMakeLists.txt, *_avx512.cpp)
// and reached only through kGemmKernelsAvx512 when active_isa() is avx512. Everything here has internal
// linkage and no inline function of a shared header is used (the object file defines only local symbols and
// the table), so the linker can never pick an AVX-512 copy of a shared inline function for the AVX2 code.

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

#if !defined(__AVX512F__) || !defined(__AVX512BW__) || !defined(__AVX512VL__)
#error "gemm_avx512.cpp needs -mavx512f -mavx512bw -mavx512vl (set for *_avx512.cpp by CMakeLists.txt)"
#endif

namespace krea2 {
namespace {

// Register block: 12 rows of x times 32 columns of W^T = 24 zmm accumulators, plus 2 for the B row and 1
// for the broadcast A value: 27 of the 32 zmm registers. Measured on a Sapphire Rapids Xeon VM (2 x 512-bit
// FMA per cycle, latency 4), one core, operands in L1, depth 256, against a 225 GFLOP/s FMA loop: 12x32 ran
// at 208 GFLOP/s (92 %), 14x32 (28 accumulators, 31 registers) 210, 8x48 (3 B loads per 8 broadcasts) 201,
// 6x64 199. 14x32 is within noise of 12x32 but leaves a 14-row edge panel on the bench's 1088 rows and
// makes MC a multiple of 14; 12x32 keeps MR and NR multiples of the AVX2 block's 6 and 16.
constexpr int64_t kMR = 12;
constexpr int64_t kNR = 32;
static_assert(kMR * kNR <= kGemmMaxTile);

// ---------------------------------------------------------------------------------------------------------
// Microkernel (GemmMicrokernel). Named accumulators, as in the AVX2 kernel: GCC keeps indexed arrays of
// vectors in memory.

// The packed x panel streams from L2 (a new 12 x kc panel each call, the next one right after it): each k
// step prefetches 16 steps (12 lines) ahead into L1, running into the next panel near the end.
constexpr int64_t kPrefetchA = 16 * kMR;

#define KREA2_ROW(i)                          \
  av = _mm512_set1_ps(a[i]);                  \
  c##i##a = _mm512_fmadd_ps(av, b0, c##i##a); \
  c##i##b = _mm512_fmadd_ps(av, b1, c##i##b)

#define KREA2_LOOP(steps)                                                     \
  _Pragma("GCC unroll 2") for (int64_t k = 0; k < (steps); ++k) {             \
    _mm_prefetch(reinterpret_cast<const char*>(a + kPrefetchA), _MM_HINT_T0); \
    const __m512 b0 = _mm512_load_ps(b);                                      \
    const __m512 b1 = _mm512_load_ps(b + 16);                                 \
    __m512 av;                                                                \
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

// Steps before the end of the k loop at which the C tile (12 rows x 128 bytes) is prefetched: ~500 cycles at
// 12 cycles a step, as for the AVX2 kernel.
constexpr int64_t kPrefetchCSteps = 40;

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
  const int64_t head = kc > kPrefetchCSteps ? kc - kPrefetchCSteps : 0;
  KREA2_LOOP(head)
  // 32 floats span 2 lines, 3 when y is not 64-byte aligned: the first, middle and last float cover them.
  for (int64_t i = 0; i < kMR; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + 16), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + kNR - 1), _MM_HINT_T0);
  }
  KREA2_LOOP(kc - head)
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
// Packing (GemmPackA / GemmPackB): 16 rows x 16 depths at a time, transposed in registers. Rows past the
// valid ones are zero and depths past kc are masked off the loads, so edges take the same path.

// Up to 16 consecutive weight elements as float32 (lanes past `lanes` zero; unaligned: weights come from an
// mmap). Masked lanes are never read, so a load at the end of the weight cannot fault.
template <DType kType>
inline __m512 load16_weights(const unsigned char* p, __mmask16 lanes) {
  if constexpr (kType == DType::F32) {
    return _mm512_maskz_loadu_ps(lanes, p);
  } else {
    const __m256i h = _mm256_maskz_loadu_epi16(lanes, p);
    if constexpr (kType == DType::BF16)
      return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    return _mm512_cvtph_ps(h);
  }
}

void pack_a(const GemmLhs& lhs, int64_t m0, int64_t mc, int64_t k0, int64_t kc, float* out) {
  const float* x = lhs.x;
  const int64_t ldx = lhs.ld;
  for (int64_t p = 0; p < mc; p += kMR, out += kc * kMR) {
    const int64_t rows = mc - p < kMR ? mc - p : kMR;
    const float* src = x + (m0 + p) * ldx + k0;
    for (int64_t k = 0; k < kc; k += 16) {
      const int64_t depth = kc - k < 16 ? kc - k : 16;
      const __mmask16 lanes = first_lanes16(depth);
      __m512 r[16];
      for (int64_t i = 0; i < 16; ++i)
        r[i] = i < rows ? _mm512_maskz_loadu_ps(lanes, src + i * ldx + k) : _mm512_setzero_ps();
      transpose16x16(r);
      for (int64_t j = 0; j < depth; ++j)
        _mm512_mask_storeu_ps(out + (k + j) * kMR, first_lanes16(kMR), r[j]);
    }
  }
}

template <DType kType>
void pack_b(const unsigned char* w, int64_t K, int64_t n0, int64_t nc, int64_t k0, int64_t kc, float* out) {
  constexpr int64_t es = kType == DType::F32 ? 4 : 2;
  for (int64_t q = 0; q < nc; q += kNR, out += kc * kNR) {
    for (int64_t g = 0; g < kNR; g += 16) {
      const int64_t cols = nc - q - g;  // valid weight rows of this group of 16 (may be <= 0)
      const unsigned char* src = w + ((n0 + q + g) * K + k0) * es;
      for (int64_t k = 0; k < kc; k += 16) {
        const int64_t depth = kc - k < 16 ? kc - k : 16;
        const __mmask16 lanes = first_lanes16(depth);
        __m512 r[16];
        for (int64_t j = 0; j < 16; ++j)
          r[j] = j < cols ? load16_weights<kType>(src + (j * K + k) * es, lanes) : _mm512_setzero_ps();
        transpose16x16(r);
        for (int64_t j = 0; j < depth; ++j) _mm512_store_ps(out + (k + j) * kNR + g, r[j]);
      }
    }
  }
}

}  // namespace

// Blocking measured on 2-core Xeon VMs (48 KiB L1d and 2 MiB L2 per core) at the bench forward's shapes
// (1088 x {6144, 16384, 1536} x {6144, 16384}), interleaved: MC 144 as for AVX2 (96 and 288 within noise);
// NC 512 (~5 % faster than 256: half the passes over the packed x per product; 1024 the same); KC 1024: on
// 2026-12-04 the B2 forward's blocks' GEMMs ran 1.1-2.1 % faster than at KC 256 in each of 5 interleaved
// pairs (`krea2 bench ... --gemm-blocking 144,1024,512`), the text encoder the same within noise (-0.9 /
// +1.6 %): a quarter of the read-modify-write passes over y's column chunk, which (2.2 MiB for 1088 rows)
// lives in L3, outweighs the B micro-panel (128 KiB) streaming from L2 instead of sitting in L1 (the KC 256
// choice of an earlier VM, where 384 and 512 measured the same or slower). No weight prefetch: ~2 % faster
// without (again within noise on 2026-12-04).
const GemmKernels kGemmKernelsAvx512 = {
    .isa = Isa::kAvx512,
    .compute = Compute::kF32,
    .name = "avx512 12x32",
    .mr = kMR,
    .nr = kNR,
    .depth_per_word = 1,
    .a_extra = 0,
    .b_extra = 0,
    .blocking = {144, 1024, 512, int64_t(24) << 20},
    .prefetch_weights = false,
    .kernel = kernel_12x32,
    .pack_a = pack_a,
    .pack_b_f32 = pack_b<DType::F32>,
    .pack_b_bf16 = pack_b<DType::BF16>,
    .pack_b_f16 = pack_b<DType::F16>,
    .pack_b_i8 = nullptr,
};

}  // namespace krea2
