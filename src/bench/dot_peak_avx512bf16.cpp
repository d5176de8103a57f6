// The bf16 dot peak's chains: vdpbf16ps on zmm registers (compiled with -mavx512bf16, *_avx512bf16.cpp in
// CMakeLists.txt; run only when dot_unit_supported(DotUnit::kBf16Avx512)).
// GCC 12's AVX-512 intrinsics start from a self-initialised "undefined" vector and warn about it wherever
// they are inlined (GCC bug 105593); the warning is about the header, not about our code.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <cstdint>

#include "bench/dot_peak_chains.h"

#if !defined(__AVX512F__) || !defined(__AVX512BF16__)
#error "dot_peak_avx512bf16.cpp needs -mavx512f -mavx512bf16 (set for *_avx512bf16.cpp by CMakeLists.txt)"
#endif

namespace krea2 {
namespace {

// Sapphire Rapids starts one vdpbf16ps zmm every 2 cycles (measured on the project's VM: the same rate from 4
// to 28 chains); 16 chains also cover a latency of up to 16 cycles at one a cycle elsewhere, and with the two
// operands fit the 32 zmm registers.
constexpr int kChains = 16;
constexpr int kLanes = 16;

#define KREA2_EACH_CHAIN(X) \
  X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15)
#define KREA2_COUNT(j) +1
static_assert(0 KREA2_EACH_CHAIN(KREA2_COUNT) == kChains);

#define KREA2_LOAD(j) __m512 c##j = _mm512_castsi512_ps(_mm512_loadu_si512(acc + kLanes * (j)));
// The instruction itself in inline asm, on named accumulators: the loop then holds exactly kChains
// vdpbf16ps and the counter, whatever the compiler's register allocation would add around an intrinsic
// (GCC 12 puts register copies into such loops for vpdpbusd).
#define KREA2_DOT(j) asm("vdpbf16ps %2, %1, %0" : "+v"(c##j) : "v"(va), "v"(vb));
#define KREA2_STORE(j) _mm512_storeu_si512(acc + kLanes * (j), _mm512_castps_si512(c##j));

__attribute__((noinline)) void dot_chains(int64_t iters, uint32_t a, uint32_t b, uint32_t* acc) {
  const __m512i va = _mm512_set1_epi32(int(a)), vb = _mm512_set1_epi32(int(b));
  KREA2_EACH_CHAIN(KREA2_LOAD)
  for (int64_t i = 0; i < iters; ++i) {
    KREA2_EACH_CHAIN(KREA2_DOT)
  }
  KREA2_EACH_CHAIN(KREA2_STORE)
}

#undef KREA2_STORE
#undef KREA2_DOT
#undef KREA2_LOAD
#undef KREA2_COUNT
#undef KREA2_EACH_CHAIN

}  // namespace

const DotChains kDotChainsBf16Avx512 = {kChains, kLanes, kLanes * 2 * 2, dot_chains};

}  // namespace krea2
