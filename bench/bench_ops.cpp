// krea2_bench_ops: the hot ops of a Krea 2 block at the real shapes (hidden 6144 = 48 heads x 128, 12 KV
// heads, FFN 16384; 1088 rows = 64 text + 1024 image tokens, 4608 = 512 + 4096).
//
//   krea2_bench_ops                                   everything (a few minutes on 2 cores)
//   krea2_bench_ops --benchmark_filter='Linear/BF16'  one weight dtype (packed GEMM and OpenBLAS)
//   krea2_bench_ops --benchmark_filter='Attention'    attention only
//   krea2_bench_ops --benchmark_filter='Microkernel'  the GEMM microkernel on L1 operands (one core's
//   ceiling)
//
// Times are wall clock (UseRealTime: the ops are multithreaded). FLOPS counters count 2 per multiply-add
// (linear: 2 M out in; attention: 4 S^2 head_dim heads); element-wise ops report bytes/s read + written.
// Each case runs for --benchmark_min_time (default 0.5 s, at least one iteration): the big linears take
// seconds, so they get one iteration; on a busy machine add --benchmark_min_time=3 or
// --benchmark_repetitions=3.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "krea2/tensor.h"
#include "ops/activations.h"
#include "ops/attention.h"
#include "ops/gemm.h"
#include "ops/linear.h"
#include "ops/norm.h"
#include "ops/rope.h"
#include "tensor/convert.h"
#include "tensor/random.h"

namespace krea2 {
namespace {

constexpr int64_t kHidden = 6144, kKvHidden = 1536, kFfn = 16384, kHeads = 48, kKvHeads = 12, kHeadDim = 128;

// Uniform [-1, 1] (splitmix64 of the index), filled in parallel: the weights are up to 400 MB.
std::vector<float> random_floats(int64_t n, uint64_t seed, float scale = 1.0f) {
  std::vector<float> v(static_cast<size_t>(n));
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    v[size_t(i)] = counter_uniform(counter_key(seed), uint64_t(i)) * scale;
  }
  return v;
}

// The weight of the current linear case. One at a time (the benchmarks are registered grouped by weight), so
// at most one 16384 x 6144 matrix is alive besides the activations.
class WeightCache {
 public:
  const WeightMatrix& get(int64_t out, int64_t in, DType dtype) {
    if (w_.rows != out || w_.cols != in || w_.dtype != dtype || w_.empty()) {
      bytes_.clear();
      bytes_.shrink_to_fit();
      const std::vector<float> f = random_floats(out * in, uint64_t(out * 31 + in), 1.0f / 64);
      bytes_.resize(size_t(out * in) * dtype_size(dtype));
      if (dtype == DType::F32) {
        std::memcpy(bytes_.data(), f.data(), bytes_.size());
      } else {
        auto* p = reinterpret_cast<uint16_t*>(bytes_.data());
        const bool bf16 = dtype == DType::BF16;
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < out * in; ++i)
          p[i] = bf16 ? f32_to_bf16(f[size_t(i)]) : f32_to_f16(f[size_t(i)]);
      }
      w_ = WeightMatrix{dtype, out, in, bytes_.data()};
    }
    return w_;
  }

 private:
  std::vector<unsigned char> bytes_;
  WeightMatrix w_;
};

WeightCache& weights() {
  static WeightCache cache;
  return cache;
}

void set_flops(benchmark::State& state, double flops_per_iteration) {
  state.counters["FLOPS"] =
      benchmark::Counter(flops_per_iteration * double(state.iterations()), benchmark::Counter::kIsRate);
}

