#include "ops/gemm.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <new>
#include <stdexcept>
#include <string>

#include "ops/simd.h"
#include "tensor/convert.h"

namespace krea2 {
namespace {

// Register block: 6 rows of x times 16 columns of W^T = 12 ymm accumulators, plus 2 for the B row and 1 for
// the broadcast A value: 15 of the 16 ymm registers, so nothing spills.
constexpr int64_t kMR = 6;
constexpr int64_t kNR = 16;

// Defaults measured on the target (Zen 3 EPYC, 2 cores, 1088 x 6144 x 6144): the packed A block (MC x KC =
// 144 KiB) sits in L2 and a B micro-panel (KC x 16 = 16 KiB) in L1. NC bounds the C block one pass over
// K touches (M x NC per thread): at 1536 both threads' C blocks for M ~ 1000 stay in the shared L3, which was
// ~2-3 % faster than NC = 3072 (C streamed from DRAM 24 times); smaller NC repacks x more often. KC 384 / 512
// and MC 72 / 288 measured the same or slower.
GemmBlocking g_blocking{144, 256, 1536};

int64_t round_up(int64_t v, int64_t m) {
  return (v + m - 1) / m * m;
}

// A 64-byte aligned float buffer that only grows; one per thread (thread_local) so concurrent callers never
// share packing space and the steady state allocates nothing.
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  ~AlignedBuffer() { std::free(data_); }

  float* get(int64_t floats) {
    if (floats > capacity_) {
      std::free(data_);
      data_ = nullptr;
      capacity_ = 0;
      const size_t bytes = size_t(round_up(floats, 16)) * sizeof(float);
      data_ = static_cast<float*>(std::aligned_alloc(64, bytes));
      if (data_ == nullptr) throw std::bad_alloc();
      capacity_ = floats;
    }
    return data_;
  }

