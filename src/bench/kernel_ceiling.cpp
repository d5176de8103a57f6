#include "bench/kernel_ceiling.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "bench/fma_peak.h"
#include "ops/gemm.h"

namespace krea2 {
namespace {

double kernel_seconds(int threads, int64_t calls, Isa isa, Compute compute) {
  return team_seconds(threads, [calls, isa, compute] { gemm_microkernel_repeat(calls, isa, compute); });
}

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

KernelCeilingMeter::KernelCeilingMeter(int threads, Isa isa, Compute compute)
    : threads_(std::max(threads, 1)), isa_(isa), compute_(compute), unit_(peak_unit_for(isa, compute)) {
  // Calibrate to ~0.05 s per round.
  int64_t calls = 256;
  double t = kernel_seconds(threads_, calls, isa_, compute_);
  while (t < 0.01) {
    calls *= 4;
    t = kernel_seconds(threads_, calls, isa_, compute_);
  }
  calls_ = std::max<int64_t>(1, int64_t(double(calls) * 0.05 / t));
}

void KernelCeilingMeter::measure(int rounds) {
  const int64_t kernel_flops = gemm_microkernel_flops(isa_, compute_);
  const double flops = double(threads_) * double(calls_) * double(kernel_flops);
  const int64_t instructions = calls_ * (kernel_flops / peak_unit_instruction_ops(unit_));
  for (int r = 0; r < rounds; ++r) {
    kernel_.push_back(flops / kernel_seconds(threads_, calls_, isa_, compute_) * 1e-9);
    // The same operations as the kernel's, on the unit's peak loop.
    fma_.push_back(flops / peak_unit_chains_seconds(threads_, instructions, unit_) * 1e-9);
  }
}

KernelCeiling KernelCeilingMeter::result() const {
  KernelCeiling c;
  if (kernel_.empty()) return c;
  c.kernel_median_gflops = median_of(kernel_);
  c.kernel_best_gflops = *std::max_element(kernel_.begin(), kernel_.end());
  c.fma_median_gflops = median_of(fma_);
  c.fma_best_gflops = *std::max_element(fma_.begin(), fma_.end());
  return c;
}

}  // namespace krea2
