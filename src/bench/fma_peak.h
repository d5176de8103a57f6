// The machine's measured float32 FMA peak for an instruction set level: the denominator of `krea2 bench`'s
// "% of peak".
#pragma once
#include <omp.h>

#include <cstdint>

#include "cpu/cpu_features.h"

namespace krea2 {

// Seconds for every thread of a team of `threads` to run work() once, timed from a common start: the slowest
// thread sets the time, as in a parallel GEMM.
template <class Work>
double team_seconds(int threads, Work work) {
  double start = 0.0, stop = 0.0;
#pragma omp parallel num_threads(threads)
  {
#pragma omp barrier
#pragma omp master
    start = omp_get_wtime();
    work();
#pragma omp barrier
#pragma omp master
    stop = omp_get_wtime();
  }
  return stop - start;
}

// GFLOP/s of `threads` OpenMP threads each issuing the ISA's FMAs (avx2: 256-bit, 8 lanes x 2 FLOPs = 16
// FLOPs per instruction, 12 chains; avx512: 512-bit, 32 FLOPs, 16 chains) on independent accumulator chains:
// 10 runs of ~0.1 s, the best kept (~1.5 s in all with a one-thread check; measured again, up to 5 times,
// while the team reads under 80 % of threads x one thread, i.e. the scheduler kept two threads on one core).
// This is what a perfect float32 GEMM of that ISA could reach on these cores (no memory traffic), e.g. ~90
// GFLOP/s per core of the project's Zen 4 VM at ~2.8 GHz with avx2. `isa` must be supported (isa_supported).
double measure_fma_peak_gflops(int threads, Isa isa = active_isa());

// FLOPs of one FMA instruction of the ISA's peak loop: 16 (avx2) or 32 (avx512).
int64_t fma_instruction_flops(Isa isa = active_isa());

// Seconds for a team of `threads` OpenMP threads to each issue `fmas` FMAs of the ISA's width on the peak
// measurement's independent chains; the slowest thread sets the time.
double fma_chains_seconds(int threads, int64_t fmas, Isa isa = active_isa());

}  // namespace krea2
