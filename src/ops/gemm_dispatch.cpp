// The one place that maps an instruction set level and a compute mode to a GEMM variant
// (ops/gemm_kernels.h).
#include "ops/gemm_kernels.h"

namespace krea2 {

const GemmKernels& gemm_kernels(Isa isa, Compute compute) {
  const bool avx512 = isa == Isa::kAvx512;
  switch (compute) {
    case Compute::kBf16:
      if (avx512 && cpu_features().avx512_bf16) return kGemmKernelsBf16Avx512Bf16;
      return avx512 ? kGemmKernelsBf16Avx512 : kGemmKernelsBf16Avx2;
    case Compute::kInt8:
      if (avx512 && cpu_features().avx512_vnni) return kGemmKernelsInt8Avx512Vnni;
      return kGemmKernelsInt8Avx2;
    case Compute::kF32:
      break;
  }
  return avx512 ? kGemmKernelsAvx512 : kGemmKernelsAvx2;
}

}  // namespace krea2
