// The peak measurement's FMA chains on 512-bit registers (compiled with -mavx512f, *_avx512.cpp in
// CMakeLists.txt; run only when active_isa() is avx512).
// GCC 12's AVX-512 intrinsics start from a self-initialised "undefined" vector and warn about it wherever
// they are inlined (GCC bug 105593); the warning is about the header, not about our code.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include "bench/fma_chains.h"

#if !defined(__AVX512F__)
#error "fma_peak_avx512.cpp needs -mavx512f (set for *_avx512.cpp by CMakeLists.txt)"
#endif

namespace krea2 {
namespace {

// Two 512-bit FMA pipes of latency 4 (Sapphire Rapids, Zen 5) need at least 8 chains in flight; 16 leaves
// headroom and, with the two operands, fits the 32 zmm registers.
constexpr int kChains = 16;

// As fma_chains in fma_peak.cpp: converges to add / (1 - mul), never denormal, nothing foldable.
__attribute__((noinline)) float fma_chains(int64_t iters, float mul, float add) {
  __m512 acc[kChains];
  for (int j = 0; j < kChains; ++j) acc[j] = _mm512_set1_ps(1.0f + 0.01f * float(j));
  const __m512 m = _mm512_set1_ps(mul), a = _mm512_set1_ps(add);
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 16
    for (int j = 0; j < kChains; ++j) acc[j] = _mm512_fmadd_ps(acc[j], m, a);
  }
  __m512 sum = acc[0];
  for (int j = 1; j < kChains; ++j) sum = _mm512_add_ps(sum, acc[j]);
  return _mm512_reduce_add_ps(sum);
}

}  // namespace

const FmaChains kFmaChainsAvx512 = {kChains, 32, fma_chains};

}  // namespace krea2
