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

KernelCeiling measure_kernel_ceiling(int threads, int rounds) {
  threads = std::max(threads, 1);
  rounds = std::max(rounds, 1);
  // Calibrate to ~0.05 s per run.
  int64_t calls = 256;
  double t = kernel_seconds(threads, calls);
  while (t < 0.01) {
    calls *= 4;
    t = kernel_seconds(threads, calls);
  }
  calls = std::max<int64_t>(1, int64_t(double(calls) * 0.05 / t));
  const double flops = double(threads) * double(calls) * double(kGemmMicrokernelFlops);
  constexpr int64_t kFlopsPerFma = 16;  // 8 float lanes x (multiply + add)
  const int64_t fmas = calls * (kGemmMicrokernelFlops / kFlopsPerFma);
  std::vector<double> kernel, fma;
  for (int r = 0; r < rounds; ++r) {
    kernel.push_back(flops / kernel_seconds(threads, calls) * 1e-9);
    fma.push_back(flops / fma_chains_seconds(threads, fmas) * 1e-9);  // the same FLOPs as the kernel's
  }
  KernelCeiling c;
  c.kernel_median_gflops = median_of(kernel);
  c.kernel_best_gflops = *std::max_element(kernel.begin(), kernel.end());
  c.fma_median_gflops = median_of(fma);
  c.fma_best_gflops = *std::max_element(fma.begin(), fma.end());
  return c;
}

}  // namespace krea2
