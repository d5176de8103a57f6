// PLACEHOLDER (replaced by the bf16 kernels): the bf16 tables point at the float32 kernels.
#include "ops/gemm_kernels.h"

namespace krea2 {
namespace {
GemmKernels as_bf16(GemmKernels k) {
  k.compute = Compute::kBf16;
  return k;
}
}  // namespace
const GemmKernels kGemmKernelsBf16Avx512Bf16 = as_bf16(kGemmKernelsAvx512);
const GemmKernels kGemmKernelsBf16Avx2 = as_bf16(kGemmKernelsAvx2);
const GemmKernels kGemmKernelsBf16Avx512 = as_bf16(kGemmKernelsAvx512);
}  // namespace krea2
