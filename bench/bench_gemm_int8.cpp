// krea2_bench_gemm_int8: the int8 compute mode's GEMM against float32 at the forward's shapes (M = 1088 rows
// = 64 text + 1024 image tokens; N x K = 6144 x 6144 (attention projections), 16384 x 6144 (FFN up), 6144 x
// 16384 (FFN down)), plus the int8 microkernel alone and the activation quantizer.
//
//   OMP_NUM_THREADS=2 build/bench/krea2_bench_gemm_int8 [--reps 5] [--isa avx2|avx512] [--kc 1024,2048,...]
//       [--mc 48,...] [--nc 512,...] [--no-f32] [--no-peak] [--micro] [--cpu-time]
//
// Each rep times, shape by shape, f32 and then int8 under every combination of the --mc / --kc / --nc
// given (default: the variant's blocking), interleaved so a busy moment of a shared machine hits all alike;
// medians over the reps are printed. GOP/s count 2 operations per multiply-add. The int8 time includes
// quantize_activations_i8 (as in the forward), also timed alone (without and with the G = 16 rotation).
// The peaks (the vpdpbusd / FMA chain loops of bench/dot_peak.h and bench/fma_peak.h) give the "% of peak"
// columns; --micro stops after them and the microkernels. --cpu-time: see now() below.
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include "bench/dot_peak.h"
#include "bench/fma_peak.h"
#include "cpu/cpu_features.h"
#include "ops/gemm.h"
#include "ops/int8_activations.h"
#include "ops/linear.h"
#include "tensor/random.h"

namespace krea2 {
namespace {

constexpr int64_t kM = 1088;

struct Shape {
  int64_t n, k;
};
constexpr Shape kShapes[] = {{6144, 6144}, {16384, 6144}, {6144, 16384}};

std::vector<float> random_floats(int64_t n, uint64_t seed, float scale) {
  std::vector<float> v(static_cast<size_t>(n));
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) v[size_t(i)] = counter_uniform(counter_key(seed), uint64_t(i)) * scale;
  return v;
}

// Random int8 codes (within +-127) with row scales, and the same-shaped float32 weight.
struct Weights {
  std::vector<int8_t> codes;
  std::vector<float> scales, f32;
  WeightMatrix i8, f;
  Weights(int64_t n, int64_t k, uint64_t seed) {
    f32 = random_floats(n * k, seed, 1.0f / 64);
    codes.resize(size_t(n * k));
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n * k; ++i) codes[size_t(i)] = int8_t(f32[size_t(i)] * 64.0f * 127.0f);
    scales.assign(size_t(n), 1.0f / (64.0f * 127.0f));
    i8 = WeightMatrix{DType::I8, n, k, codes.data()};
    i8.row_scales = scales.data();
    f = WeightMatrix{DType::F32, n, k, f32.data()};
  }
};

