// Weight conversions on the device (cuda/block.h upload_matrix): bf16 / f16 widened to float32, float32 / f16
// rounded to bf16 (round to nearest even, as the CPU's bf16 packers).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <type_traits>

#include "cuda/convert.h"
#include "cuda/device.h"

namespace krea2::cuda {
namespace {

template <typename In, typename Out>
__global__ void convert_kernel(const In* in, int64_t n, Out* out) {
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n;
       e += int64_t(gridDim.x) * blockDim.x) {
    if constexpr (std::is_same_v<Out, float>) {
      out[e] = float(in[e]);
    } else {
      out[e] = __float2bfloat16_rn(float(in[e]));
    }
  }
}

template <typename In, typename Out>
void launch(const In* in, int64_t n, Out* out, cudaStream_t stream, const char* what) {
  if (n <= 0) return;
  convert_kernel<<<grid_stride_blocks(n, 256), 256, 0, stream>>>(in, n, out);
  check(cudaGetLastError(), what);
}

}  // namespace

void widen_bf16(const __nv_bfloat16* in, int64_t n, float* out, cudaStream_t stream) {
  launch(in, n, out, stream, "widen_bf16 kernel launch");
}
void widen_f16(const __half* in, int64_t n, float* out, cudaStream_t stream) {
  launch(in, n, out, stream, "widen_f16 kernel launch");
}
void f16_to_bf16(const __half* in, int64_t n, __nv_bfloat16* out, cudaStream_t stream) {
  launch(in, n, out, stream, "f16_to_bf16 kernel launch");
}

}  // namespace krea2::cuda
