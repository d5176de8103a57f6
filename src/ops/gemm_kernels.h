// What differs between the GEMM's instruction set variants: the register block (MR x NR), its microkernel,
// the packers that lay operands out for it, and the default cache blocking. The driver (ops/gemm.cpp:
// blocking, threads, column chunks, row phases, prefetch, edge tiles, decoded weights) is shared and calls
// these through the table, one indirect call per microkernel run (~thousands of cycles each).
//
// Each variant lives in its own translation unit (gemm_avx2.cpp, gemm_avx512.cpp, compiled with its ISA's
// flags) and defines one constant-initialised table, so that merely linking or reading it runs no code of
// that ISA. Adding an ISA: a gemm_<isa>.cpp defining its table, plus one case in gemm_kernels(Isa).
#pragma once
#include <cstdint>

#include "cpu/cpu_features.h"
#include "ops/gemm.h"

namespace krea2 {

// c[0..MR) x [0..NR) (row stride ldc) = (add ? c : 0) + sum_k a[k*MR + i] * b[k*NR + j], for the full tile.
// a: packed A micro-panel (kc x MR), b: packed B micro-panel (kc x NR, 64-byte aligned).
using GemmMicrokernel = void (*)(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool add);

// Packs rows [m0, m0 + mc) x columns [k0, k0 + kc) of x into ceil(mc / MR) micro-panels of kc x MR (rows
// past mc are zero). May write up to kGemmPackSlack floats past the last panel.
using GemmPackA = void (*)(const float* x, int64_t ldx, int64_t m0, int64_t mc, int64_t k0, int64_t kc,
                           float* out);

// Packs W^T rows [k0, k0 + kc) x columns [n0, n0 + nc) (= rows n0.. of the weight w, K elements each, stored
// as one float type) into ceil(nc / NR) micro-panels of kc x NR, 64-byte aligned, widened to float32
// (columns past nc are zero).
using GemmPackB = void (*)(const unsigned char* w, int64_t K, int64_t n0, int64_t nc, int64_t k0, int64_t kc,
                           float* out);

constexpr int64_t kGemmPackSlack = 16;
constexpr int64_t kGemmMaxTile = 16 * 64;  // floats of the driver's edge tile: MR * NR must fit

struct GemmKernels {
  Isa isa;
  const char* name;  // e.g. "avx512 12x32"
  int64_t mr, nr;
  GemmBlocking blocking;  // defaults, measured per ISA
  // Whether the driver prefetches the next depth block's weight rows into L2 while a chunk computes (helps
  // the AVX2 kernel on Zen 4; with the AVX-512 kernel the prefetches stall more than they save).
  bool prefetch_weights;
  GemmMicrokernel kernel;
  GemmPackA pack_a;
  GemmPackB pack_b_f32, pack_b_bf16, pack_b_f16;
};

extern const GemmKernels kGemmKernelsAvx2;
extern const GemmKernels kGemmKernelsAvx512;

// The one dispatch point: the variant for `isa` (callers pass active_isa(), so the CPU has it).
const GemmKernels& gemm_kernels(Isa isa);

}  // namespace krea2
