// Our GEMM against the libraries the project is measured against, in one process, interleaved:
//   - oneDNN matmul (f32, bf16 inputs with f32 output, u8 x s8 -> f32) at the Krea 2 forward's GEMM shapes,
//     weights in the layout oneDNN picks (format_tag::any), reordered once outside the timing as PyTorch
//     does, against gemm_xwt in f32 / bf16 / int8 compute on the same weights;
//   - a Highway float32 microkernel in the shape of ours (12 rows x 2 vectors, 12 x 32 on AVX-512, reached
//     through Highway's dynamic dispatch) against gemm_microkernel_repeat, both on L1-resident panels.
// Each figure is the median of --rounds rounds (default 5), every method run once per round; "% of peak" sets
// each run against the peak loop of the unit it computes on (bench/fma_peak.h, bench/dot_peak.h), timed in
// the same round, since on a shared machine what a core delivers changes from one minute to the next.
// oneDNN gets its inputs in its types (x already bf16, or u8 with a scale and zero point: PyTorch converts
// outside the matmul too); gemm_xwt takes float32 x and converts it inside the timed call (bf16 rounding
// while packing; int8: dynamic quantization with a scale per row).
//
//   OMP_NUM_THREADS=2 build/bench/krea2_bench_libraries [--rounds N] [--only gemm|micro]
//
// Optional target (bench/CMakeLists.txt): built only where libdnnl-dev and/or libhwy-dev are installed;
// KREA2_HAVE_DNNL / KREA2_HAVE_HWY say which.

#if defined(KREA2_HAVE_HWY)
// Highway's dynamic dispatch compiles the per-target part of this file once per instruction set: it
// re-includes the file (found through the bench directory on the include path) for each target.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "bench_libraries.cpp"
#include <hwy/cache_control.h>
#include <hwy/foreach_target.h>  // must come before highway.h
#include <hwy/highway.h>

#include <cstdint>

