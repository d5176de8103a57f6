// The element-wise passes' per-row kernels (RMSNorm with or without modulation, interleaved rope, SwiGLU,
// sigmoid gate, gated residual), one table per instruction set level: row_kernels_avx2.cpp (the build floor)
// and row_kernels_avx512.cpp (compiled with AVX-512 flags, reached only when active_isa() is avx512). The
// callers (ops/norm.cpp, ops/rope.cpp, ops/activations.cpp) keep the loops over rows and the threading and
// call these through row_kernels(), so adding a level means adding a table.
#pragma once
#include <cstdint>

#include "cpu/cpu_features.h"

namespace krea2 {

struct RowKernels {
  Isa isa;
  const char* name;
  // out = x / rms(x) * (1 + weight), then (scale) out = (1 + scale) * out + shift. out may be x.
  void (*norm)(const float* x, int64_t dim, const float* weight, float eps, float* out, const float* scale,
               const float* shift);
  // out = weight * (x / rms(x)) (the text encoder's plain-weight RMSNorm). out may be x.
  void (*norm_plain)(const float* x, int64_t dim, const float* weight, float eps, float* out);
  // Rotates the pairs (x[2k], x[2k+1]) by the angle with cosine c[k] and sine s[k], k < half.
  void (*rotate_pairs)(float* x, const float* c, const float* s, int64_t half);
  // a = silu(a) * b; o = o * sigmoid(g); x += gate * y (x += y without a gate).
  void (*swiglu)(float* a, const float* b, int64_t dim);
  void (*sigmoid_gate)(float* o, const float* g, int64_t dim);
  void (*gated_residual)(float* x, const float* y, const float* gate, int64_t dim);
};

extern const RowKernels kRowKernelsAvx2;
extern const RowKernels kRowKernelsAvx512;

// The table of `isa` (the one dispatch point); the no-argument form uses active_isa().
const RowKernels& row_kernels(Isa isa);
const RowKernels& row_kernels();

}  // namespace krea2
