// krea2_bench_gemm_modes: gemm_xwt in the float32 and bf16 compute modes at the forward's linear shapes
// (1088 rows = 64 text + 1024 image tokens; N x K = 6144 x 6144, 16384 x 6144, 6144 x 16384), BF16 weights,
// every configuration timed once per round, rounds interleaved (a shared machine drifts: neighbouring
// timings see the same load), the median of the rounds printed, with the median fraction of the unit's peak
// (an FMA / vdpbf16ps loop on every thread, measured right before each product). Also the microkernels
// alone (operands in L1: each core's ceiling).
//
//   krea2_bench_gemm_modes                          f32 vs bf16 at the default blockings, 5 rounds
//   krea2_bench_gemm_modes 144:512:512 96:768:512   plus bf16 at these MC:KC:NC blockings
//   KREA2_BENCH_ROUNDS=9 krea2_bench_gemm_modes      more rounds (OMP_NUM_THREADS sets the threads)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "cpu/cpu_features.h"
#include "ops/gemm.h"
#include "ops/linear.h"
#include "tensor/convert.h"

namespace {

using krea2::Compute;
using krea2::GemmBlocking;
using krea2::Isa;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// One way to run the products: a compute mode and, for bf16, optionally a blocking.
struct Config {
  std::string name;
  Compute compute;
  bool custom = false;
  GemmBlocking blocking;
};

// The units' peaks on every thread at once: 24 independent chains of one instruction, GFLOP/s in total
// (vfmadd231ps: 2 x 16 FLOPs; vdpbf16ps: 4 x 16). Compiled for the AVX-512 target of this function only, so
// the rest of the bench stays at the build floor.
template <bool kBf16>
__attribute__((target("avx512f,avx512bf16"))) double unit_peak(int64_t kIters = 20'000'000) {
  const auto t0 = std::chrono::steady_clock::now();
  double flops = 0;
#pragma omp parallel reduction(+ : flops)
  {
    __m512 acc[24];
    for (__m512& a : acc) a = _mm512_setzero_ps();
    // 1.0 and 2^-11 in both bf16 halves (and as float32 values near them): nothing denormal.
    __m512 b = _mm512_castsi512_ps(_mm512_set1_epi32(0x3F803F80)),
           c = _mm512_castsi512_ps(_mm512_set1_epi32(0x3A003A00));
    for (int64_t it = 0; it < kIters; ++it) {
#pragma GCC unroll 24
      for (int i = 0; i < 24; ++i) {
        if constexpr (kBf16) {
          acc[i] = _mm512_dpbf16_ps(acc[i], (__m512bh)b, (__m512bh)c);
        } else {
          acc[i] = _mm512_fmadd_ps(b, c, acc[i]);
        }
      }
      __asm__ volatile("" : "+v"(b));  // keeps the loop from being folded
    }
    __m512 s = acc[0];
    for (int i = 1; i < 24; ++i) s = _mm512_add_ps(s, acc[i]);
    volatile float sink = _mm512_reduce_add_ps(s);
    (void)sink;
    flops += double(kIters) * 24 * 16 * (kBf16 ? 4 : 2);
  }
  return flops / seconds_since(t0) * 1e-9;
}

// The microkernel of a mode alone on every thread at once, GFLOP/s in total.
double microkernel(Compute compute) {
  constexpr int64_t kCalls = 20000;
  const auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel
  krea2::gemm_microkernel_repeat(kCalls, krea2::active_isa(), compute);
  const double flops = double(kCalls) * double(krea2::gemm_microkernel_flops(krea2::active_isa(), compute)) *
                       omp_get_max_threads();
  return flops / seconds_since(t0) * 1e-9;
}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = std::getenv("KREA2_BENCH_ROUNDS") ? std::atoi(std::getenv("KREA2_BENCH_ROUNDS")) : 5;
  std::vector<Config> configs = {{"f32", Compute::kF32, false, {}}, {"bf16", Compute::kBf16, false, {}}};
  for (int i = 1; i < argc; ++i) {
    GemmBlocking b = krea2::gemm_blocking(krea2::active_isa(), Compute::kBf16);
    if (std::sscanf(argv[i], "%ld:%ld:%ld", &b.mc, &b.kc, &b.nc) != 3) {
      std::fprintf(stderr, "usage: %s [MC:KC:NC ...] (bf16 blockings to compare)\n", argv[0]);
      return 2;
    }
    configs.push_back({std::string("bf16 ") + argv[i], Compute::kBf16, true, b});
  }
  const GemmBlocking bf16_default = krea2::gemm_blocking(krea2::active_isa(), Compute::kBf16);
  std::printf("%d threads, gemm %s / %s, bf16 default blocking %ld:%ld:%ld, %d rounds (medians)\n",
              omp_get_max_threads(), krea2::gemm_kernel_name(krea2::active_isa(), Compute::kF32),
              krea2::gemm_kernel_name(krea2::active_isa(), Compute::kBf16), bf16_default.mc, bf16_default.kc,
              bf16_default.nc, rounds);

