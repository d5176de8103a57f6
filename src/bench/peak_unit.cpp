#include "bench/peak_unit.h"

#include "bench/fma_peak.h"
#include "ops/gemm_kernels.h"

namespace krea2 {

PeakUnit peak_unit_for(Isa isa, Compute compute) {
  const CpuFeatures& f = cpu_features();
  const bool avx512 = isa == Isa::kAvx512;
  // bf16 at avx512 may run the float32 kernel where that measured faster (ops/gemm_dispatch.cpp).
  const GemmKernels& kernels = gemm_kernels(isa, compute);
  if (&kernels == &kGemmKernelsBf16Amx || &kernels == &kGemmKernelsInt8Amx) return {isa, std::nullopt, true};
  if (compute == Compute::kBf16 && &kernels == &kGemmKernelsBf16Avx512Bf16)
    return {isa, DotUnit::kBf16Avx512};
  if (compute == Compute::kInt8 && avx512 && f.avx512_vnni) return {isa, DotUnit::kInt8Avx512};
  if (compute == Compute::kInt8 && !avx512 && f.avx_vnni) return {isa, DotUnit::kInt8AvxVnni};
  return {isa, std::nullopt};
}

std::string peak_unit_name(const PeakUnit& unit) {
  if (unit.dot) return dot_unit_name(*unit.dot);
  return std::string("fp32 FMA (") + isa_name(unit.isa) +
         (unit.amx ? "; the products run on AMX tiles, whose peak is not measured" : "") + ")";
}

std::string peak_unit_key(const PeakUnit& unit) {
  if (!unit.dot) return std::string("fp32_") + isa_name(unit.isa);
  switch (*unit.dot) {
    case DotUnit::kBf16Avx512:
      return "bf16_dot";
    case DotUnit::kInt8Avx512:
      return "int8_dot_zmm";
    case DotUnit::kInt8AvxVnni:
      break;
  }
  return "int8_dot_ymm";
}

int64_t peak_unit_instruction_ops(const PeakUnit& unit) {
  return unit.dot ? dot_instruction_ops(*unit.dot) : fma_instruction_flops(unit.isa);
}

double peak_unit_chains_seconds(int threads, int64_t instructions, const PeakUnit& unit) {
  return unit.dot ? dot_chains_seconds(threads, instructions, *unit.dot)
                  : fma_chains_seconds(threads, instructions, unit.isa);
}

double measure_peak_unit(int threads, const PeakUnit& unit) {
  return unit.dot ? measure_dot_peak_gops(threads, *unit.dot) : measure_fma_peak_gflops(threads, unit.isa);
}

}  // namespace krea2
