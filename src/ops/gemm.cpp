#include "ops/gemm.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <exception>
#include <iterator>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "ops/simd.h"
#include "ops/weight_decode.h"
#include "ops/weight_elements.h"

namespace krea2 {
namespace {

// Register block: 6 rows of x times 16 columns of W^T = 12 ymm accumulators, plus 2 for the B row and 1 for
// the broadcast A value: 15 of the 16 ymm registers, so nothing spills.
constexpr int64_t kMR = 6;
constexpr int64_t kNR = 16;

// Defaults measured on the target (Zen 4 EPYC under KVM, 2 cores, 32 KiB L1d and 1 MiB L2 per core, 1088 x
// 6144 x 6144): the packed A block (MC x KC = 144 KiB) sits in L2 and a B micro-panel (KC x 16 = 16 KiB) in
// L1. NC caps a thread's column chunk: a 256-wide packed B chunk (256 KiB) stays in L2 beside the A block.
// KC 384 and MC 288 measured the same or slower.
GemmBlocking g_blocking{144, 256, 256, int64_t(24) << 20};

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

// Packs W^T rows [k0, k0 + kc) x columns [n0, n0 + nc) (= W rows n0.., elements k0..) into ceil(nc / 16)
// micro-panels of kc x 16, 64-byte aligned, widening to float32 on the way (columns past nc are zero).
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

// ---------------------------------------------------------------------------------------------------------
// Work sharing. x is packed once into a buffer all threads read; threads then take column chunks of W^T from
// a shared counter, so a faster core simply takes more chunks (on a shared VM one core often runs 10-20 %
// slower than the other for seconds at a time, and a static split waits for the slower one).

// Packed x for `rows` rows and all of K: depth block b (columns [b * kc_max, ...)) starts at b * block_stride
// and holds ceil(rows / 6) micro-panels of kc x 6; the gap after each block absorbs pack_a's overrun.
struct PackedRows {
  const float* data = nullptr;
  int64_t block_stride = 0;
  int64_t row0 = 0;  // first row (a multiple of 6) and number of rows a work item uses
  int64_t rows = 0;
};

int64_t block_stride(int64_t rows, int64_t kc_max) {
  return round_up(rows, kMR) * kc_max + 16;
}

// Walks a 2-D byte region (`rows` rows of `row_bytes`, `stride` apart) one cache line at a time, issuing L2
// prefetches a few lines per step, so data the next stage of a chunk needs arrives while the kernels run.
class PrefetchWalk {
 public:
  PrefetchWalk(const void* base, int64_t rows, int64_t row_bytes, int64_t stride, int64_t steps)
      : stride_(stride), rows_(rows) {
    // Addresses as integers: the walk starts at the line holding the first byte, which may precede `base`
    // (prefetches never fault). A misaligned row spans one line more.
    const auto address = reinterpret_cast<uintptr_t>(base);
    line0_ = address & ~uintptr_t(63);
    row_lines_ = row_bytes > 0 ? (int64_t(address - line0_) + row_bytes + 63) / 64 : 0;
    per_step_ = (rows_ * row_lines_ + steps - 1) / std::max<int64_t>(steps, 1);
  }
  void step() {
    for (int64_t n = 0; n < per_step_ && next_ < rows_ * row_lines_; ++n, ++next_) {
      const int64_t r = next_ / row_lines_, l = next_ % row_lines_;
      _mm_prefetch(reinterpret_cast<const char*>(line0_ + uintptr_t(r * stride_ + l * 64)), _MM_HINT_T1);
    }
  }

