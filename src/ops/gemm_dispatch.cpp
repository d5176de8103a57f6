// The one place that maps an instruction set level and a compute mode to a GEMM variant
// (ops/gemm_kernels.h).
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "ops/gemm_kernels.h"

namespace krea2 {
namespace {

// Seconds per microkernel call of `k` over zeroed L1-resident panels (best of 5 runs of 200 calls).
double microkernel_seconds(const GemmKernels& k) {
  constexpr int64_t kc = kGemmMicrokernelDepth;
  alignas(64) static float a[kc * 16 + 64], b[kc * 64 + 128], tile[kGemmMaxTile];
  std::memset(a, 0, sizeof a);
  std::memset(b, 0, sizeof b);
  double best = 1e30;
  for (int run = 0; run < 5; ++run) {
    const double t0 = omp_get_wtime();
    for (int i = 0; i < 200; ++i) k.kernel(kc, a, b, tile, k.nr, false);
    best = std::min(best, omp_get_wtime() - t0);
  }
  return best / 200.0;
}

// bf16 at the AVX-512 level on a CPU with AVX512_BF16: vdpbf16ps is not always the faster unit. On Zen 4/5 it
// issues twice per cycle (~1.8x the fp32 FMA rate), on the Sapphire Rapids VMs measured here once every 2
// cycles (~0.5x), where the float32 kernel on operands rounded to bf16 is ~2x faster. So the two microkernels
// are timed once, at first use (~2 ms), and the faster kept (native unless the emulated one wins by 10 %).
// KREA2_BF16_KERNEL=native|emulated fixes the choice.
std::atomic<int> g_bf16_choice{int(Bf16Choice::kMeasured)};

// -1 until first read: then KREA2_AMX decides. Opt-in (KREA2_AMX=1 or on) for now: the AMX kernels pass
// their tests only where a CPU with AMX ran them, and none of the machines this project was built on so far
// exposed AMX to its VMs, so they stay off by default until one has.
std::atomic<int> g_amx_allowed{-1};

const GemmKernels& bf16_avx512_kernels() {
  const auto forced = Bf16Choice(g_bf16_choice.load(std::memory_order_relaxed));
  if (forced == Bf16Choice::kNative) return kGemmKernelsBf16Avx512Bf16;
  if (forced == Bf16Choice::kEmulated) return kGemmKernelsBf16Avx512;
  // AMX's tiles run ~8x the vdpbf16ps rate per cycle: no measurement needed to prefer them.
  if (cpu_features().amx_bf16 && amx_allowed()) return kGemmKernelsBf16Amx;
  static const GemmKernels& chosen = [&]() -> const GemmKernels& {
    const char* env = std::getenv("KREA2_BF16_KERNEL");
    if (env != nullptr && std::strcmp(env, "native") == 0) return kGemmKernelsBf16Avx512Bf16;
    if (env != nullptr && std::strcmp(env, "emulated") == 0) return kGemmKernelsBf16Avx512;
    if (env != nullptr && *env != '\0')
      std::fprintf(stderr, "krea2: warning: ignoring KREA2_BF16_KERNEL=%s (expected native or emulated)\n",
                   env);
    // Per FLOP: both kernels are 12x32, timed at the same depth.
    const double native = microkernel_seconds(kGemmKernelsBf16Avx512Bf16);
    const double emulated = microkernel_seconds(kGemmKernelsBf16Avx512);
    return emulated * 1.1 < native ? kGemmKernelsBf16Avx512 : kGemmKernelsBf16Avx512Bf16;
  }();
  return chosen;
}

}  // namespace

bool amx_requested_by_environment() {
  const char* env = std::getenv("KREA2_AMX");
  return env != nullptr && (std::strcmp(env, "1") == 0 || std::strcmp(env, "on") == 0);
}

bool amx_allowed() {
  int v = g_amx_allowed.load(std::memory_order_relaxed);
  if (v < 0) {
    int expected = -1;
    g_amx_allowed.compare_exchange_strong(expected, amx_requested_by_environment() ? 1 : 0);
    v = g_amx_allowed.load(std::memory_order_relaxed);
  }
  return v == 1;
}

void set_amx_allowed(bool allowed) {
  g_amx_allowed.store(allowed ? 1 : 0, std::memory_order_relaxed);
}

void set_bf16_avx512_choice(Bf16Choice choice) {
  g_bf16_choice.store(int(choice), std::memory_order_relaxed);
}

const GemmKernels& gemm_kernels(Isa isa, Compute compute) {
  const bool avx512 = isa == Isa::kAvx512;
  switch (compute) {
    case Compute::kBf16:
      if (avx512 && cpu_features().avx512_bf16) return bf16_avx512_kernels();
      return avx512 ? kGemmKernelsBf16Avx512 : kGemmKernelsBf16Avx2;
    case Compute::kInt8:
      if (avx512 && cpu_features().amx_int8 && amx_allowed()) return kGemmKernelsInt8Amx;
      if (avx512 && cpu_features().avx512_vnni) return kGemmKernelsInt8Avx512Vnni;
      // AVX-VNNI (vpdpbusd on ymm) runs ~3x the plain AVX2 int8 kernel (411 vs 131 GOP/s on L1 panels, one
      // Sapphire Rapids core).
      if (!avx512 && cpu_features().avx_vnni) return kGemmKernelsInt8AvxVnni;
      return kGemmKernelsInt8Avx2;
    case Compute::kF32:
      break;
  }
  return avx512 ? kGemmKernelsAvx512 : kGemmKernelsAvx2;
}

}  // namespace krea2