void BM_Linear(benchmark::State& state, int64_t m, int64_t out, int64_t in, DType dtype,
               LinearBackend backend) {
  set_linear_backend(backend);
  const WeightMatrix& w = weights().get(out, in, dtype);
  const std::vector<float> x = random_floats(m * in, 7);
  std::vector<float> y(size_t(m * out));
  LinearScratch scratch;
  // A few rows first: sizes the scratch panel and faults the weight in, without a full-size extra iteration.
  linear(x.data(), std::min<int64_t>(m, 16), in, w, nullptr, y.data(), out, scratch);
  for (auto _ : state) {
    linear(x.data(), m, in, w, nullptr, y.data(), out, scratch);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  set_flops(state, 2.0 * double(m) * double(out) * double(in));
  set_linear_backend(LinearBackend::kPackedGemm);
}

void BM_Attention(benchmark::State& state) {
  const int64_t s = state.range(0);
  const std::vector<float> q = random_floats(s * kHidden, 1), k = random_floats(s * kKvHidden, 2),
                           v = random_floats(s * kKvHidden, 3);
  std::vector<float> o(size_t(s * kHidden));
  const AttentionShape shape{int(kHeads), int(kKvHeads), int(kHeadDim)};
  const std::vector<Segment> segments = {Segment{0, s}};
  for (auto _ : state) {
    attention(q.data(), kHidden, k.data(), kKvHidden, v.data(), kKvHidden, o.data(), kHidden, shape,
              segments);
    benchmark::DoNotOptimize(o.data());
    benchmark::ClobberMemory();
  }
  set_flops(state, 4.0 * double(s) * double(s) * double(kHeadDim) * double(kHeads));
}

void BM_RmsNormModulated(benchmark::State& state) {
  const int64_t rows = state.range(0);
  const std::vector<float> x = random_floats(rows * kHidden, 1), weight = random_floats(kHidden, 2, 0.1f),
                           scale = random_floats(kHidden, 3, 0.1f), shift = random_floats(kHidden, 4, 0.1f);
  std::vector<float> out(size_t(rows * kHidden));
  for (auto _ : state) {
    rms_norm(x.data(), rows, kHidden, kHidden, weight.data(), 1e-5f, out.data(), kHidden, scale.data(),
             shift.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * 2 * rows * kHidden * int64_t(sizeof(float)));
}

void BM_HeadNormRope(benchmark::State& state) {
  const int64_t rows = state.range(0);
  std::vector<float> positions(size_t(rows * 3));
  for (int64_t r = 0; r < rows; ++r) {  // image-like ids on a 64-wide grid
    positions[size_t(3 * r + 1)] = float(r / 64);
    positions[size_t(3 * r + 2)] = float(r % 64);
  }
  const RopeTable table = make_rope_table(positions.data(), rows, {32, 48, 48}, 1000.0);
  const std::vector<float> weight = random_floats(kHeadDim, 2, 0.1f), q0 = random_floats(rows * kHidden, 1);
  std::vector<float> q = q0;
  for (auto _ : state) {
    // Restoring q keeps the input the same each iteration (repeated norms would converge anyway, but a copy
    // costs as much as the op's own traffic, so it is not timed).
    state.PauseTiming();
    q = q0;
    state.ResumeTiming();
    head_norm_rope(q.data(), rows, kHidden, kHeads, kHeadDim, weight.data(), 1e-5f, &table);
    benchmark::DoNotOptimize(q.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * 2 * rows * kHidden * int64_t(sizeof(float)));
}

void BM_SwigluInplace(benchmark::State& state) {
  const int64_t rows = state.range(0);
  const std::vector<float> a0 = random_floats(rows * kFfn, 1), b = random_floats(rows * kFfn, 2);
  std::vector<float> a = a0;
  for (auto _ : state) {
    state.PauseTiming();
    a = a0;  // silu(a) * b repeated would drift towards 0; start from the same input
    state.ResumeTiming();
    swiglu_inplace(a.data(), kFfn, b.data(), kFfn, rows, kFfn);
    benchmark::DoNotOptimize(a.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * 3 * rows * kFfn * int64_t(sizeof(float)));
}

// The GEMM microkernel alone on one thread, operands in L1: the per-core ceiling of the Linear cases.
void BM_GemmMicrokernel(benchmark::State& state) {
  constexpr int64_t kCalls = 1000;
  for (auto _ : state) gemm_microkernel_repeat(kCalls);
  set_flops(state, double(kCalls) * double(gemm_microkernel_flops()));
}

void register_all() {
  // Grouped by weight (dtype, shape) so the WeightCache regenerates each matrix once.
  for (DType dtype : {DType::F32, DType::BF16, DType::F16}) {
    for (auto [out, in] : {std::pair<int64_t, int64_t>{kHidden, kHidden}, {kFfn, kHidden}, {kHidden, kFfn}}) {
      for (int64_t m : {256, 1088, 4096}) {
        // packed: our GEMM (the default); openblas: sgemm (bf16/f16 widened a panel at a time first).
        for (auto [backend, tag] : {std::pair{LinearBackend::kPackedGemm, "packed"},
                                    std::pair{LinearBackend::kOpenBlas, "openblas"}}) {
          const std::string name = "Linear/" + std::string(dtype_name(dtype)) + "/" + tag + "/" +
                                   std::to_string(out) + "x" + std::to_string(in) + "/M:" + std::to_string(m);
          benchmark::RegisterBenchmark(name.c_str(), BM_Linear, m, out, in, dtype, backend)
              ->UseRealTime()
              ->Unit(benchmark::kMillisecond);
        }
      }
    }
  }
  benchmark::RegisterBenchmark("GemmMicrokernel/L1/1thread", BM_GemmMicrokernel);
  benchmark::RegisterBenchmark("Attention/48x128_kv12", BM_Attention)
      ->ArgName("S")
      ->Arg(1088)
      ->Arg(4608)
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
  struct Elementwise {
    const char* name;
    void (*fn)(benchmark::State&);
  };
  for (const Elementwise& e : {Elementwise{"RmsNormModulated/6144", BM_RmsNormModulated},
                               Elementwise{"HeadNormRope/48x128", BM_HeadNormRope},
                               Elementwise{"SwigluInplace/16384", BM_SwigluInplace}})
    benchmark::RegisterBenchmark(e.name, e.fn)
        ->ArgName("rows")
        ->Arg(1088)
        ->Arg(4608)
        ->UseRealTime()
        ->Unit(benchmark::kMicrosecond);
}

}  // namespace
}  // namespace krea2

int main(int argc, char** argv) {
  krea2::register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
