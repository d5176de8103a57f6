// The dot-product chain loops behind the dot peaks, one per unit, each in the translation unit compiled for
// its instruction set (dot_peak_avx512bf16.cpp, dot_peak_avx512vnni.cpp, dot_peak_avxvnni.cpp).
#pragma once
#include <cstdint>

#include "bench/dot_peak.h"

namespace krea2 {

struct DotChains {
  int chains;   // independent accumulators
  int lanes;    // 32-bit lanes per accumulator
  int64_t ops;  // operations per instruction: lanes x products per lane x 2
  // `iters` rounds of one instruction per chain, acc[j] += dot(a, b) on every lane, with the 32-bit word `a`
  // (two bf16, the low half the even element; or four u8, the first byte the lowest) and `b` (two bf16, or
  // four s8) broadcast to every lane. acc holds chains x lanes 32-bit words (float bits for bf16, int32 for
  // int8), read first and written back at the end, so the result depends on every instruction.
  void (*run)(int64_t iters, uint32_t a, uint32_t b, uint32_t* acc);
};

extern const DotChains kDotChainsBf16Avx512;
extern const DotChains kDotChainsInt8Avx512;
extern const DotChains kDotChainsInt8AvxVnni;

// The chains of a unit. Calling run() needs the unit supported (dot_unit_supported).
const DotChains& dot_chains(DotUnit unit);

}  // namespace krea2
