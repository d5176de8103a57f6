#include "bench/dot_peak.h"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <string>

#include "bench/dot_peak_chains.h"
#include "bench/fma_peak.h"

namespace krea2 {

namespace {

// The operands of the timed loops. bf16: (1, 1) . (2^-10, -2^-10) adds +2^-10 then -2^-10 to accumulators
// that start at 1 + small integers, both exact, so they stay where they start (never denormal, never
// infinite, however long it runs). int8: u8 (1, 1, 1, 1) . s8 (1, -1, 1, -1) = 0. Read through volatile so
// no caller can treat them as known (the loops sit behind a function pointer in other translation units
// anyway).
volatile uint32_t g_bf16_a = 0x3F803F80u, g_bf16_b = 0xBA803A80u;
volatile uint32_t g_int8_a = 0x01010101u, g_int8_b = 0xFF01FF01u;

// Accumulator words of the widest chains (16 zmm chains of 16 lanes).
constexpr size_t kMaxAccWords = 16 * 16;

// Seconds for every thread of the team to run `iters` rounds of the unit's chains, each on its own
// accumulators.
double timed_run(DotUnit unit, int threads, int64_t iters) {
  const DotChains& chains = dot_chains(unit);
  assert(size_t(chains.chains) * size_t(chains.lanes) <= kMaxAccWords);
  const bool bf16 = unit == DotUnit::kBf16Avx512;
  const uint32_t a = bf16 ? g_bf16_a : g_int8_a, b = bf16 ? g_bf16_b : g_int8_b;
  const size_t words = size_t(chains.chains) * size_t(chains.lanes);
  return team_seconds(threads, [&chains, iters, a, b, bf16, words] {
    // On the stack: nothing is allocated inside the timed region.
    alignas(64) uint32_t acc[kMaxAccWords];
    for (size_t i = 0; i < words; ++i) {
      const float start = 1.0f + float(i % 64);
      acc[i] = bf16 ? std::bit_cast<uint32_t>(start) : uint32_t(i);
    }
    chains.run(iters, a, b, acc);
  });
}

}  // namespace

const char* dot_unit_name(DotUnit unit) {
  switch (unit) {
    case DotUnit::kBf16Avx512:
      return "bf16 dot (vdpbf16ps zmm)";
    case DotUnit::kInt8Avx512:
      return "int8 dot (vpdpbusd zmm)";
    case DotUnit::kInt8AvxVnni:
      return "int8 dot (vpdpbusd ymm, avx-vnni)";
  }
  return "?";
}

std::string dot_unit_missing(DotUnit unit, const CpuFeatures& f) {
  std::string missing;
  auto need = [&](bool has, const char* name) {
    if (!has) missing += (missing.empty() ? "" : ", ") + std::string(name);
  };
  // Every translation unit is compiled for the AVX2 floor too, so the compiler may use it anywhere.
  need(f.avx2, "avx2");
  need(f.fma, "fma");
  need(f.f16c, "f16c");
  if (unit == DotUnit::kInt8AvxVnni) {
    need(f.avx_vnni, "avx_vnni");
  } else {
    // The *_avx512bf16 / *_avx512vnni files are compiled with AVX-512 F/BW/VL/DQ as well.
    need(f.avx512f, "avx512f");
    need(f.avx512bw, "avx512bw");
    need(f.avx512vl, "avx512vl");
    need(f.avx512dq, "avx512dq");
    if (unit == DotUnit::kBf16Avx512)
      need(f.avx512_bf16, "avx512_bf16");
    else
      need(f.avx512_vnni, "avx512_vnni");
  }
  return missing.empty() ? "" : "the CPU lacks " + missing;
}

std::string dot_unit_missing(DotUnit unit) {
  // cpu_features() leaves out what the OS does not save; isa_missing tells that apart from a CPU without it.
  if (unit != DotUnit::kInt8AvxVnni) {
    std::string isa = isa_missing(Isa::kAvx512);
    if (!isa.empty()) return isa;
  }
  return dot_unit_missing(unit, cpu_features());
}

bool dot_unit_supported(DotUnit unit) {
  return dot_unit_missing(unit, cpu_features()).empty();
}

const DotChains& dot_chains(DotUnit unit) {
  switch (unit) {
    case DotUnit::kInt8Avx512:
      return kDotChainsInt8Avx512;
    case DotUnit::kInt8AvxVnni:
      return kDotChainsInt8AvxVnni;
    case DotUnit::kBf16Avx512:
      break;
  }
  return kDotChainsBf16Avx512;
}

int64_t dot_instruction_ops(DotUnit unit) {
  return dot_chains(unit).ops;
}

double dot_chains_seconds(int threads, int64_t instructions, DotUnit unit) {
  const DotChains& chains = dot_chains(unit);
  return timed_run(unit, std::max(threads, 1), std::max<int64_t>(1, instructions / chains.chains));
}

double measure_dot_peak_gops(int threads, DotUnit unit) {
  if (!dot_unit_supported(unit)) return 0.0;
  const DotChains& chains = dot_chains(unit);
  return measure_team_peak(threads, double(chains.chains) * double(chains.ops),
                           [unit](int team, int64_t iters) { return timed_run(unit, team, iters); });
}

double measure_team_peak(int threads, double ops_per_iteration,
                         const std::function<double(int team, int64_t iters)>& seconds) {
  threads = std::max(threads, 1);
  // Calibrate to ~0.1 s per run (also wakes the threads and lets the clock ramp up).
  int64_t iters = 1 << 20;
  double t = seconds(threads, iters);
  while (t < 0.02) {
    iters *= 4;
    t = seconds(threads, iters);
  }
  iters = std::max<int64_t>(1, int64_t(double(iters) * 0.1 / t));
  // Many short runs, best kept: a run that another process interrupts only loses itself, and the slowest
  // thread of a run sets its time.
  auto best_of = [&](int team, int runs) {
    double best = 0.0;
    for (int run = 0; run < runs; ++run)
      best = std::max(best, double(team) * double(iters) * ops_per_iteration / seconds(team, iters) * 1e-9);
    return best;
  };
  double best = best_of(threads, 10);
  if (threads == 1) return best;
  // Two of the team kept on one core for a while read as a team of one: compare and measure again.
  const double single = best_of(1, 3);
  for (int retry = 0; retry < 5 && best < 0.8 * threads * single; ++retry)
    best = std::max(best, best_of(threads, 10));
  return best;
}

}  // namespace krea2