  // Peaks and microkernels, interleaved (each microkernel right after its unit's peak).
  const bool bf16_unit = krea2::active_isa() == Isa::kAvx512 && krea2::cpu_features().avx512_bf16;
  std::vector<double> fma, dp, mk_f32, mk_bf16;
  for (int r = 0; r < rounds; ++r) {
    if (bf16_unit) fma.push_back(unit_peak<false>());
    mk_f32.push_back(microkernel(Compute::kF32));
    if (bf16_unit) dp.push_back(unit_peak<true>());
    mk_bf16.push_back(microkernel(Compute::kBf16));
  }
  if (bf16_unit) std::printf("peak: fma %.0f GFLOP/s, vdpbf16ps %.0f GFLOP/s\n", median(fma), median(dp));
  std::printf("microkernel: f32 %.0f GFLOP/s, bf16 %.0f GFLOP/s\n", median(mk_f32), median(mk_bf16));
  if (bf16_unit) {
    std::vector<double> f, b;
    for (int r = 0; r < rounds; ++r) {
      f.push_back(100.0 * mk_f32[size_t(r)] / fma[size_t(r)]);
      b.push_back(100.0 * mk_bf16[size_t(r)] / dp[size_t(r)]);
    }
    std::printf("microkernel of peak: f32 %.0f %%, bf16 %.0f %%\n", median(f), median(b));
  }

  const int64_t M = 1088;
  const std::pair<int64_t, int64_t> shapes[] = {{6144, 6144}, {16384, 6144}, {6144, 16384}};
  for (auto [N, K] : shapes) {
    std::vector<float> x(size_t(M * K));
    for (size_t i = 0; i < x.size(); ++i) x[i] = float(int64_t(i * 2654435761u % 2001) - 1000) * 1e-3f;
    std::vector<uint16_t> w(size_t(N * K));
    for (size_t i = 0; i < w.size(); ++i)
      w[i] = krea2::f32_to_bf16(float(int64_t(i * 40503u % 2001) - 1000) * 1e-5f);
    const krea2::WeightMatrix weight{krea2::DType::BF16, N, K, w.data()};
    std::vector<float> y(size_t(M * N));
    std::vector<std::vector<double>> gflops(configs.size()), of_peak(configs.size());
    const double flops = 2.0 * double(M) * double(N) * double(K);
    for (int r = 0; r < rounds + 1; ++r) {  // round 0 warms up (page faults, packing buffers)
      for (size_t c = 0; c < configs.size(); ++c) {
        // The unit's peak right before each product, so the fraction compares like loads on a shared machine.
        const bool bf16 = configs[c].compute == Compute::kBf16;
        const double peak = !bf16_unit ? 0.0
                            : bf16     ? unit_peak<true>(4'000'000)
                                       : unit_peak<false>(8'000'000);
        const krea2::GemmComputeScope scope(configs[c].compute);
        if (configs[c].custom)
          krea2::set_gemm_blocking(configs[c].blocking, krea2::active_isa(), Compute::kBf16);
        const auto t0 = std::chrono::steady_clock::now();
        krea2::gemm_xwt(x.data(), M, K, weight, y.data(), N, false);
        const double t = seconds_since(t0);
        if (configs[c].custom) krea2::set_gemm_blocking(bf16_default, krea2::active_isa(), Compute::kBf16);
        if (r == 0) continue;
        gflops[c].push_back(flops / t * 1e-9);
        if (peak > 0) of_peak[c].push_back(100.0 * gflops[c].back() / peak);
      }
    }
    // "% of peak": of the FMA peak for f32, of the vdpbf16ps peak for bf16 (median of the rounds' ratios).
    std::printf("%ld x %ld x %ld (BF16 weight):\n", M, N, K);
    for (size_t c = 0; c < configs.size(); ++c) {
      std::printf("  %-18s %5.0f GFLOP/s", configs[c].name.c_str(), median(gflops[c]));
      if (!of_peak[c].empty()) std::printf("  %3.0f %% of peak", median(of_peak[c]));
      std::printf("\n");
    }
  }
  return 0;
}
