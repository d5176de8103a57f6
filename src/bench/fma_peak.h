// The machine's measured float32 FMA peak: the denominator of `krea2 bench`'s "% of peak".
#pragma once

namespace krea2 {

// GFLOP/s of `threads` OpenMP threads each issuing 256-bit FMAs (8 lanes x 2 FLOPs = 16 FLOPs per
// instruction) on independent accumulator chains: 10 runs of ~0.1 s, the best kept (~1.2 s in all). This is
// what a perfect float32 GEMM could reach on these cores (no memory traffic), e.g. ~90 GFLOP/s per Zen 3
// core at 2.8 GHz.
double measure_fma_peak_gflops(int threads);

}  // namespace krea2
