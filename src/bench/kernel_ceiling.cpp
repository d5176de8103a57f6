#include "bench/kernel_ceiling.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "bench/fma_peak.h"
#include "ops/gemm.h"

namespace krea2 {
namespace {

double kernel_seconds(int threads, int64_t calls) {
  return team_seconds(threads, [calls] { gemm_microkernel_repeat(calls); });
}

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

KernelCeilingMeter::KernelCeilingMeter(int threads) : threads_(std::max(threads, 1)) {
  // Calibrate to ~0.05 s per round.
  int64_t calls = 256;
  double t = kernel_seconds(threads_, calls);
  while (t < 0.01) {
    calls *= 4;
    t = kernel_seconds(threads_, calls);
  }
  calls_ = std::max<int64_t>(1, int64_t(double(calls) * 0.05 / t));
}

void KernelCeilingMeter::measure(int rounds) {
  const double flops = double(threads_) * double(calls_) * double(kGemmMicrokernelFlops);
  const int64_t fmas = calls_ * (kGemmMicrokernelFlops / kFlopsPerFma);
  for (int r = 0; r < rounds; ++r) {
    kernel_.push_back(flops / kernel_seconds(threads_, calls_) * 1e-9);
    fma_.push_back(flops / fma_chains_seconds(threads_, fmas) * 1e-9);  // the same FLOPs as the kernel's
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
