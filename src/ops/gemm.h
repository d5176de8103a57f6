// Our own single-precision GEMM for the linear layers: y = x W^T with W stored F32 / BF16 / F16 or quantized.
//
// BLIS-style: an MR x NR register-blocked microkernel over packed operands, one variant per instruction set
// (ops/gemm_kernels.h: AVX2 6x16, AVX-512 12x32), chosen per call from active_isa(); everything else below is
// shared. W^T is packed into KC x NR micro-panels, widening BF16/F16 to float32 (and decoding quantized
// weights) while packing, so compressed weights never need a full float32 copy and cost about the same as F32
// ones. x is packed once into KC x MR micro-panels shared by all threads
// (at most 24M floats, 96 MiB, at a time: taller x is done in row phases); threads (OpenMP) then take column
// chunks of W^T from a shared counter, wide first and narrower towards the end, so an unevenly loaded machine
// still finishes both cores together; a narrow W^T (few chunks) is split over rows too. Each thread packs
// (reads) only the weight rows of its chunks. Data a chunk needs next is prefetched into L2 while it
// computes.
#pragma once
#include <cstdint>
#include <span>

#include "cpu/cpu_features.h"
#include "krea2/compute.h"
#include "ops/linear.h"

namespace krea2 {

// The compute mode of the products this thread starts (krea2/compute.h), float32 unless a scope says
// otherwise. int8 multiplies only weights stored as int8 with row scales (I8, e.g. int8 convrot files or
// weights quantized at load for int8); every other weight is multiplied in float32 in that mode.
Compute gemm_compute();
class GemmComputeScope {
 public:
  explicit GemmComputeScope(Compute c);
  ~GemmComputeScope();
  GemmComputeScope(const GemmComputeScope&) = delete;
  GemmComputeScope& operator=(const GemmComputeScope&) = delete;

 private:
  Compute saved_;
};

// y (M x N, row stride ldy) = x (M x K, row stride ldx) * W^T, with W = w (N x K, row-major; rows = N,
// cols = K). If accumulate, y += x W^T instead. Uses up to omp_get_max_threads() threads when called outside
// a parallel region, one thread inside one. Safe to call from several threads at once (per-thread buffers).
void gemm_xwt(const float* x, int64_t M, int64_t ldx, const WeightMatrix& w, float* y, int64_t ldy,
              bool accumulate);

// One product y = x W^T of gemm_xwt_many.
struct GemmProduct {
  WeightMatrix w;
  float* y;
  int64_t ldy;
};
// Several products of the same x (all W with the same number of columns, any mix of dtypes), e.g. q, k, v
// and gate of one block: x is packed once for all of them and the team shares out the columns of all, so
// there is one packing of x, one thread team and one ragged end instead of one per product.
void gemm_xwt_many(const float* x, int64_t M, int64_t ldx, std::span<const GemmProduct> products,
                   bool accumulate);

// Cache blocking, one per ISA variant (defaults measured per ISA), exposed for tuning and tests. mc is
// rounded up to a multiple of the variant's MR, nc to a multiple of its NR; all values must be positive.
// Without `isa`: the variant active_isa() selects. Not thread-safe against concurrent gemm_xwt calls.
struct GemmBlocking {
  int64_t mc = 0;          // rows of x packed at once (block of A kept in L2)
  int64_t kc = 0;          // depth of one packed block (a B micro-panel, kc * NR * 4 bytes, sits in L1)
  int64_t nc = 0;          // widest column chunk a thread takes (its packed B block, KC x NC, kept in L2)
  int64_t pack_limit = 0;  // most floats of packed x at once; taller x is multiplied in row phases
};
GemmBlocking gemm_blocking(Isa isa = active_isa(), Compute compute = Compute::kF32);
void set_gemm_blocking(const GemmBlocking& blocking, Isa isa = active_isa(), Compute compute = Compute::kF32);

// The variant's name, e.g. "avx512 12x32" (ISA and register block), "avx512-bf16 12x32".
const char* gemm_kernel_name(Isa isa = active_isa(), Compute compute = Compute::kF32);

// The microkernel alone, for `krea2 bench`'s ceiling: `calls` runs of the variant's MR x NR kernel at depth
// kGemmMicrokernelDepth over the same packed panels, which stay in L1 (no packing, no traffic beyond L1). Its
// throughput bounds what gemm_xwt can reach on this core at that moment. Each call is
// gemm_microkernel_flops(isa) = 2 MR NR depth FLOPs. `isa` must be supported (isa_supported).
constexpr int64_t kGemmMicrokernelDepth = 256;
// (int8: operations, 2 per multiply-add, as for FLOPs.)
int64_t gemm_microkernel_flops(Isa isa = active_isa(), Compute compute = Compute::kF32);
void gemm_microkernel_repeat(int64_t calls, Isa isa = active_isa(), Compute compute = Compute::kF32);

}  // namespace krea2
