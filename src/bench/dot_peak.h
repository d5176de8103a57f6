// The machine's measured peaks of the dot-product units behind the bf16 and int8 compute modes (vdpbf16ps,
// vpdpbusd), the counterpart of the float32 FMA peak (bench/fma_peak.h) for those modes' "% of peak".
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "cpu/cpu_features.h"

namespace krea2 {

enum class DotUnit : int {
  kBf16Avx512 = 0,   // vdpbf16ps zmm (AVX512_BF16): 16 lanes x 2 bf16 products = 32 multiply-adds
  kInt8Avx512 = 1,   // vpdpbusd zmm (AVX512_VNNI): 16 lanes x 4 u8 x s8 products = 64 multiply-adds
  kInt8AvxVnni = 2,  // vpdpbusd ymm, VEX-encoded (AVX-VNNI): 8 lanes x 4 = 32 multiply-adds
};
inline constexpr DotUnit kDotUnits[] = {DotUnit::kBf16Avx512, DotUnit::kInt8Avx512, DotUnit::kInt8AvxVnni};

// "bf16 dot (vdpbf16ps zmm)", "int8 dot (vpdpbusd zmm)", "int8 dot (vpdpbusd ymm, avx-vnni)".
const char* dot_unit_name(DotUnit unit);

// Whether this CPU and OS can run the unit's loop (the AVX-512 units need AVX-512 F/BW/VL/DQ with the zmm
// state enabled, as Isa::kAvx512, plus their feature). Independent of the ISA cap: like the FMA peak of an
// ISA, a peak describes the machine, not what the kernels were told to use.
bool dot_unit_supported(DotUnit unit);
// Why not (e.g. "the CPU lacks avx512_bf16"); "" when supported. The overload judges given features.
std::string dot_unit_missing(DotUnit unit);
std::string dot_unit_missing(DotUnit unit, const CpuFeatures& features);

// Operations of one instruction of the unit, 2 per multiply-add as for FLOPs: 64, 128, 64.
int64_t dot_instruction_ops(DotUnit unit);

// GOP/s (GFLOP/s for bf16) of `threads` OpenMP threads each issuing the unit's instruction on independent
// accumulator chains, measured as measure_fma_peak_gflops does (calibrated runs of ~0.1 s, best of 10, the
// team measured again while it reads under 80 % of threads x one thread). The ceiling of a GEMM computing in
// that mode on these cores. 0 when the unit is not supported.
double measure_dot_peak_gops(int threads, DotUnit unit);

// Seconds for a team of `threads` to each issue `instructions` of the unit on the peak loop's chains (the
// slowest thread sets the time), e.g. to time it in alternation with a kernel. The unit must be supported.
double dot_chains_seconds(int threads, int64_t instructions, DotUnit unit);

// The measurement behind both kinds of peak, for any loop: `seconds(team, iters)` times a team of `team`
// threads each running `iters` iterations of `ops_per_iteration` operations. Calibrates iters to ~0.1 s a
// run, keeps the best of 10 runs, and (threads > 1) measures again, up to 5 times, while the team reads under
// 80 % of threads x the best of 3 one-thread runs (a scheduler that kept two threads on one core). G ops/s.
double measure_team_peak(int threads, double ops_per_iteration,
                         const std::function<double(int team, int64_t iters)>& seconds);

}  // namespace krea2
