// The int8 dot peak's chains on zmm registers: vpdpbusd, u8 x s8 summed in fours into int32 (compiled with
// -mavx512vnni, *_avx512vnni.cpp in CMakeLists.txt; run only when dot_unit_supported(DotUnit::kInt8Avx512)).
// GCC 12's AVX-512 intrinsics start from a self-initialised "undefined" vector and warn about it wherever
// they are inlined (GCC bug 105593); the warning is about the header, not about our code.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <cstdint>

#include "bench/dot_peak_chains.h"

#if !defined(__AVX512F__) || !defined(__AVX512VNNI__)
#error "dot_peak_avx512vnni.cpp needs -mavx512f -mavx512vnni (set for *_avx512vnni.cpp by CMakeLists.txt)"
#endif

namespace krea2 {
namespace {

// Two vpdpbusd zmm a cycle of latency 5 (Ice Lake and Sapphire Rapids servers) need 10 chains in flight; 16
// leave headroom and with the two operands fit the 32 zmm registers.
constexpr int kChains = 16;
constexpr int kLanes = 16;

#define KREA2_EACH_CHAIN(X) \
  X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15)
#define KREA2_COUNT(j) +1
static_assert(0 KREA2_EACH_CHAIN(KREA2_COUNT) == kChains);

#define KREA2_LOAD(j) __m512i c##j = _mm512_loadu_si512(acc + kLanes * (j));
// In inline asm on named accumulators: written with _mm512_dpbusd_epi32, GCC 12 adds register copies to the
// loop (measured ~10 % below this loop's rate). AT&T order: the u8 operand (va) is the middle one.
#define KREA2_DOT(j) asm("vpdpbusd %2, %1, %0" : "+v"(c##j) : "v"(va), "v"(vb));
#define KREA2_STORE(j) _mm512_storeu_si512(acc + kLanes * (j), c##j);

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

const DotChains kDotChainsInt8Avx512 = {kChains, kLanes, kLanes * 4 * 2, dot_chains};

}  // namespace krea2