 private:
  uintptr_t line0_ = 0;
  int64_t stride_, rows_, row_lines_ = 0, per_step_ = 0, next_ = 0;
};

// Packs W^T rows [k0, k0 + kc) x columns [n0, n0 + nc) of any other stored weight (quantized, fp8, scaled):
// each group of 16 weight rows is dequantized into `rows16` (16 x kc floats, in L1) and transposed from there
// like an F32 weight, so the decode hides inside the packing and no float32 copy of the weight exists.
void pack_b_decoded(const WeightMatrix& w, int64_t n0, int64_t nc, int64_t k0, int64_t kc, float* out,
                    float* rows16) {
  for (int64_t q = 0; q < nc; q += kNR, out += kc * kNR) {
    const int64_t cols = std::min(kNR, nc - q);
    for (int64_t j = 0; j < cols; ++j) decode_weight_segment(w, n0 + q + j, k0, kc, rows16 + j * kc);
    pack_b<DType::F32>(reinterpret_cast<const unsigned char*>(rows16), kc, 0, cols, 0, kc, out);
  }
}

thread_local AlignedBuffer t_decoded_rows;

// Packs a weight panel: plain F32 / BF16 / F16 straight from memory, anything else through its decoder.
struct WeightPacker {
  const WeightMatrix& w;
  void operator()(int64_t n0, int64_t nc, int64_t k0, int64_t kc, float* out) const {
    if (w.is_plain_float()) {
      with_weight_dtype(w.dtype, "gemm_xwt", [&](auto type) {
        pack_b<decltype(type)::value>(static_cast<const unsigned char*>(w.data), w.cols, n0, nc, k0, kc, out);
      });
    } else {
      pack_b_decoded(w, n0, nc, k0, kc, out, t_decoded_rows.get(kNR * kc));
    }
  }
};

// y[0.., n0..n0+nc) over all of K, for packed rows [a.row0, a.row0 + a.rows); y points at row a.row0.
//
// While one block of packed x is in use, the next one (the next row block, or the first of the next depth
// block) and, over a whole depth block, the next depth block's weight rows are prefetched into L2: a block of
// packed x is otherwise read from memory by its first 16-column pass (~40 % slower kernels there), and the
// weight's rows by the packing.
void compute_chunk(const PackedRows& a, const WeightMatrix& w, int64_t n0, int64_t nc, float* y, int64_t ldy,
                   bool accumulate, const GemmBlocking& blk, float* pb) {
  const int64_t K = w.cols;
  const int64_t row_bytes = w.row_bytes();
  const WeightPacker pack{w};
  const int64_t kc_max = std::min(blk.kc, K);
  const int64_t mc_max = std::min(blk.mc, round_up(a.rows, kMR));
  const int64_t n_panels = (nc + kNR - 1) / kNR;
  for (int64_t pc = 0, block = 0; pc < K; pc += kc_max, ++block) {
    const int64_t kc = std::min(kc_max, K - pc);
    pack(n0, nc, pc, kc, pb);
    const bool add = accumulate || pc > 0;
    const float* a_block = a.data + block * a.block_stride + a.row0 * kc;
    const int64_t next_pc = pc + kc;
    const int64_t next_kc = std::min(kc_max, K - next_pc);
    // Bytes of the next depth block of each weight row (block formats: proportional, rounded out).
    const int64_t seg0 = next_pc * row_bytes / K, seg1 = (next_pc + next_kc) * row_bytes / K;
    PrefetchWalk next_w(static_cast<const unsigned char*>(w.data) + n0 * row_bytes + seg0,
                        next_pc < K ? nc : 0, seg1 - seg0 + 1, row_bytes, n_panels * ((a.rows + kMR - 1) / kMR));
    for (int64_t ic = 0; ic < a.rows; ic += mc_max) {
      const int64_t mc = std::min(mc_max, a.rows - ic);
      // The packed x block used next: this depth block's next rows, else the next depth block's first rows.
      const bool last_ic = ic + mc >= a.rows;
      const float* next_a =
          last_ic ? a.data + (block + 1) * a.block_stride + a.row0 * next_kc : a_block + (ic + mc) * kc;
      const int64_t next_rows =
          last_ic ? (next_pc < K ? std::min(mc_max, a.rows) : 0) : std::min(mc_max, a.rows - ic - mc);
      const int64_t m_panels = (mc + kMR - 1) / kMR;
      PrefetchWalk next_x(next_a, 1, round_up(next_rows, kMR) * (last_ic ? next_kc : kc) * 4, 0,
                          n_panels * m_panels);
      for (int64_t jr = 0; jr < nc; jr += kNR) {
        const int64_t cols = std::min(kNR, nc - jr);
        const float* b = pb + jr * kc;
        for (int64_t ir = 0; ir < mc; ir += kMR) {
          const int64_t rows = std::min(kMR, mc - ir);
          float* c = y + (ic + ir) * ldy + n0 + jr;
          const float* pa = a_block + (ic + ir) * kc;
          next_x.step();
          next_w.step();
          if (rows == kMR && cols == kNR) {
            kernel_6x16(kc, pa, b, c, ldy, add);
          } else {
            kernel_edge(kc, pa, b, c, ldy, add, rows, cols);
          }
        }
      }
    }
  }
}

// A column chunk: columns [n0, n1) of product `out`.
struct Chunk {
  int64_t out, n0, n1;
};

// Column chunks over all products, in order: wide first (fewer passes over the packed x), narrowing towards
// the end so the threads finish together. Widths are multiples of 16 between kMinChunk and `max_width`, cut
// short at the end of each product. Measured at 1088 x 6144 x 6144 on 2 threads: the team idles ~0.5-0.8 % of
// the time at the end with 64-wide last chunks, ~0.3-0.6 % with 32.
constexpr int64_t kMinChunk = 32;
std::vector<Chunk> make_chunks(std::span<const GemmProduct> products, int64_t threads, int64_t max_width) {
  int64_t remaining = 0;
  for (const GemmProduct& p : products) remaining += p.w.rows;
  std::vector<Chunk> chunks;
  for (int64_t j = 0; j < int64_t(products.size()); ++j) {
    const int64_t N = products[size_t(j)].w.rows;
    for (int64_t n = 0; n < N;) {
      const int64_t share = round_up(remaining / (3 * threads), kNR);
      const int64_t width = std::min(std::clamp(share, std::min(kMinChunk, max_width), max_width), N - n);
      chunks.push_back({j, n, n + width});
      n += width;
      remaining -= width;
    }
  }
  return chunks;
}

}  // namespace

GemmBlocking gemm_blocking() {
  return g_blocking;
}

void set_gemm_blocking(const GemmBlocking& blocking) {
  if (blocking.mc <= 0 || blocking.kc <= 0 || blocking.nc <= 0 || blocking.pack_limit <= 0) {
    throw std::invalid_argument("set_gemm_blocking: all block sizes must be positive");
  }
  g_blocking = {round_up(blocking.mc, kMR), blocking.kc, round_up(blocking.nc, kNR), blocking.pack_limit};
}

void gemm_microkernel_repeat(int64_t calls) {
  constexpr int64_t kc = 256;
  static_assert(kGemmMicrokernelFlops == 2 * kMR * kNR * kc);
  alignas(64) static thread_local float a[kc * kMR], b[kc * kNR], tile[kMR * kNR];
  // Small values: the sums stay normal (no denormal slow path) and finite.
  std::fill(std::begin(a), std::end(a), 1.0f / 1024);
  std::fill(std::begin(b), std::end(b), 1.0f / 1024);
  for (int64_t i = 0; i < calls; ++i) kernel_6x16(kc, a, b, tile, kNR, false);
}

void gemm_xwt(const float* x, int64_t M, int64_t ldx, const WeightMatrix& w, float* y, int64_t ldy,
              bool accumulate) {
  const GemmProduct product{w, y, ldy};
  gemm_xwt_many(x, M, ldx, std::span<const GemmProduct>(&product, 1), accumulate);
}

void gemm_xwt_many(const float* x, int64_t M, int64_t ldx, std::span<const GemmProduct> products,
                   bool accumulate) {
  if (products.empty()) return;
  const int64_t K = products[0].w.cols;
  int64_t N = 0;
  for (const GemmProduct& p : products) {
    if (p.w.cols != K)
      throw std::invalid_argument("gemm_xwt_many: weights of " + std::to_string(K) + " and " +
                                  std::to_string(p.w.cols) + " input features cannot share x");
    check_weight_matrix(p.w, "gemm_xwt");  // throws for a weight the kernels cannot read
    N += p.w.rows;
  }
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    if (!accumulate)
      for (const GemmProduct& p : products)
        for (int64_t m = 0; m < M; ++m) std::fill(p.y + m * p.ldy, p.y + m * p.ldy + p.w.rows, 0.0f);
    return;
  }
  const GemmBlocking blk = g_blocking;
  int64_t threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  if (2.0 * double(M) * double(N) * double(K) < 2e6) threads = 1;  // waking the team would cost more

