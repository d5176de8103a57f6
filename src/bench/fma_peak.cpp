#include "bench/fma_peak.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstdint>

#include "bench/fma_chains.h"

#if !defined(__FMA__) || !defined(__AVX2__)
#error "fma_peak.cpp needs -mavx2 -mfma (set globally by CMakeLists.txt)"
#endif

namespace krea2 {

namespace {

// Independent accumulator chains per thread (256-bit). Zen 3 has 2 FMA pipes of latency 4, so at least 8
// chains are needed to keep both busy; 12 leaves headroom (Intel cores: 2 x 4 too) and still fits the 16 ymm
// registers with the two operands, so nothing spills.
constexpr int kChains = 12;

// Written with every run's result, so the compiler must compute the chains.
volatile float g_sink = 0.0f;
// The FMA operands, read through volatile so the compiler cannot specialise the loop on known constants.
volatile float g_mul = 0.9999f, g_add = 1e-4f;

// `iters` rounds of kChains FMAs; acc = acc * mul + add converges to add / (1 - mul), so values stay normal
// (no denormal slow path) and finite however long it runs. `mul` and `add` arrive at run time, so nothing can
// be folded; the result depends on every FMA, so nothing can be dropped.
__attribute__((noinline)) float fma_chains(int64_t iters, float mul, float add) {
  __m256 acc[kChains];
  for (int j = 0; j < kChains; ++j) acc[j] = _mm256_set1_ps(1.0f + 0.01f * float(j));
  const __m256 m = _mm256_set1_ps(mul), a = _mm256_set1_ps(add);
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 12
    for (int j = 0; j < kChains; ++j) acc[j] = _mm256_fmadd_ps(acc[j], m, a);
  }
  __m256 sum = acc[0];
  for (int j = 1; j < kChains; ++j) sum = _mm256_add_ps(sum, acc[j]);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, sum);
  float s = 0.0f;
  for (float x : lanes) s += x;
  return s;
}

const FmaChains& chains_for(Isa isa) {
  return isa == Isa::kAvx512 ? kFmaChainsAvx512 : kFmaChainsAvx2;
}

// Seconds for every thread to finish `iters` rounds.
double timed_run(const FmaChains& chains, int threads, int64_t iters) {
  return team_seconds(threads, [&chains, iters] {
    const float r = chains.run(iters, g_mul, g_add);
#pragma omp critical
    g_sink = g_sink + r;
  });
}

}  // namespace

const FmaChains kFmaChainsAvx2 = {kChains, 16, fma_chains};

int64_t fma_instruction_flops(Isa isa) {
  return chains_for(isa).flops;
}

double fma_chains_seconds(int threads, int64_t fmas, Isa isa) {
  const FmaChains& chains = chains_for(isa);
  return timed_run(chains, std::max(threads, 1), std::max<int64_t>(1, fmas / chains.chains));
}

double measure_fma_peak_gflops(int threads, Isa isa) {
  const FmaChains& chains = chains_for(isa);
  threads = std::max(threads, 1);
  // Calibrate to ~0.1 s per run (also wakes the threads and lets the clock ramp up).
  int64_t iters = 1 << 20;
  double t = timed_run(chains, threads, iters);
  while (t < 0.02) {
    iters *= 4;
    t = timed_run(chains, threads, iters);
  }
  iters = std::max<int64_t>(1, int64_t(double(iters) * 0.1 / t));
  // Many short runs, best kept: a run that another process interrupts only loses itself, and the slowest
  // thread of a run sets its time, so one busy core would otherwise halve the result.
  auto best_of = [&](int team, int runs) {
    double best = 0.0;
    for (int run = 0; run < runs; ++run) {
      const double s = timed_run(chains, team, iters);
      best = std::max(best, double(team) * double(iters) * chains.chains * double(chains.flops) / s * 1e-9);
    }
    return best;
  };
  double best = best_of(threads, 10);
  if (threads == 1) return best;
  // On a shared VM the scheduler sometimes keeps two of the team on one core for a second or more (seen: a
  // 2-thread peak of 91 GFLOP/s where one thread alone reads 90). Compare with one thread and measure again,
  // a few times, while the team reads under 80 % of threads x one thread.
  const double single = best_of(1, 3);
  for (int retry = 0; retry < 5 && best < 0.8 * threads * single; ++retry)
    best = std::max(best, best_of(threads, 10));
  return best;
}

}  // namespace krea2
