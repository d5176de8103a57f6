// The FMA chain loops behind the peak measurement, one per ISA (fma_peak.cpp: 256-bit, fma_peak_avx512.cpp:
// 512-bit). Each runs `iters` rounds of `chains` independent FMAs acc = acc * mul + add and returns a value
// that depends on every one of them.
#pragma once
#include <cstdint>

namespace krea2 {

struct FmaChains {
  int chains;     // independent accumulators
  int64_t flops;  // FLOPs per FMA instruction: lanes x (multiply + add)
  float (*run)(int64_t iters, float mul, float add);
};

extern const FmaChains kFmaChainsAvx2;
extern const FmaChains kFmaChainsAvx512;

}  // namespace krea2