  const int64_t kc_max = std::min(blk.kc, K);
  const int64_t k_blocks = (K + kc_max - 1) / kc_max;
  // Row phases of equal height keep the packed x under blk.pack_limit floats.
  const int64_t phases = std::clamp<int64_t>((M * K + blk.pack_limit - 1) / blk.pack_limit, 1, M);
  const int64_t phase_rows = round_up((M + phases - 1) / phases, kMR);
  const int64_t stride = block_stride(std::min(phase_rows, M), kc_max);
  float* packed = t_pack_a.get(stride * k_blocks);
  const std::vector<Chunk> chunks = make_chunks(products, threads, blk.nc);
  const int64_t n_chunks = int64_t(chunks.size());

  for (int64_t m0 = 0; m0 < M; m0 += phase_rows) {
    const int64_t rows = std::min(phase_rows, M - m0);
    const float* xs = x + m0 * ldx;
    // Too few column chunks to keep the team busy (narrow N): split the rows too. Each row part repacks its
    // chunk's weight, which is cheap exactly when N is narrow.
    const int64_t m_panels = (rows + kMR - 1) / kMR;
    const int64_t row_parts =
        n_chunks >= 2 * threads ? 1 : std::min(m_panels, (2 * threads + n_chunks - 1) / n_chunks);
    const int64_t items = n_chunks * row_parts;
    std::atomic<int64_t> next_item{0};
    auto work = [&](bool parallel) {
      // Pack the depth blocks (shared by the team), then take column chunks until none are left.
      if (parallel) {
#pragma omp for schedule(dynamic)
        for (int64_t b = 0; b < k_blocks; ++b)
          pack_a(xs, ldx, 0, rows, b * kc_max, std::min(kc_max, K - b * kc_max), packed + b * stride);
      } else {
        for (int64_t b = 0; b < k_blocks; ++b)
          pack_a(xs, ldx, 0, rows, b * kc_max, std::min(kc_max, K - b * kc_max), packed + b * stride);
      }
      float* pb = t_pack_b.get(std::min(blk.nc, round_up(N, kNR)) * kc_max);
      for (int64_t i; (i = next_item.fetch_add(1)) < items;) {
        const Chunk& c = chunks[size_t(i / row_parts)];
        const int64_t part = i % row_parts;
        const int64_t r0 = m_panels * part / row_parts * kMR;
        const int64_t r1 = std::min(rows, m_panels * (part + 1) / row_parts * kMR);
        const GemmProduct& p = products[size_t(c.out)];
        const PackedRows a{packed, stride, r0, r1 - r0};
        compute_chunk(a, p.w, c.n0, c.n1 - c.n0, p.y + (m0 + r0) * p.ldy, p.ldy, accumulate, blk, pb);
      }
    };
    if (threads == 1) {
      work(false);
      continue;
    }
    // An exception (bad_alloc of a packing buffer) must not leave the parallel region: keep the first,
    // rethrow.
    std::exception_ptr error;
#pragma omp parallel num_threads(int(threads))
    {
      try {
        work(true);
      } catch (...) {
#pragma omp critical(krea2_gemm_error)
        if (!error) error = std::current_exception();
      }
    }
    if (error) std::rethrow_exception(error);
  }
}

}  // namespace krea2
