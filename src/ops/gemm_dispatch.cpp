// The one place that maps an instruction set level to its GEMM variant (ops/gemm_kernels.h).
#include "ops/gemm_kernels.h"

namespace krea2 {

const GemmKernels& gemm_kernels(Isa isa) {
  switch (isa) {
    case Isa::kAvx512:
      return kGemmKernelsAvx512;
    case Isa::kAvx2:
      break;
  }
  return kGemmKernelsAvx2;
}

}  // namespace krea2
