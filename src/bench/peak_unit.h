// The execution unit a GEMM variant runs on, for `krea2 bench`'s "% of peak": the float32 FMA of an ISA
// (bench/fma_peak.h) or a dot-product unit (bench/dot_peak.h), with one interface for measuring either.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "bench/dot_peak.h"
#include "cpu/cpu_features.h"
#include "krea2/compute.h"

namespace krea2 {

struct PeakUnit {
  Isa isa = Isa::kAvx2;        // the FMA's width when dot is empty
  std::optional<DotUnit> dot;  // set for a dot-product unit
  // The products run on AMX tiles (opt-in, ops/gemm_kernels.h), whose own peak no loop measures yet: they are
  // judged against the fp32 FMA peak, and the name says so.
  bool amx = false;
};

// The unit behind gemm_kernels(isa, compute): vdpbf16ps for bf16 where that variant was chosen, vpdpbusd zmm
// / ymm for int8 on AVX512_VNNI / AVX-VNNI, else the ISA's float32 FMA (the emulated bf16 kernels are float32
// FMA kernels; the plain AVX2 int8 kernel has no dot unit and is judged against the AVX2 FMA peak).
PeakUnit peak_unit_for(Isa isa, Compute compute);

// "fp32 FMA (avx512)", "bf16 dot (vdpbf16ps zmm)", ...; a short key for JSON: "fp32_avx512", "bf16_dot",
// "int8_dot_zmm", "int8_dot_ymm".
std::string peak_unit_name(const PeakUnit& unit);
std::string peak_unit_key(const PeakUnit& unit);

// Operations of one instruction of the unit's peak loop (2 per multiply-add).
int64_t peak_unit_instruction_ops(const PeakUnit& unit);
// Seconds for a team of `threads` to each issue `instructions` of the unit's peak loop.
double peak_unit_chains_seconds(int threads, int64_t instructions, const PeakUnit& unit);
// The measured peak, G ops/s (GFLOP/s for float units).
double measure_peak_unit(int threads, const PeakUnit& unit);

}  // namespace krea2
