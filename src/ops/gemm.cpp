#include "ops/gemm.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <exception>
#include <iterator>
#include <map>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "ops/gemm_kernels.h"
#include "ops/int8_activations.h"
#include "ops/weight_decode.h"

namespace krea2 {
namespace {

// Blocking set by set_gemm_blocking, per variant; the others use their table's defaults.
std::map<const GemmKernels*, GemmBlocking> g_blocking;

GemmBlocking blocking_of(const GemmKernels& kern) {
  const auto it = g_blocking.find(&kern);
  return it == g_blocking.end() ? kern.blocking : it->second;
}

thread_local Compute t_compute = Compute::kF32;

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
thread_local AlignedBuffer t_decoded_rows;
thread_local std::vector<int8_t> t_codes;  // int8 compute: the quantized x
thread_local std::vector<float> t_code_scales;

// Edge tiles (fewer than MR rows or NR columns): the packed panels are zero-padded, so run the full kernel
// into a local tile and copy out only the valid part.
void kernel_edge(const GemmKernels& kern, int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                 bool add, int64_t rows, int64_t cols) {
  alignas(64) float tile[kGemmMaxTile];
  kern.kernel(kc, a, b, tile, kern.nr, false);
  for (int64_t i = 0; i < rows; ++i) {
    float* row = c + i * ldc;
    const float* t = tile + i * kern.nr;
    if (add) {
      for (int64_t j = 0; j < cols; ++j) row[j] += t[j];
    } else {
      for (int64_t j = 0; j < cols; ++j) row[j] = t[j];
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Work sharing. x is packed once into a buffer all threads read; threads then take column chunks of W^T from
// a shared counter, so a faster core simply takes more chunks (on a shared VM one core often runs 10-20 %
// slower than the other for seconds at a time, and a static split waits for the slower one).

// Packed x for `rows` rows and all of K: depth block b (columns [b * kc_max, ...)) starts at b * block_stride
// and holds ceil(rows / MR) micro-panels of depth kc; the gap after each block absorbs pack_a's overrun.
struct PackedRows {
  const float* data = nullptr;
  int64_t block_stride = 0;
  int64_t row0 = 0;  // first row (a multiple of MR) and number of rows a work item uses
  int64_t rows = 0;
};

int64_t block_stride(const GemmKernels& kern, int64_t rows, int64_t kc_max) {
  return (rows + kern.mr - 1) / kern.mr * gemm_a_panel_words(kern, kc_max) + kGemmPackSlack;
}

// Walks a 2-D byte region (`rows` rows of `row_bytes`, `stride` apart) one cache line at a time, issuing L2
// prefetches a few lines per step, so data the next stage of a chunk needs arrives while the kernels run.
class PrefetchWalk {
 public:
  PrefetchWalk(const void* base, int64_t rows, int64_t row_bytes, int64_t stride, int64_t steps)
      : stride_(stride) {
    // Addresses as integers: the walk starts at the line holding the first byte, which may precede `base`
    // (prefetches never fault). A misaligned row spans one line more.
    const auto address = reinterpret_cast<uintptr_t>(base);
    line0_ = address & ~uintptr_t(63);
    row_lines_ = row_bytes > 0 ? (int64_t(address - line0_) + row_bytes + 63) / 64 : 0;
    rows_ = row_lines_ > 0 ? rows : 0;
    per_step_ = (rows_ * row_lines_ + steps - 1) / std::max<int64_t>(steps, 1);
  }
  // The position advances by counting (no division: a step runs before every microkernel call, and a
  // 64-bit divide per line cost the 12x32 kernel ~8 % of its time).
  void step() {
    for (int64_t n = 0; n < per_step_ && row_ < rows_; ++n) {
      _mm_prefetch(reinterpret_cast<const char*>(line0_ + uintptr_t(row_ * stride_ + line_ * 64)),
                   _MM_HINT_T1);
      if (++line_ == row_lines_) {
        line_ = 0;
        ++row_;
      }
    }
  }

 private:
  uintptr_t line0_ = 0;
  int64_t stride_, rows_ = 0, row_lines_ = 0, per_step_ = 0, row_ = 0, line_ = 0;
};

// Packs W^T rows [k0, k0 + kc) x columns [n0, n0 + nc) of any other stored weight (quantized, fp8, scaled):
// each group of NR weight rows is dequantized into `rows` (NR x kc floats, in L1) and packed from there like
// an F32 weight, so the decode hides inside the packing and no float32 copy of the weight exists.
void pack_b_decoded(const GemmKernels& kern, const WeightMatrix& w, int64_t n0, int64_t nc, int64_t k0,
                    int64_t kc, float* out, float* rows) {
  for (int64_t q = 0; q < nc; q += kern.nr, out += gemm_b_panel_words(kern, kc)) {
    const int64_t cols = std::min(kern.nr, nc - q);
    for (int64_t j = 0; j < cols; ++j) decode_weight_segment(w, n0 + q + j, k0, kc, rows + j * kc);
    kern.pack_b_f32(reinterpret_cast<const unsigned char*>(rows), kc, 0, cols, 0, kc, out);
  }
}

// Packs a weight panel: plain F32 / BF16 / F16 straight from memory, anything else through its decoder.
struct WeightPacker {
  const GemmKernels& kern;
  const WeightMatrix& w;
  void operator()(int64_t n0, int64_t nc, int64_t k0, int64_t kc, float* out) const {
    if (kern.compute == Compute::kInt8) {  // gemm_xwt_many sends only int8 rows with scales here
      kern.pack_b_i8(static_cast<const int8_t*>(w.data), w.row_scales, w.cols, n0, nc, k0, kc, out);
      return;
    }
    if (!w.is_plain_float()) {
      pack_b_decoded(kern, w, n0, nc, k0, kc, out, t_decoded_rows.get(kern.nr * kc));
      return;
    }
    const GemmPackB pack = w.dtype == DType::F32    ? kern.pack_b_f32
                           : w.dtype == DType::BF16 ? kern.pack_b_bf16
                                                    : kern.pack_b_f16;
    pack(static_cast<const unsigned char*>(w.data), w.cols, n0, nc, k0, kc, out);
  }
};

// y[0.., n0..n0+nc) over all of K, for packed rows [a.row0, a.row0 + a.rows); y points at row a.row0.
//
// While one block of packed x is in use, the next one (the next row block, or the first of the next depth
// block) and, over a whole depth block, the next depth block's weight rows are prefetched into L2: a block of
// packed x is otherwise read from memory by its first NR-column pass (~40 % slower kernels there), and the
// weight's rows by the packing.
void compute_chunk(const GemmKernels& kern, const PackedRows& a, const WeightMatrix& w, int64_t n0,
                   int64_t nc, float* y, int64_t ldy, bool accumulate, const GemmBlocking& blk, float* pb) {
  const int64_t mr = kern.mr, nr = kern.nr;
  const int64_t K = w.cols;
  const int64_t row_bytes = w.row_bytes();
  const WeightPacker pack{kern, w};
  const int64_t kc_max = std::min(blk.kc, K);
  const int64_t mc_max = std::min(blk.mc, round_up(a.rows, mr));
  const int64_t n_panels = (nc + nr - 1) / nr;
  for (int64_t pc = 0, block = 0; pc < K; pc += kc_max, ++block) {
    const int64_t kc = std::min(kc_max, K - pc);
    pack(n0, nc, pc, kc, pb);
    const bool add = accumulate || pc > 0;
    const int64_t next_pc = pc + kc;
    const int64_t next_kc = std::min(kc_max, K - next_pc);
    const int64_t a_panel = gemm_a_panel_words(kern, kc), b_panel = gemm_b_panel_words(kern, kc);
    const int64_t next_a_panel = gemm_a_panel_words(kern, next_kc);
    const float* a_block = a.data + block * a.block_stride + a.row0 / mr * a_panel;
    // Bytes of the next depth block of each weight row (block formats: proportional, rounded out).
    const int64_t seg0 = next_pc * row_bytes / K, seg1 = (next_pc + next_kc) * row_bytes / K;
    PrefetchWalk next_w(static_cast<const unsigned char*>(w.data) + n0 * row_bytes + seg0,
                        next_pc < K ? nc : 0, seg1 - seg0 + 1, row_bytes,
                        n_panels * ((a.rows + mr - 1) / mr));
    for (int64_t ic = 0; ic < a.rows; ic += mc_max) {
      const int64_t mc = std::min(mc_max, a.rows - ic);
      // The packed x block used next: this depth block's next rows, else the next depth block's first rows.
      const bool last_ic = ic + mc >= a.rows;
      const float* next_a = last_ic ? a.data + (block + 1) * a.block_stride + a.row0 / mr * next_a_panel
                                    : a_block + (ic + mc) / mr * a_panel;
      const int64_t next_rows =
          last_ic ? (next_pc < K ? std::min(mc_max, a.rows) : 0) : std::min(mc_max, a.rows - ic - mc);
      const int64_t m_panels = (mc + mr - 1) / mr;
      PrefetchWalk next_x(next_a, 1, (next_rows + mr - 1) / mr * (last_ic ? next_a_panel : a_panel) * 4, 0,
                          n_panels * m_panels);
      for (int64_t jr = 0; jr < nc; jr += nr) {
        const int64_t cols = std::min(nr, nc - jr);
        const float* b = pb + jr / nr * b_panel;
        for (int64_t ir = 0; ir < mc; ir += mr) {
          const int64_t rows = std::min(mr, mc - ir);
          float* c = y + (ic + ir) * ldy + n0 + jr;
          const float* pa = a_block + (ic + ir) / mr * a_panel;
          next_x.step();
          if (kern.prefetch_weights) next_w.step();
          if (rows == mr && cols == nr) {
            kern.kernel(kc, pa, b, c, ldy, add);
          } else {
            kernel_edge(kern, kc, pa, b, c, ldy, add, rows, cols);
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
// the end so the threads finish together. Widths are multiples of `nr` (the microkernel's width, so only a
// product's last chunk has an edge tile) between kMinChunk and `max_width`, cut short at the end of each
// product. Measured at 1088 x 6144 x 6144 on 2 threads: the team idles ~0.5-0.8 % of
// the time at the end with 64-wide last chunks, ~0.3-0.6 % with 32.
constexpr int64_t kMinChunk = 32;
std::vector<Chunk> make_chunks(std::span<const GemmProduct> products, int64_t threads, int64_t max_width,
                               int64_t nr) {
  int64_t remaining = 0;
  for (const GemmProduct& p : products) remaining += p.w.rows;
  std::vector<Chunk> chunks;
  for (int64_t j = 0; j < int64_t(products.size()); ++j) {
    const int64_t N = products[size_t(j)].w.rows;
    for (int64_t n = 0; n < N;) {
      const int64_t share = round_up(remaining / (3 * threads), nr);
      const int64_t min_width = std::min(round_up(kMinChunk, nr), max_width);
      const int64_t width = std::min(std::clamp(share, min_width, max_width), N - n);
      chunks.push_back({j, n, n + width});
      n += width;
      remaining -= width;
    }
  }
  return chunks;
}

}  // namespace

Compute gemm_compute() {
  return t_compute;
}

GemmComputeScope::GemmComputeScope(Compute c) : saved_(t_compute) {
  t_compute = c;
}

GemmComputeScope::~GemmComputeScope() {
  t_compute = saved_;
}

GemmBlocking gemm_blocking(Isa isa, Compute compute) {
  return blocking_of(gemm_kernels(isa, compute));
}

void set_gemm_blocking(const GemmBlocking& blocking, Isa isa, Compute compute) {
  if (blocking.mc <= 0 || blocking.kc <= 0 || blocking.nc <= 0 || blocking.pack_limit <= 0) {
    throw std::invalid_argument("set_gemm_blocking: all block sizes must be positive");
  }
  const GemmKernels& kern = gemm_kernels(isa, compute);
  g_blocking[&kern] = {round_up(blocking.mc, kern.mr), blocking.kc, round_up(blocking.nc, kern.nr),
                       blocking.pack_limit};
}

const char* gemm_kernel_name(Isa isa, Compute compute) {
  return gemm_kernels(isa, compute).name;
}

int64_t gemm_microkernel_flops(Isa isa, Compute compute) {
  const GemmKernels& kern = gemm_kernels(isa, compute);
  return 2 * kern.mr * kern.nr * kGemmMicrokernelDepth;
}

void gemm_microkernel_repeat(int64_t calls, Isa isa, Compute compute) {
  constexpr int64_t kc = kGemmMicrokernelDepth;
  const GemmKernels& kern = gemm_kernels(isa, compute);
  // Panels of the largest MR and NR with their extra words; zero bits are a valid value of every element
  // type (and keep the float sums normal).
  alignas(64) static thread_local float a[kc * 16 + 64], b[kc * 64 + 128], tile[kGemmMaxTile];
  static_assert(kGemmMaxTile == 16 * 64);
  std::fill(std::begin(a), std::end(a), 0.0f);
  std::fill(std::begin(b), std::end(b), 0.0f);
  for (int64_t i = 0; i < calls; ++i) kern.kernel(kc, a, b, tile, kern.nr, false);
}

void gemm_xwt(const float* x, int64_t M, int64_t ldx, const WeightMatrix& w, float* y, int64_t ldy,
              bool accumulate) {
  const GemmProduct product{w, y, ldy};
  gemm_xwt_many(x, M, ldx, std::span<const GemmProduct>(&product, 1), accumulate);
}

namespace {

// The products of one variant over a left operand of M rows and K depths.
void run_products(const GemmKernels& kern, const GemmLhs& lhs, int64_t M, int64_t K,
                  std::span<const GemmProduct> products, bool accumulate) {
  int64_t N = 0;
  for (const GemmProduct& p : products) N += p.w.rows;
  const int64_t mr = kern.mr, nr = kern.nr;
  const GemmBlocking blk = blocking_of(kern);
  int64_t threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  if (2.0 * double(M) * double(N) * double(K) < 2e6) threads = 1;  // waking the team would cost more

  const int64_t kc_max = std::min(blk.kc, K);
  const int64_t k_blocks = (K + kc_max - 1) / kc_max;
  // Row phases of equal height keep the packed x under blk.pack_limit floats.
  const int64_t phases = std::clamp<int64_t>((M * K + blk.pack_limit - 1) / blk.pack_limit, 1, M);
  const int64_t phase_rows = round_up((M + phases - 1) / phases, mr);
  const int64_t stride = block_stride(kern, std::min(phase_rows, M), kc_max);
  float* packed = t_pack_a.get(stride * k_blocks);
  const std::vector<Chunk> chunks = make_chunks(products, threads, blk.nc, nr);
  const int64_t n_chunks = int64_t(chunks.size());

  for (int64_t m0 = 0; m0 < M; m0 += phase_rows) {
    const int64_t rows = std::min(phase_rows, M - m0);
    // Too few column chunks to keep the team busy (narrow N): split the rows too. Each row part repacks its
    // chunk's weight, which is cheap exactly when N is narrow.
    const int64_t m_panels = (rows + mr - 1) / mr;
    const int64_t row_parts =
        n_chunks >= 2 * threads ? 1 : std::min(m_panels, (2 * threads + n_chunks - 1) / n_chunks);
    const int64_t items = n_chunks * row_parts;
    std::atomic<int64_t> next_item{0};
    auto work = [&](bool parallel) {
      // Pack the depth blocks (shared by the team), then take column chunks until none are left.
      if (parallel) {
#pragma omp for schedule(dynamic)
        for (int64_t b = 0; b < k_blocks; ++b)
          kern.pack_a(lhs, m0, rows, b * kc_max, std::min(kc_max, K - b * kc_max), packed + b * stride);
      } else {
        for (int64_t b = 0; b < k_blocks; ++b)
          kern.pack_a(lhs, m0, rows, b * kc_max, std::min(kc_max, K - b * kc_max), packed + b * stride);
      }
      float* pb = t_pack_b.get((std::min(blk.nc, round_up(N, nr)) / nr) * gemm_b_panel_words(kern, kc_max));
      for (int64_t i; (i = next_item.fetch_add(1)) < items;) {
        const Chunk& c = chunks[size_t(i / row_parts)];
        const int64_t part = i % row_parts;
        const int64_t r0 = m_panels * part / row_parts * mr;
        const int64_t r1 = std::min(rows, m_panels * (part + 1) / row_parts * mr);
        const GemmProduct& p = products[size_t(c.out)];
        const PackedRows a{packed, stride, r0, r1 - r0};
        compute_chunk(kern, a, p.w, c.n0, c.n1 - c.n0, p.y + (m0 + r0) * p.ldy, p.ldy, accumulate, blk, pb);
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

}  // namespace

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
  // The one choice of variant per call: a concurrent set_isa_cap never mixes two in one product.
  const Isa isa = active_isa();
  const Compute compute = gemm_compute();
  if (compute != Compute::kInt8) {
    run_products(gemm_kernels(isa, compute), GemmLhs{x, nullptr, nullptr, ldx}, M, K, products, accumulate);
    return;
  }
  // int8: products of int8 weights with row scales, grouped by the rotation their activations need; the
  // rest in float32.
  std::vector<GemmProduct> floats;
  std::map<int64_t, std::vector<GemmProduct>> by_rotation;
  for (const GemmProduct& p : products) {
    if (p.w.dtype == DType::I8 && p.w.row_scales != nullptr && p.w.scale == 1.0f) {
      by_rotation[p.w.rotation_group].push_back(p);
    } else {
      floats.push_back(p);
    }
  }
  if (!floats.empty())
    run_products(gemm_kernels(isa, Compute::kF32), GemmLhs{x, nullptr, nullptr, ldx}, M, K, floats,
                 accumulate);
  for (const auto& [group, list] : by_rotation) {
    t_codes.resize(size_t(M * K));
    t_code_scales.resize(size_t(M));
    quantize_activations_i8(x, M, ldx, K, group, t_codes.data(), t_code_scales.data());
    run_products(gemm_kernels(isa, Compute::kInt8), GemmLhs{nullptr, t_codes.data(), t_code_scales.data(), K},
                 M, K, list, accumulate);
  }
}

}  // namespace krea2