 private:
  float* data_ = nullptr;
  int64_t capacity_ = 0;
};

thread_local AlignedBuffer t_pack_a;
thread_local AlignedBuffer t_pack_b;

// ---------------------------------------------------------------------------------------------------------
// Microkernel: c[0..6) x [0..16) (row stride ldc) = (add ? c : 0) + sum_k a[k*6 + i] * b[k*16 + j].
// a: packed A micro-panel (kc x 6), b: packed B micro-panel (kc x 16, 64-byte aligned).
// Twelve named accumulators (not an array): GCC keeps arrays of __m256 indexed in loops on the stack.

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

__attribute__((noinline)) void kernel_6x16(int64_t kc, const float* __restrict a, const float* __restrict b,
                                           float* __restrict c, int64_t ldc, bool add) {
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

// Edge tiles (fewer than 6 rows or 16 columns): the packed panels are zero-padded, so run the full kernel
// into a local tile and copy out only the valid part.
void kernel_edge(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool add, int64_t rows,
                 int64_t cols) {
  alignas(64) float tile[kMR * kNR];
  kernel_6x16(kc, a, b, tile, kNR, false);
  for (int64_t i = 0; i < rows; ++i) {
    float* row = c + i * ldc;
    const float* t = tile + i * kNR;
    if (add) {
      for (int64_t j = 0; j < cols; ++j) row[j] += t[j];
    } else {
      for (int64_t j = 0; j < cols; ++j) row[j] = t[j];
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Packing.

// Packs rows [m0, m0 + mc) x columns [k0, k0 + kc) of x into ceil(mc / 6) micro-panels of kc x 6 (rows past
// mc are zero). Writes up to 2 floats past the panel it is filling (overwritten by what follows), so the
// buffer needs 8 floats of slack.
void pack_a(const float* x, int64_t ldx, int64_t m0, int64_t mc, int64_t k0, int64_t kc, float* out) {
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

// Loads 8 consecutive weight elements as float32 (unaligned: weights come from an mmap).
template <DType kType>
inline __m256 load8(const unsigned char* p) {
  if constexpr (kType == DType::F32) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(p));
  } else if constexpr (kType == DType::BF16) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  } else {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
}

template <DType kType>
inline float load1(const unsigned char* p) {
  if constexpr (kType == DType::F32) {
    float f;
    std::memcpy(&f, p, 4);
    return f;
  } else {
    uint16_t h;
    std::memcpy(&h, p, 2);
    return kType == DType::BF16 ? bf16_to_f32(h) : f16_to_f32(h);
  }
}

template <DType kType>
constexpr int64_t kElemBytes = kType == DType::F32 ? 4 : 2;

// Packs W^T rows [k0, k0 + kc) x columns [n0, n0 + nc) (= W rows n0.., elements k0..) into ceil(nc / 16)
// micro-panels of kc x 16, 64-byte aligned, widening to float32 on the way (columns past nc are zero).
template <DType kType>
void pack_b(const unsigned char* w, int64_t K, int64_t n0, int64_t nc, int64_t k0, int64_t kc, float* out) {
  constexpr int64_t es = kElemBytes<kType>;
  for (int64_t q = 0; q < nc; q += kNR, out += kc * kNR) {
    const int64_t cols = std::min(kNR, nc - q);
    const unsigned char* src = w + ((n0 + q) * K + k0) * es;
    int64_t k = 0;
    if (cols == kNR) {
      for (; k + 8 <= kc; k += 8) {
        __m256 lo[8], hi[8];
        for (int j = 0; j < 8; ++j) {
          lo[j] = load8<kType>(src + (j * K + k) * es);
          hi[j] = load8<kType>(src + ((j + 8) * K + k) * es);
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
        out[k * kNR + j] = j < cols ? load1<kType>(src + (j * K + k) * es) : 0.0f;
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// One thread's share: y rows [m_begin, m_end) x columns [n_begin, n_end), over all of K.
template <DType kType>
void gemm_range(const float* x, int64_t ldx, const unsigned char* w, int64_t K, float* y, int64_t ldy,
                bool accumulate, int64_t m_begin, int64_t m_end, int64_t n_begin, int64_t n_end,
                const GemmBlocking& blk) {
  if (m_begin >= m_end || n_begin >= n_end) return;
  const int64_t mc_max = std::min(blk.mc, round_up(m_end - m_begin, kMR));
  const int64_t kc_max = std::min(blk.kc, K);
  const int64_t nc_max = std::min(blk.nc, round_up(n_end - n_begin, kNR));
  float* pa = t_pack_a.get(mc_max * kc_max + 8);
  float* pb = t_pack_b.get(nc_max * kc_max);
  for (int64_t jc = n_begin; jc < n_end; jc += nc_max) {
    const int64_t nc = std::min(nc_max, n_end - jc);
    for (int64_t pc = 0; pc < K; pc += kc_max) {
      const int64_t kc = std::min(kc_max, K - pc);
      pack_b<kType>(w, K, jc, nc, pc, kc, pb);
      const bool add = accumulate || pc > 0;
      for (int64_t ic = m_begin; ic < m_end; ic += mc_max) {
        const int64_t mc = std::min(mc_max, m_end - ic);
        pack_a(x, ldx, ic, mc, pc, kc, pa);
        for (int64_t jr = 0; jr < nc; jr += kNR) {
          const int64_t cols = std::min(kNR, nc - jr);
          const float* b = pb + jr * kc;
          for (int64_t ir = 0; ir < mc; ir += kMR) {
            const int64_t rows = std::min(kMR, mc - ir);
            float* c = y + (ic + ir) * ldy + jc + jr;
            const float* a = pa + ir * kc;
            if (rows == kMR && cols == kNR) {
              kernel_6x16(kc, a, b, c, ldy, add);
            } else {
              kernel_edge(kc, a, b, c, ldy, add, rows, cols);
            }
          }
        }
      }
    }
  }
}

// Splits `panels` panels as evenly as possible into `parts`; returns the first panel of part `i`.
int64_t split_point(int64_t panels, int64_t parts, int64_t i) {
  return panels * i / parts;
}

}  // namespace

GemmBlocking gemm_blocking() {
  return g_blocking;
}

void set_gemm_blocking(const GemmBlocking& blocking) {
  if (blocking.mc <= 0 || blocking.kc <= 0 || blocking.nc <= 0) {
    throw std::invalid_argument("set_gemm_blocking: all block sizes must be positive");
  }
  g_blocking = {round_up(blocking.mc, kMR), blocking.kc, round_up(blocking.nc, kNR)};
}

void gemm_xwt(const float* x, int64_t M, int64_t ldx, const WeightMatrix& w, float* y, int64_t ldy,
              bool accumulate) {
  const int64_t N = w.rows;
  const int64_t K = w.cols;
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    if (!accumulate) {
      for (int64_t m = 0; m < M; ++m) std::fill(y + m * ldy, y + m * ldy + N, 0.0f);
    }
    return;
  }
  if (w.dtype != DType::F32 && w.dtype != DType::BF16 && w.dtype != DType::F16) {
    throw std::invalid_argument("gemm_xwt: unsupported weight dtype " + std::string(dtype_name(w.dtype)));
  }
  const GemmBlocking blk = g_blocking;
  const auto* wb = static_cast<const unsigned char*>(w.data);

  // Thread grid tm x tn. Splitting N is preferred: each thread then packs (reads) only its own rows of W and
  // the duplicated work is packing x, which is small. M is split too only when N has too few 16-wide panels.
  int64_t threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  const double flops = 2.0 * double(M) * double(N) * double(K);
  if (flops < 2e6) threads = 1;  // below this, waking the team costs more than it saves
  const int64_t n_panels = (N + kNR - 1) / kNR;
  const int64_t m_panels = (M + kMR - 1) / kMR;
  int64_t tm = 1, tn = 1;
  double best = 1e300;
  for (int64_t a = 1; a <= threads; ++a) {
    if (threads % a != 0) continue;
    const int64_t b = threads / a;  // a: M parts, b: N parts
    if (a > m_panels || b > n_panels) continue;
    // Critical path in microkernel tiles; a small penalty per extra M part for the repacked W.
    const double cost =
        double((m_panels + a - 1) / a) * double((n_panels + b - 1) / b) * (1.0 + 0.02 * (a - 1));
    if (cost < best) {
      best = cost;
      tm = a;
      tn = b;
    }
  }

  auto run = [&](int64_t t) {
    const int64_t im = t / tn, in = t % tn;
    const int64_t m_begin = split_point(m_panels, tm, im) * kMR;
    const int64_t m_end = std::min(M, split_point(m_panels, tm, im + 1) * kMR);
    const int64_t n_begin = split_point(n_panels, tn, in) * kNR;
    const int64_t n_end = std::min(N, split_point(n_panels, tn, in + 1) * kNR);
    switch (w.dtype) {
      case DType::F32:
        gemm_range<DType::F32>(x, ldx, wb, K, y, ldy, accumulate, m_begin, m_end, n_begin, n_end, blk);
        break;
      case DType::BF16:
        gemm_range<DType::BF16>(x, ldx, wb, K, y, ldy, accumulate, m_begin, m_end, n_begin, n_end, blk);
        break;
      default:
        gemm_range<DType::F16>(x, ldx, wb, K, y, ldy, accumulate, m_begin, m_end, n_begin, n_end, blk);
        break;
    }
  };
  const int64_t parts = tm * tn;
  if (parts == 1) {
    run(0);
    return;
  }
  // An exception (bad_alloc of a packing buffer) must not leave the parallel region: keep the first, rethrow.
  std::exception_ptr error;
#pragma omp parallel num_threads(int(parts))
  {
    // Loop rather than assume the runtime granted every requested thread.
    for (int64_t t = omp_get_thread_num(); t < parts; t += omp_get_num_threads()) {
      try {
        run(t);
      } catch (...) {
#pragma omp critical(krea2_gemm_error)
        if (!error) error = std::current_exception();
      }
    }
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace krea2
