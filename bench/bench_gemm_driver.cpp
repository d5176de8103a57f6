// krea2_bench_gemm_driver: where the float32 GEMM loses against the FMA peak, layer by layer, at the block's
// widest product (1088 x 6144 x 6144, F32 weight), with the active ISA's kernel table:
//   microkernel   the kernel on one A and one B panel in L1, again and again;
//   inner loops   the driver's inner pattern on one depth block (12-row A panels streaming from a 144-row
//                 block in L2, 32-column B panels of a 512-column chunk, C tiles strided as in y), no
//                 packing;
//   whole chunks  every depth block of a 512-column chunk over all 1088 rows (C and the packed x from L3), no
//                 packing;
//   gemm_xwt      the real product (packing x and the weight included).
// Each thread runs the first three on its own data; the last is one call with the team. Rounds interleave the
// stages with the peak's FMA loop; medians printed.
//   OMP_NUM_THREADS=2 build/bench/krea2_bench_gemm_driver [rounds]
#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench/fma_peak.h"
#include "cpu/cpu_features.h"
#include "ops/gemm.h"
#include "ops/gemm_kernels.h"

namespace {

using namespace krea2;

constexpr int64_t kM = 1088, kN = 6144, kK = 6144, kNc = 512, kMc = 144;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

float* zeroed(size_t floats) {
  auto* p = static_cast<float*>(std::aligned_alloc(64, (floats + 16) / 16 * 64));
  std::memset(p, 0, floats * sizeof(float));
  return p;
}

// GFLOP/s of `calls` kernel runs per thread, each thread on its own panels, for the three patterns.
double team_rate(const GemmKernels& k, int stage) {
  const int64_t kc = k.blocking.kc, mr = k.mr, nr = k.nr;
  const int64_t a_words = gemm_a_panel_words(k, kc), b_words = gemm_b_panel_words(k, kc);
  const int64_t m_panels = (kM + mr - 1) / mr, n_panels = kNc / nr, blocks = kK / kc;
  int64_t calls = 0;
  double seconds = 0;  // the slowest thread's compute time (allocation and zeroing excluded)
#pragma omp parallel reduction(+ : calls) reduction(max : seconds)
  {
    const int64_t a_blocks = stage == 2 ? blocks : 1;
    float* a = zeroed(size_t(a_blocks * m_panels * a_words + kGemmPackSlack));
    float* b = zeroed(size_t(n_panels * b_words));
    float* c = zeroed(size_t(kM * kN));
    const int64_t col0 = omp_get_thread_num() * kNc % kN;
#pragma omp barrier
    const double t0 = omp_get_wtime();
    if (stage == 0) {
      for (int64_t i = 0; i < 20000; ++i, ++calls) k.kernel(kc, a, b, c, kN, true);
    } else {
      const int64_t rows = stage == 1 ? kMc : kM, depth_blocks = stage == 1 ? 24 : blocks;
      for (int64_t pc = 0; pc < depth_blocks; ++pc) {
        const float* ab = a + (stage == 2 ? pc * m_panels * a_words : 0);
        for (int64_t ic = 0; ic + mr <= rows; ic += kMc)
          for (int64_t jr = 0; jr < n_panels; ++jr)
            for (int64_t ir = ic; ir < std::min(ic + kMc, rows - rows % mr); ir += mr, ++calls)
              k.kernel(kc, ab + ir / mr * a_words, b + jr * b_words, c + ir * kN + col0 + jr * nr, kN,
                       pc > 0);
      }
    }
    seconds = omp_get_wtime() - t0;
    std::free(a);
    std::free(b);
    std::free(c);
  }
  return 2.0 * double(k.mr * k.nr) * double(kc) * double(calls) / seconds * 1e-9;
}

double gemm_rate(const std::vector<float>& x, const WeightMatrix& w, std::vector<float>& y) {
  const double t0 = omp_get_wtime();
  gemm_xwt(x.data(), kM, kK, w, y.data(), kN, false);
  return 2.0 * kM * kN * kK / (omp_get_wtime() - t0) * 1e-9;
}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::max(1, std::atoi(argv[1])) : 3;
  const Isa isa = active_isa();
  const GemmKernels& k = gemm_kernels(isa, Compute::kF32);
  const int threads = omp_get_max_threads();
  std::vector<float> x(size_t(kM * kK), 0.01f), wv(size_t(kN * kK), 0.02f), y(size_t(kM * kN));
  const WeightMatrix w{DType::F32, kN, kK, wv.data()};
  gemm_rate(x, w, y);  // warm-up: packing buffers, thread team
  const char* names[] = {"microkernel (L1)", "inner loops, no packing", "whole chunks, no packing",
                         "gemm_xwt"};
  std::vector<double> rate[4], peak;
  for (int r = 0; r < rounds; ++r) {
    peak.push_back(measure_fma_peak_gflops(threads, isa));
    for (int s = 0; s < 3; ++s) rate[s].push_back(team_rate(k, s));
    rate[3].push_back(gemm_rate(x, w, y));
  }
  const double p = median(peak);
  std::printf("%s, %d threads, %lld x %lld x %lld F32, %d rounds (medians); fp32 FMA peak %.1f GFLOP/s\n",
              k.name, threads, (long long)kM, (long long)kN, (long long)kK, rounds, p);
  for (int s = 0; s < 4; ++s)
    std::printf("  %-26s %7.1f GFLOP/s  %5.1f %% of the peak\n", names[s], median(rate[s]),
                100 * median(rate[s]) / p);
  return 0;
}
