// The int8 dot peak's chains on ymm registers with AVX-VNNI: VEX-encoded vpdpbusd, u8 x s8 summed in fours
// into int32 (compiled with -mavxvnni, *_avxvnni.cpp in CMakeLists.txt; run only when
// dot_unit_supported(DotUnit::kInt8AvxVnni)). The VEX form exists without AVX-512 (e.g. Alder Lake) and
// reaches only ymm0..15.
#include <immintrin.h>

#include <cstdint>

#include "bench/dot_peak_chains.h"

#if !defined(__AVXVNNI__)
#error "dot_peak_avxvnni.cpp needs -mavxvnni (set for *_avxvnni.cpp by CMakeLists.txt)"
#endif

namespace krea2 {
namespace {

// Two vpdpbusd ymm a cycle of latency 5 need 10 chains in flight; 12 plus the two operands use 14 of the 16
// registers VEX can name.
constexpr int kChains = 12;
constexpr int kLanes = 8;

#define KREA2_EACH_CHAIN(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#define KREA2_COUNT(j) +1
static_assert(0 KREA2_EACH_CHAIN(KREA2_COUNT) == kChains);

#define KREA2_LOAD(j) __m256i c##j = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc + kLanes * (j)));
// In inline asm on named accumulators, as the zmm loop (GCC 12 adds register copies around the intrinsic).
// {vex} (%{ %} in GCC asm, where braces pick dialects) asks the assembler for the AVX-VNNI encoding: without
// it, it may pick the EVEX (AVX512_VNNI) one. The "x" constraint keeps the registers within ymm0..15.
#define KREA2_DOT(j) asm("%{vex%} vpdpbusd %2, %1, %0" : "+x"(c##j) : "x"(va), "x"(vb));
#define KREA2_STORE(j) _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + kLanes * (j)), c##j);

__attribute__((noinline)) void dot_chains(int64_t iters, uint32_t a, uint32_t b, uint32_t* acc) {
  const __m256i va = _mm256_set1_epi32(int(a)), vb = _mm256_set1_epi32(int(b));
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

const DotChains kDotChainsInt8AvxVnni = {kChains, kLanes, kLanes * 4 * 2, dot_chains};

}  // namespace krea2
