// The GEMM's AVX2 + FMA variant (the build floor): a 6x16 microkernel and its packers.
#include <immintrin.h>

#include <algorithm>

#include "ops/gemm_kernels.h"
#include "ops/simd.h"
#include "ops/weight_elements.h"

namespace krea2 {
namespace {

// Register block: 6 rows of x times 16 columns of W^T = 12 ymm accumulators, plus 2 for the B row and 1 for
// the broadcast A value: 15 of the 16 ymm registers, so nothing spills.
constexpr int64_t kMR = 6;
constexpr int64_t kNR = 16;

// ---------------------------------------------------------------------------------------------------------
// Microkernel (GemmMicrokernel). Twelve named accumulators (not an array): GCC keeps arrays of __m256 indexed
// in loops on the stack.

#define KREA2_GEMM_ROW(i)                     \
  av = _mm256_broadcast_ss(a + (i));          \
  c##i##0 = _mm256_fmadd_ps(av, b0, c##i##0); \
  c##i##1 = _mm256_fmadd_ps(av, b1, c##i##1)

// k loop over `steps` rows of the packed panels, advancing a and b.
#define KREA2_GEMM_LOOP(steps)                                    \
  _Pragma("GCC unroll 4") for (int64_t k = 0; k < (steps); ++k) { \
    const __m256 b0 = _mm256_load_ps(b);                          \
    const __m256 b1 = _mm256_load_ps(b + 8);                      \
    __m256 av;                                                    \
    KREA2_GEMM_ROW(0);                                            \
    KREA2_GEMM_ROW(1);                                            \
    KREA2_GEMM_ROW(2);                                            \
    KREA2_GEMM_ROW(3);                                            \
    KREA2_GEMM_ROW(4);                                            \
    KREA2_GEMM_ROW(5);                                            \
    a += kMR;                                                     \
    b += kNR;                                                     \
  }

// Steps before the end of the k loop at which the C tile is prefetched: late enough that the 12 lines (all in
// one L1 set when ldc is a multiple of 1024 floats, as for most of our widths) are not evicted again before
// use, early enough (~500 cycles) to cover an L3 / DRAM miss. Without any C prefetch the large products run
// ~20 % slower; prefetching at the kernel start instead is ~2 % slower than this.
constexpr int64_t kPrefetchCSteps = 80;

void kernel_6x16(int64_t kc, const float* __restrict a, const float* __restrict b, float* __restrict c,
                 int64_t ldc, bool add) {
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
  __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
  __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
  __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
  __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
  const int64_t head = kc > kPrefetchCSteps ? kc - kPrefetchCSteps : 0;
  KREA2_GEMM_LOOP(head)
  // 16 floats = 64 bytes straddle two lines when y is not 64-byte aligned: touch both ends.
  for (int i = 0; i < kMR; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + kNR - 1), _MM_HINT_T0);
  }
  KREA2_GEMM_LOOP(kc - head)
  auto store_row = [&](float* row, __m256 v0, __m256 v1) {
    if (add) {
      v0 = _mm256_add_ps(_mm256_loadu_ps(row), v0);
      v1 = _mm256_add_ps(_mm256_loadu_ps(row + 8), v1);
    }
    _mm256_storeu_ps(row, v0);
    _mm256_storeu_ps(row + 8, v1);
  };
  store_row(c + 0 * ldc, c00, c01);
  store_row(c + 1 * ldc, c10, c11);
  store_row(c + 2 * ldc, c20, c21);
  store_row(c + 3 * ldc, c30, c31);
  store_row(c + 4 * ldc, c40, c41);
  store_row(c + 5 * ldc, c50, c51);
}

#undef KREA2_GEMM_LOOP
#undef KREA2_GEMM_ROW

// ---------------------------------------------------------------------------------------------------------
// Packing (GemmPackA / GemmPackB).

// Writes up to 2 floats past the panel it is filling (overwritten by what follows; kGemmPackSlack after the
// last).
void pack_a(const GemmLhs& lhs, int64_t m0, int64_t mc, int64_t k0, int64_t kc, float* out) {
  const float* x = lhs.x;
  const int64_t ldx = lhs.ld;
  for (int64_t p = 0; p < mc; p += kMR, out += kc * kMR) {
    const int64_t rows = std::min(kMR, mc - p);
    const float* src = x + (m0 + p) * ldx + k0;
    int64_t k = 0;
    if (rows == kMR) {
      for (; k + 8 <= kc; k += 8) {
        __m256 r[8];
        for (int i = 0; i < kMR; ++i) r[i] = _mm256_loadu_ps(src + i * ldx + k);
        r[6] = r[7] = _mm256_setzero_ps();
        transpose8x8(r);
        // Ascending overlapping stores: each one's 2 junk lanes are overwritten by the next.
        for (int j = 0; j < 8; ++j) _mm256_storeu_ps(out + (k + j) * kMR, r[j]);
      }
    }
    for (; k < kc; ++k) {
      for (int64_t i = 0; i < kMR; ++i) out[k * kMR + i] = i < rows ? src[i * ldx + k] : 0.0f;
    }
  }
}

template <DType kType>
void pack_b(const unsigned char* w, int64_t K, int64_t n0, int64_t nc, int64_t k0, int64_t kc, float* out) {
  constexpr int64_t es = kWeightElementBytes<kType>;
  for (int64_t q = 0; q < nc; q += kNR, out += kc * kNR) {
    const int64_t cols = std::min(kNR, nc - q);
    const unsigned char* src = w + ((n0 + q) * K + k0) * es;
    int64_t k = 0;
    if (cols == kNR) {
      for (; k + 8 <= kc; k += 8) {
        __m256 lo[8], hi[8];
        for (int j = 0; j < 8; ++j) {
          lo[j] = load8_weights<kType>(src + (j * K + k) * es);
          hi[j] = load8_weights<kType>(src + ((j + 8) * K + k) * es);
        }
        transpose8x8(lo);
        transpose8x8(hi);
        for (int j = 0; j < 8; ++j) {
          _mm256_store_ps(out + (k + j) * kNR, lo[j]);
          _mm256_store_ps(out + (k + j) * kNR + 8, hi[j]);
        }
      }
    }
    for (; k < kc; ++k) {
      for (int64_t j = 0; j < kNR; ++j)
        out[k * kNR + j] = j < cols ? load1_weight<kType>(src + (j * K + k) * es) : 0.0f;
    }
  }
}

}  // namespace

// Blocking measured on the project's Zen 4 EPYC VM (2 cores, 32 KiB L1d and 1 MiB L2 per core, 1088 x
// 6144 x 6144): the packed A block (MC x KC = 144 KiB) sits in L2 and a B micro-panel (KC x 16 = 16 KiB) in
// L1. NC caps a thread's column chunk: a 256-wide packed B chunk (256 KiB) stays in L2 beside the A block.
// KC 384 and MC 288 measured the same or slower.
const GemmKernels kGemmKernelsAvx2 = {
    .isa = Isa::kAvx2,
    .compute = Compute::kF32,
    .name = "avx2 6x16",
    .mr = kMR,
    .nr = kNR,
    .depth_per_word = 1,
    .a_extra = 0,
    .b_extra = 0,
    .blocking = {144, 256, 256, int64_t(24) << 20},
    .prefetch_weights = true,
    .kernel = kernel_6x16,
    .pack_a = pack_a,
    .pack_b_f32 = pack_b<DType::F32>,
    .pack_b_bf16 = pack_b<DType::BF16>,
    .pack_b_f16 = pack_b<DType::F16>,
    .pack_b_i8 = nullptr,
};

}  // namespace krea2