// Wall-clock seconds, or (--cpu-time) the process's CPU seconds divided by the team size: on a shared
// machine where other processes take turns on the cores, CPU time excludes the turns the team did not get
// (run with OMP_WAIT_POLICY=passive so that idle threads do not spin).
bool g_cpu_time = false;
int g_threads = 1;
double now() {
  if (!g_cpu_time) return omp_get_wtime();
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return (double(t.tv_sec) + 1e-9 * double(t.tv_nsec)) / g_threads;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

std::vector<int64_t> parse_list(const char* s) {
  std::vector<int64_t> v;
  for (const char* p = s; *p;) {
    v.push_back(std::strtoll(p, nullptr, 10));
    p = std::strchr(p, ',');
    if (p == nullptr) break;
    ++p;
  }
  return v;
}

// GOP/s of `calls` int8 (or f32) microkernel runs on each of `threads` threads, best of 5.
double microkernel_gops(int threads, Isa isa, Compute compute) {
  const int64_t calls = compute == Compute::kInt8 ? 40000 : 10000;
  double best = 0.0;
  for (int r = 0; r < 5; ++r) {
    const double t = team_seconds(threads, [&] { gemm_microkernel_repeat(calls, isa, compute); });
    best = std::max(best,
                    double(threads) * double(calls) * double(gemm_microkernel_flops(isa, compute)) / t / 1e9);
  }
  return best;
}

int run(int argc, char** argv) {
  int reps = 5;
  Isa isa = active_isa();
  std::vector<int64_t> kcs, mcs, ncs;
  bool f32 = true, peaks = true, gemm = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const char* next = i + 1 < argc ? argv[i + 1] : "";
    if (a == "--reps") {
      reps = std::atoi(next), ++i;
    } else if (a == "--isa") {
      const auto parsed = parse_isa(next);
      if (!parsed || !isa_supported(*parsed)) {
        std::fprintf(stderr, "unsupported --isa %s\n", next);
        return 2;
      }
      isa = *parsed, ++i;
    } else if (a == "--kc") {
      kcs = parse_list(next), ++i;
    } else if (a == "--mc") {
      mcs = parse_list(next), ++i;
    } else if (a == "--nc") {
      ncs = parse_list(next), ++i;
    } else if (a == "--no-f32") {
      f32 = false;
    } else if (a == "--no-peak") {
      peaks = false;
    } else if (a == "--cpu-time") {
      g_cpu_time = true;
    } else if (a == "--micro") {  // peaks and microkernels only
      gemm = false;
    } else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  set_isa_cap(isa);
  const GemmBlocking defaults = gemm_blocking(isa, Compute::kInt8);
  if (kcs.empty()) kcs = {defaults.kc};
  if (mcs.empty()) mcs = {defaults.mc};
  if (ncs.empty()) ncs = {defaults.nc};
  // Every combination of the blockings given is one int8 configuration.
  std::vector<GemmBlocking> configs;
  for (int64_t kc : kcs)
    for (int64_t mc : mcs)
      for (int64_t nc : ncs) configs.push_back({mc, kc, nc, defaults.pack_limit});
  const int threads = omp_get_max_threads();
  g_threads = threads;
  std::printf("%s, %d threads; int8 kernel %s, f32 kernel %s\n", cpu_brand().c_str(), threads,
              gemm_kernel_name(isa, Compute::kInt8), gemm_kernel_name(isa, Compute::kF32));

  const DotUnit unit = isa == Isa::kAvx512 ? DotUnit::kInt8Avx512 : DotUnit::kInt8AvxVnni;
  double dot_peak = 0.0, fma_peak = 0.0;
  if (peaks) {
    dot_peak = dot_unit_supported(unit) ? measure_dot_peak_gops(threads, unit) : 0.0;
    fma_peak = measure_fma_peak_gflops(threads, isa);
    std::printf("peaks (%d threads): %s %.0f GOP/s, fp32 FMA %.0f GFLOP/s\n", threads, dot_unit_name(unit),
                dot_peak, fma_peak);
    const double mk_i8 = microkernel_gops(threads, isa, Compute::kInt8);
    const double mk_f32 = microkernel_gops(threads, isa, Compute::kF32);
    std::printf(
        "microkernel on L1 panels (best of 5): int8 %.0f GOP/s (%.0f %% of the dot peak), f32 %.0f GFLOP/s\n",
        mk_i8, dot_peak > 0 ? 100.0 * mk_i8 / dot_peak : 0.0, mk_f32);
  }
  if (!gemm) return 0;

  std::vector<Weights> weights;
  for (const Shape& s : kShapes) weights.emplace_back(s.n, s.k, uint64_t(s.n * 7 + s.k));
  const std::vector<float> x = random_floats(kM * 16384, 99, 1.0f);
  std::vector<float> y(size_t(kM * 16384));
  std::vector<int8_t> q(size_t(kM * 16384));
  std::vector<float> qs(static_cast<size_t>(kM));

  const size_t n_shapes = std::size(kShapes);
  std::vector<std::vector<double>> t_f32(n_shapes), t_quant(n_shapes), t_quant16(n_shapes);
  std::vector<std::vector<std::vector<double>>> t_i8(n_shapes,
                                                     std::vector<std::vector<double>>(configs.size()));
  for (int rep = 0; rep < reps + 1; ++rep) {  // rep 0 warms up (page faults, packing buffers)
    for (size_t s = 0; s < n_shapes; ++s) {
      const Weights& w = weights[s];
      const int64_t K = kShapes[s].k, N = kShapes[s].n;
      if (f32) {
        const double t0 = now();
        gemm_xwt(x.data(), kM, K, w.f, y.data(), N, false);
        if (rep > 0) t_f32[s].push_back(now() - t0);
      }
      {
        const double t0 = now();
        quantize_activations_i8(x.data(), kM, K, K, 0, q.data(), qs.data());
        if (rep > 0) t_quant[s].push_back(now() - t0);
        const double t1 = now();
        quantize_activations_i8(x.data(), kM, K, K, 16, q.data(), qs.data());  // with the convrot rotation
        if (rep > 0) t_quant16[s].push_back(now() - t1);
      }
      for (size_t c = 0; c < configs.size(); ++c) {
        set_gemm_blocking(configs[c], isa, Compute::kInt8);
        GemmComputeScope scope(Compute::kInt8);
        const double t0 = now();
        gemm_xwt(x.data(), kM, K, w.i8, y.data(), N, false);
        if (rep > 0) t_i8[s][c].push_back(now() - t0);
      }
    }
  }
  set_gemm_blocking(defaults, isa, Compute::kInt8);

  std::printf("\nmedians of %d reps, GOP/s (%% of the int8 dot peak; f32: %% of the FMA peak)\n", reps);
  for (size_t s = 0; s < n_shapes; ++s) {
    const double ops = 2.0 * double(kM) * double(kShapes[s].n) * double(kShapes[s].k);
    std::printf("%lld x %lld x %lld:", static_cast<long long>(kM), static_cast<long long>(kShapes[s].n),
                static_cast<long long>(kShapes[s].k));
    if (f32) {
      const double g = ops / median(t_f32[s]) / 1e9;
      std::printf("  f32 %.0f (%.0f %%)", g, fma_peak > 0 ? 100.0 * g / fma_peak : 0.0);
    }
    std::printf("  quantize %.2f ms (G 16: %.2f ms)\n", 1e3 * median(t_quant[s]), 1e3 * median(t_quant16[s]));
    for (size_t c = 0; c < configs.size(); ++c) {
      const double g = ops / median(t_i8[s][c]) / 1e9;
      std::printf("    int8 mc %lld kc %lld nc %lld: %.0f (%.0f %%)\n", static_cast<long long>(configs[c].mc),
                  static_cast<long long>(configs[c].kc), static_cast<long long>(configs[c].nc), g,
                  dot_peak > 0 ? 100.0 * g / dot_peak : 0.0);
    }
  }
  return 0;
}

}  // namespace
}  // namespace krea2

int main(int argc, char** argv) {
  return krea2::run(argc, argv);
}