HWY_BEFORE_NAMESPACE();
namespace krea2_hwy {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// The same register block, loop and prefetches as the AVX-512 kernel of src/ops/gemm_avx512.cpp, written
// with Highway ops: 12 rows of A times two vectors of B columns (32 floats on AVX-512), 24 accumulators
// named one by one (as ours: arrays of vectors can end up in memory).
constexpr int64_t kMR = 12;
constexpr int64_t kDepth = 256;  // = kGemmMicrokernelDepth
constexpr int64_t kPrefetchA = 16 * kMR;
constexpr int64_t kPrefetchCSteps = 40;

#define KREA2_HWY_ROW(i)                 \
  av = hn::Set(d, a[i]);                 \
  c##i##a = hn::MulAdd(av, b0, c##i##a); \
  c##i##b = hn::MulAdd(av, b1, c##i##b)

#define KREA2_HWY_LOOP(steps)                                     \
  _Pragma("GCC unroll 2") for (int64_t k = 0; k < (steps); ++k) { \
    hwy::Prefetch(a + kPrefetchA);                                \
    const V b0 = hn::Load(d, b);                                  \
    const V b1 = hn::Load(d, b + nv);                             \
    V av;                                                         \
    KREA2_HWY_ROW(0);                                             \
    KREA2_HWY_ROW(1);                                             \
    KREA2_HWY_ROW(2);                                             \
    KREA2_HWY_ROW(3);                                             \
    KREA2_HWY_ROW(4);                                             \
    KREA2_HWY_ROW(5);                                             \
    KREA2_HWY_ROW(6);                                             \
    KREA2_HWY_ROW(7);                                             \
    KREA2_HWY_ROW(8);                                             \
    KREA2_HWY_ROW(9);                                             \
    KREA2_HWY_ROW(10);                                            \
    KREA2_HWY_ROW(11);                                            \
    a += kMR;                                                     \
    b += 2 * nv;                                                  \
  }

#define KREA2_HWY_STORE(i)             \
  hn::StoreU(c##i##a, d, c + i * ldc); \
  hn::StoreU(c##i##b, d, c + i * ldc + nv)

HWY_NOINLINE void kernel(int64_t kc, const float* HWY_RESTRICT a, const float* HWY_RESTRICT b,
                         float* HWY_RESTRICT c, int64_t ldc) {
  const hn::ScalableTag<float> d;
  using V = hn::Vec<decltype(d)>;
  const int64_t nv = int64_t(hn::Lanes(d));
  V c0a = hn::Zero(d), c0b = hn::Zero(d), c1a = hn::Zero(d), c1b = hn::Zero(d), c2a = hn::Zero(d);
  V c2b = hn::Zero(d), c3a = hn::Zero(d), c3b = hn::Zero(d), c4a = hn::Zero(d), c4b = hn::Zero(d);
  V c5a = hn::Zero(d), c5b = hn::Zero(d), c6a = hn::Zero(d), c6b = hn::Zero(d), c7a = hn::Zero(d);
  V c7b = hn::Zero(d), c8a = hn::Zero(d), c8b = hn::Zero(d), c9a = hn::Zero(d), c9b = hn::Zero(d);
  V c10a = hn::Zero(d), c10b = hn::Zero(d), c11a = hn::Zero(d), c11b = hn::Zero(d);
  const int64_t head = kc > kPrefetchCSteps ? kc - kPrefetchCSteps : 0;
  KREA2_HWY_LOOP(head)
  for (int64_t i = 0; i < kMR; ++i) {
    hwy::Prefetch(c + i * ldc);
    hwy::Prefetch(c + i * ldc + nv);
    hwy::Prefetch(c + i * ldc + 2 * nv - 1);
  }
  KREA2_HWY_LOOP(kc - head)
  KREA2_HWY_STORE(0);
  KREA2_HWY_STORE(1);
  KREA2_HWY_STORE(2);
  KREA2_HWY_STORE(3);
  KREA2_HWY_STORE(4);
  KREA2_HWY_STORE(5);
  KREA2_HWY_STORE(6);
  KREA2_HWY_STORE(7);
  KREA2_HWY_STORE(8);
  KREA2_HWY_STORE(9);
  KREA2_HWY_STORE(10);
  KREA2_HWY_STORE(11);
}

#undef KREA2_HWY_STORE
#undef KREA2_HWY_LOOP
#undef KREA2_HWY_ROW

// `calls` runs of the kernel over the same zeroed panels (as gemm_microkernel_repeat); returns the FLOPs of
// one call.
int64_t microkernel_repeat(int64_t calls) {
  const hn::ScalableTag<float> d;
  const int64_t nr = 2 * int64_t(hn::Lanes(d));
  // Sized for the widest target (2 x 16 floats); zero floats keep the sums normal.
  alignas(64) static thread_local float a[kDepth * kMR], b[kDepth * 32 + 64], tile[kMR * 32];
  for (float& v : a) v = 0.0f;
  for (float& v : b) v = 0.0f;
  for (int64_t i = 0; i < calls; ++i) kernel(kDepth, a, b, tile, nr);
  return 2 * kMR * nr * kDepth;
}

const char* target_name() {
  return hwy::TargetName(HWY_TARGET);
}

}  // namespace HWY_NAMESPACE
}  // namespace krea2_hwy
HWY_AFTER_NAMESPACE();

#undef KREA2_ONCE
#define KREA2_ONCE HWY_ONCE
#else
#define KREA2_ONCE 1
#endif  // KREA2_HAVE_HWY

#if KREA2_ONCE
#include <omp.h>
#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "bench/dot_peak.h"
#include "bench/fma_peak.h"
#include "model/weight_encode.h"
#include "ops/gemm.h"

#if defined(KREA2_HAVE_DNNL)
#include <oneapi/dnnl/dnnl.hpp>
#endif

#if defined(KREA2_HAVE_HWY)
namespace krea2_hwy {
HWY_EXPORT(microkernel_repeat);
HWY_EXPORT(target_name);
}  // namespace krea2_hwy
#endif

namespace krea2 {
namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

double now() {
  return omp_get_wtime();
}

// The units the products compute on, and their peaks on the benchmark's thread count (G ops/s), the
// denominators of "% of peak".
enum Unit { kUnitF32 = 0, kUnitBf16 = 1, kUnitInt8 = 2 };

struct Peaks {
  int threads = 1;
  Isa f32_isa = Isa::kAvx2;                  // the FMA peak's instruction set
  DotUnit int8_unit = DotUnit::kInt8Avx512;  // the int8 dot product the CPU has
  double gops[3] = {0.0, 0.0, 0.0};          // by Unit; 0 where the CPU lacks the unit
};

Peaks measure_peaks(int threads) {
  Peaks p;
  p.threads = threads;
  p.f32_isa = isa_supported(Isa::kAvx512) ? Isa::kAvx512 : Isa::kAvx2;
  p.int8_unit = dot_unit_supported(DotUnit::kInt8Avx512) ? DotUnit::kInt8Avx512 : DotUnit::kInt8AvxVnni;
  p.gops[kUnitF32] = measure_fma_peak_gflops(threads, p.f32_isa);
  p.gops[kUnitBf16] = measure_dot_peak_gops(threads, DotUnit::kBf16Avx512);
  p.gops[kUnitInt8] = measure_dot_peak_gops(threads, p.int8_unit);
  const std::string f32_name = std::string("fp32 fma ") + isa_name(p.f32_isa);
  const char* names[3] = {f32_name.c_str(), dot_unit_name(DotUnit::kBf16Avx512), dot_unit_name(p.int8_unit)};
  for (int u = 0; u < 3; ++u)
    std::printf("peak %-36s %8.1f G ops/s%s\n", names[u], p.gops[u],
                p.gops[u] > 0 ? "" : "  (not supported)");
  return p;
}

// G ops/s of a unit's peak loop run for ~`seconds` by the team now: the peak under the conditions of this
// moment, timed between the products (on a shared machine those vary by 2-3x within a minute).
double peak_now(const Peaks& p, int unit, double seconds) {
  if (p.gops[unit] <= 0.0) return 0.0;
  if (unit == kUnitF32) {
    const int64_t per_instr = fma_instruction_flops(p.f32_isa);
    const int64_t fmas = std::max<int64_t>(1, int64_t(seconds * p.gops[unit] * 1e9 / p.threads / per_instr));
    return double(p.threads) * double(fmas) * double(per_instr) /
           fma_chains_seconds(p.threads, fmas, p.f32_isa) * 1e-9;
  }
  const DotUnit u = unit == kUnitBf16 ? DotUnit::kBf16Avx512 : p.int8_unit;
  const int64_t per_instr = dot_instruction_ops(u);
  const int64_t instrs = std::max<int64_t>(1, int64_t(seconds * p.gops[unit] * 1e9 / p.threads / per_instr));
  return double(p.threads) * double(instrs) * double(per_instr) / dot_chains_seconds(p.threads, instrs, u) *
         1e-9;
}

// CPU seconds this process has had (all threads).
double cpu_seconds() {
  rusage u;
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         1e-6 * double(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

// ---------------------------------------------------------------------------------------------------------
// Microkernels on L1-resident panels.

void bench_microkernels(int rounds) {
#if defined(KREA2_HAVE_HWY)
  const int64_t ours_flops = gemm_microkernel_flops(active_isa(), Compute::kF32);
  const int64_t hwy_flops = HWY_DYNAMIC_DISPATCH(krea2_hwy::microkernel_repeat)(1);
  std::printf("\nmicrokernel, panels in L1, depth %lld: ours %s (%lld FLOPs a call) vs Highway %s (%lld)\n",
              (long long)kGemmMicrokernelDepth, gemm_kernel_name(active_isa(), Compute::kF32),
              (long long)ours_flops, HWY_DYNAMIC_DISPATCH(krea2_hwy::target_name)(), (long long)hwy_flops);
  // "% of peak": median over the rounds of the kernel's rate over the FMA loop's in the same round.
  std::printf("%-8s %-10s %10s %10s %11s\n", "threads", "kernel", "median", "best", "% of peak");
  const int max_threads = omp_get_max_threads();
  std::vector<int> teams{1};
  if (max_threads > 1) teams.push_back(max_threads);
  for (int threads : teams) {
    // ~0.05 s per timing at 200 GFLOP/s a thread; Highway and the FMA loop get the same FLOPs.
    const int64_t calls = std::max<int64_t>(1, int64_t(0.05 * 200e9 / double(ours_flops)));
    const int64_t hwy_calls = std::max<int64_t>(1, calls * ours_flops / hwy_flops);
    const Isa isa = active_isa();
    const int64_t fmas = calls * ours_flops / fma_instruction_flops(isa);
    // Per round: each kernel's rate, and its ratio to the FMA loop timed in the same round.
    std::vector<double> ours, hwy, ours_pct, hwy_pct;
    for (int r = 0; r < rounds; ++r) {
      const double flops = double(threads) * double(calls) * double(ours_flops);
      const double peak = flops / fma_chains_seconds(threads, fmas, isa) * 1e-9;
      double t = team_seconds(threads, [&] { gemm_microkernel_repeat(calls, isa, Compute::kF32); });
      ours.push_back(flops / t * 1e-9);
      t = team_seconds(threads, [&] { HWY_DYNAMIC_DISPATCH(krea2_hwy::microkernel_repeat)(hwy_calls); });
      hwy.push_back(double(threads) * double(hwy_calls) * double(hwy_flops) / t * 1e-9);
      ours_pct.push_back(100.0 * ours.back() / peak);
      hwy_pct.push_back(100.0 * hwy.back() / peak);
    }
    std::printf("%-8d %-10s %10.1f %10.1f %9.1f %%\n", threads, "ours", median(ours),
                *std::max_element(ours.begin(), ours.end()), median(ours_pct));
    std::printf("%-8d %-10s %10.1f %10.1f %9.1f %%\n", threads, "highway", median(hwy),
                *std::max_element(hwy.begin(), hwy.end()), median(hwy_pct));
  }
#else
  (void)rounds;
  std::printf("\nmicrokernel: built without Highway (libhwy-dev)\n");
#endif
}

// ---------------------------------------------------------------------------------------------------------
// Whole products y = x W^T.

struct Method {
  std::string name;
  int unit = kUnitF32;  // the Unit it computes on
  std::string detail;   // the implementation oneDNN chose, or our kernel's name
  std::function<void()> run;
  const float* y = nullptr;                         // its output, compared with our float32 product
  std::vector<double> rates, percents, cpu_shares;  // per round
};

double rel_l2(const float* a, const float* ref, size_t n) {
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < n; ++i) {
    const double d = double(a[i]) - double(ref[i]);
    num += d * d;
    den += double(ref[i]) * double(ref[i]);
  }
  return den > 0.0 ? std::sqrt(num / den) : std::sqrt(num);
}

void fill_uniform(std::vector<float>& v, float scale, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-scale, scale);
  for (float& e : v) e = u(rng);
}

void bench_shape(int64_t M, int64_t N, int64_t K, int rounds, const Peaks& peaks) {
  const double ops = 2.0 * double(M) * double(N) * double(K);
  std::printf("\ny = x W^T, M %lld, N %lld, K %lld: %.1f G ops a product\n", (long long)M, (long long)N,
              (long long)K, ops * 1e-9);
  std::vector<float> x(size_t(M * K)), w(size_t(N * K));
  fill_uniform(x, 1.0f, 1);
  fill_uniform(w, 0.02f, 2);
  // The stored weights both sides use: bf16 codes and int8 codes with a scale per row.
  std::vector<std::byte> w_bf16(size_t(N * K * 2)), w_i8(size_t(N * K));
  std::vector<float> w_scales(static_cast<size_t>(N));
  encode_rows(RowEncoding{DType::BF16, 1.0f, 0}, w.data(), N, K, w_bf16.data(), nullptr);
  // int8 rows without rotation: encode_rows stores I8 only with convrot (rotation_group > 0), so the plain
  // symmetric code is made here, s = max |w| / 127 per row, as the GEMM reads it (rotation_group 0).
#pragma omp parallel for
  for (int64_t n = 0; n < N; ++n) {
    const float* row = w.data() + n * K;
    float max_abs = 0.0f;
    for (int64_t k = 0; k < K; ++k) max_abs = std::max(max_abs, std::fabs(row[k]));
    const float scale = max_abs > 0.0f ? max_abs / 127.0f : 1.0f;
    w_scales[size_t(n)] = scale;
    auto* q = reinterpret_cast<int8_t*>(w_i8.data()) + n * K;
    for (int64_t k = 0; k < K; ++k) q[k] = int8_t(std::clamp(std::lrint(row[k] / scale), -127L, 127L));
  }

  std::vector<Method> methods;
  std::vector<std::vector<float>> outputs;
  outputs.reserve(8);  // stable addresses for Method::y
  auto output = [&] { return outputs.emplace_back(size_t(M * N), 0.0f).data(); };
  auto add_method = [&](std::string name, int unit, std::string detail, const float* y,
                        std::function<void()> run) {
    Method& m = methods.emplace_back();
    m.name = std::move(name);
    m.unit = unit;
    m.detail = std::move(detail);
    m.run = std::move(run);
    m.y = y;
  };

  // Ours.
  struct Ours {
    const char* name;
    Compute compute;
    WeightMatrix w;
    int unit;
  };
  const Ours ours[] = {
      {"ours f32", Compute::kF32, WeightMatrix{DType::F32, N, K, w.data(), 1.0f, nullptr, 0}, kUnitF32},
      {"ours bf16", Compute::kBf16, WeightMatrix{DType::BF16, N, K, w_bf16.data(), 1.0f, nullptr, 0},
       kUnitBf16},
      {"ours int8", Compute::kInt8, WeightMatrix{DType::I8, N, K, w_i8.data(), 1.0f, w_scales.data(), 0},
       kUnitInt8},
  };
  for (const Ours& o : ours) {
    float* y = output();
    add_method(o.name, o.unit, gemm_kernel_name(active_isa(), o.compute), y, [&x, M, K, N, y, o] {
      GemmComputeScope scope(o.compute);
      gemm_xwt(x.data(), M, K, o.w, y, N, false);
    });
  }

#if defined(KREA2_HAVE_DNNL)
  using dt = dnnl::memory::data_type;
  using tag = dnnl::memory::format_tag;
  dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  const dnnl::memory::dims src_dims{M, K}, w_dims{K, N}, dst_dims{M, N};
  // x as oneDNN's inputs: bf16 (rounded to nearest even), and u8 with one scale and zero point 128 for the
  // whole tensor, as PyTorch's dynamic quantization of activations.
  std::vector<uint16_t> x_bf16(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    uint32_t bits;
    std::memcpy(&bits, &x[i], 4);
    x_bf16[i] = uint16_t((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
  }
  float x_max = 0.0f;
  for (float v : x) x_max = std::max(x_max, std::fabs(v));
  const float x_scale = x_max > 0.0f ? x_max / 127.0f : 1.0f;
  std::vector<uint8_t> x_u8(x.size());
  for (size_t i = 0; i < x.size(); ++i)
    x_u8[i] = uint8_t(std::clamp(std::lround(x[i] / x_scale) + 128, 0L, 255L));
  std::vector<float> out_scales(static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n) out_scales[size_t(n)] = x_scale * w_scales[size_t(n)];

  // Kept alive for the timing: the primitives, their reordered weights and the memory objects.
  struct Dnnl {
    dnnl::matmul prim;
    dnnl::memory src, wei, dst;
  };
  std::vector<Dnnl> dnnls;
  dnnls.reserve(3);
  auto add_dnnl = [&](const char* name, dt src_t, dt wei_t, void* src_data, void* user_w, int unit,
                      const dnnl::primitive_attr& attr) {
    const dnnl::memory::desc src_md(src_dims, src_t, tag::ab), dst_md(dst_dims, dt::f32, tag::ab);
    const dnnl::memory::desc any_w(w_dims, wei_t, tag::any);
    const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src_md, any_w, dst_md), attr, engine);
    // W is N x K row-major, i.e. W^T (K x N) stored column-major: tag ba.
    dnnl::memory user(dnnl::memory::desc(w_dims, wei_t, tag::ba), engine, user_w);
    dnnl::memory wei(pd.weights_desc(), engine);
    dnnl::reorder(user, wei).execute(stream, user, wei);
    stream.wait();
    float* y = output();
    Dnnl& d = dnnls.emplace_back(
        Dnnl{dnnl::matmul(pd), dnnl::memory(src_md, engine, src_data), wei, dnnl::memory(dst_md, engine, y)});
    add_method(name, unit, pd.impl_info_str(), y, [&d, &stream] {
      d.prim.execute(stream, {{DNNL_ARG_SRC, d.src}, {DNNL_ARG_WEIGHTS, d.wei}, {DNNL_ARG_DST, d.dst}});
      stream.wait();
    });
  };
  add_dnnl("onednn f32", dt::f32, dt::f32, x.data(), w.data(), kUnitF32, dnnl::primitive_attr());
  add_dnnl("onednn bf16", dt::bf16, dt::bf16, x_bf16.data(), w_bf16.data(), kUnitBf16,
           dnnl::primitive_attr());
  dnnl::primitive_attr int8_attr;
  int8_attr.set_output_scales(1 << 1, out_scales);  // one per column n of y
  int8_attr.set_zero_points(DNNL_ARG_SRC, 0, {128});
  add_dnnl("onednn u8s8", dt::u8, dt::s8, x_u8.data(), w_i8.data(), kUnitInt8, int8_attr);
#endif

  // One untimed run each (oneDNN JIT, our buffers, first touch of the outputs), then the rounds. Each round
  // also times the units' peak loops (~0.05 s each), so "% of peak" compares a product with its unit under
  // the same conditions: the median over the rounds of rate / that round's peak. "cpu" is the share of the
  // team's cores the process got while the product ran (under 100 %: something else ran on them).
  for (Method& m : methods) m.run();
  const int threads = omp_get_max_threads();
  for (int r = 0; r < rounds; ++r) {
    double peak[3];
    for (int u = 0; u < 3; ++u) peak[u] = peak_now(peaks, u, 0.05);
    for (Method& m : methods) {
      const double t0 = now(), c0 = cpu_seconds();
      m.run();
      const double t = now() - t0;
      m.rates.push_back(ops / t * 1e-9);
      m.percents.push_back(peak[m.unit] > 0.0 ? 100.0 * m.rates.back() / peak[m.unit] : 0.0);
      m.cpu_shares.push_back(100.0 * (cpu_seconds() - c0) / (t * threads));
    }
  }
  std::printf("%-12s %10s %10s %11s %7s %14s  %s\n", "method", "median", "best", "% of peak", "cpu",
              "rel err vs f32", "implementation");
  const float* ref = methods[0].y;
  for (const Method& m : methods) {
    std::printf("%-12s %10.1f %10.1f %9.1f %% %5.0f %% %14.2e  %s\n", m.name.c_str(), median(m.rates),
                *std::max_element(m.rates.begin(), m.rates.end()), median(m.percents), median(m.cpu_shares),
                rel_l2(m.y, ref, size_t(M * N)), m.detail.c_str());
  }
  for (const Method& m : methods)
    if (m.detail.find("amx") != std::string::npos) {
      // AMX tiles are a unit of their own, beyond the vector dot products whose peak is quoted.
      std::printf(
          "(amx: oneDNN multiplies on AMX tiles; DNNL_MAX_CPU_ISA=AVX512_CORE_BF16 keeps it on the vector "
          "units)\n");
      break;
    }
}

}  // namespace
}  // namespace krea2

int main(int argc, char** argv) {
  int rounds = 5;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--rounds" && i + 1 < argc) {
      rounds = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--only" && i + 1 < argc) {
      only = argv[++i];
    } else {
      std::fprintf(stderr, "usage: %s [--rounds N] [--only gemm|micro]\n", argv[0]);
      return 2;
    }
  }
  const int threads = omp_get_max_threads();
  std::printf("%d threads (OMP_NUM_THREADS), %d rounds, medians; rates in G ops/s (2 per multiply-add)\n",
              threads, rounds);
  const krea2::Peaks peaks = krea2::measure_peaks(threads);
  if (only.empty() || only == "micro") krea2::bench_microkernels(rounds);
  if (only.empty() || only == "gemm") {
    // The Krea 2 forward's products: 1088 rows of activations (the 1024 image + 64 text tokens of the
    // bench), attention projections (6144 x 6144), the MLP's up (16384 x 6144) and down (6144 x 16384).
    const int64_t shapes[][2] = {{6144, 6144}, {16384, 6144}, {6144, 16384}};
    for (const auto& s : shapes) krea2::bench_shape(1088, s[0], s[1], rounds, peaks);
  }
  return 0;
}
#endif  // KREA2_ONCE
