// Element type conversions on the device, for weights uploaded in one type and computed in another.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace krea2::cuda {

void widen_bf16(const __nv_bfloat16* in, int64_t n, float* out, cudaStream_t stream = 0);
void widen_f16(const __half* in, int64_t n, float* out, cudaStream_t stream = 0);
void f16_to_bf16(const __half* in, int64_t n, __nv_bfloat16* out, cudaStream_t stream = 0);

}  // namespace krea2::cuda
