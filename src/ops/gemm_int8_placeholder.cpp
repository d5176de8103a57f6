// PLACEHOLDER (replaced by the int8 kernels).
#include "ops/gemm_kernels.h"

namespace krea2 {
const GemmKernels kGemmKernelsInt8Avx512Vnni = kGemmKernelsAvx512;
const GemmKernels kGemmKernelsInt8Avx2 = kGemmKernelsAvx2;
}  // namespace krea2
