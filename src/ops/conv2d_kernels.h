// What differs between conv2d's instruction set variants (ops/conv2d.cpp is the shared driver): a
// microkernel that reads its left operand straight from a channels-last copy of a tile's input region (no
// im2col and no packing per tap). The right operand (the weight) is the GEMM's packed W^T
// (ops/gemm_kernels.h: the same variant's pack_b_f32 lays it out, NR columns per depth), so NR here equals
// the GEMM variant's, and the register block is the GEMM's (AVX2 6x16, AVX-512 12x32).
//
// The driver copies a tile's input region (its pixels plus a 1-pixel halo for 3x3, the nearest x2 upsample
// applied, zeros outside the map) once, channels-last: region pixel q at a + q * ld (ld = channels). For an
// output pixel at region position q, tap t reads region pixel q + tap_off[t] / ld, so MR consecutive region
// positions read MR pixel rows ld apart, each contiguous over the channels: the microkernel broadcasts from
// those rows (stepping one channel per depth) instead of from a packed panel.
//
// Each variant lives in its own translation unit (conv2d_avx2.cpp, conv2d_avx512.cpp, compiled with the
// ISA's flags) and defines one constant-initialised table; only intrinsics and local functions are used
// there.
#pragma once
#include <cstdint>

#include "cpu/cpu_features.h"

namespace krea2 {

// c[0..MR) x [0..NR) (row stride ldc) = (add ? c : 0) + sum over t < ntaps, k < kc of
//   a[tap_off[t] + i * ld + k] * b[(t * kc + k) * NR + j]      (i < MR rows, j < NR columns)
// b 64-byte aligned (packed W^T depths, NR floats each). The full tile is computed and stored.
using ConvMicrokernel = void (*)(int64_t ntaps, const int64_t* tap_off, int64_t kc, const float* a,
                                 int64_t ld, const float* b, float* c, int64_t ldc, bool add);

struct ConvKernels {
  Isa isa;
  int64_t mr, nr;
  ConvMicrokernel kernel;
};

extern const ConvKernels kConvKernelsAvx2;
extern const ConvKernels kConvKernelsAvx512;

}  // namespace krea2
