// How close a GEMM can come to the FMA peak on this machine right now: the GEMM microkernel on L1-resident
// operands, timed in alternation with the peak's pure FMA chains.
#pragma once
#include <cstdint>
#include <vector>

#include "bench/peak_unit.h"
#include "cpu/cpu_features.h"
#include "krea2/compute.h"

namespace krea2 {

// GFLOP/s of the whole team (medians and bests over the rounds).
struct KernelCeiling {
  double kernel_median_gflops = 0.0;  // gemm_microkernel_repeat: loads from L1 plus FMAs
  double kernel_best_gflops = 0.0;
  double fma_median_gflops = 0.0;  // FMAs alone (the peak's loop), the same FLOPs per round
  double fma_best_gflops = 0.0;
};

// Rounds of ~0.05 s each of the microkernel and of the FMA chains of one ISA (the GEMM variant and the peak
// loop of `isa`, default the active level), on `threads` threads, so both see the same
// conditions. On a shared host the two can differ by much more than on a quiet one: something else on the
// core (an SMT sibling) can slow every load while leaving register-only FMAs alone. Rounds can be taken at
// several moments (e.g. between the timed reps of a benchmark) and summarised together.
class KernelCeilingMeter {
 public:
  // The GEMM variant of (isa, compute) against the peak loop of the unit it runs on (peak_unit_for);
  // calibrates the round length.
  explicit KernelCeilingMeter(int threads, Isa isa = active_isa(), Compute compute = Compute::kF32);
  void measure(int rounds);
  KernelCeiling result() const;  // over every round so far; zeros before the first
  int rounds() const { return int(kernel_.size()); }

 private:
  int threads_;
  Isa isa_;
  Compute compute_;
  PeakUnit unit_;
  int64_t calls_ = 0;  // microkernel calls per thread per round
  std::vector<double> kernel_, fma_;
};

}  // namespace krea2
