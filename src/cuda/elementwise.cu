// The element-wise kernels of the CUDA backend (cuda/ops.h): RMSNorm with modulation, per-head norm + rope,
// sigmoid gate, SwiGLU, gated residual, bf16 rounding. Every formula and rounding order follows the CPU
// kernels (ops/row_kernels_avx2.cpp): float32 throughout, 1 / sqrtf of the mean square plus eps.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>

#include "cuda/device.h"
#include "cuda/ops.h"

namespace krea2::cuda {
namespace {

constexpr int kNormThreads = 256;

// Sum over the block (blockDim.x a multiple of 32, at most 1024), returned to every thread.
__device__ float block_sum(float v) {
  __shared__ float partial[32];
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  v = lane < warps ? partial[lane] : 0.0f;
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// One block per row.
__global__ void rms_norm_kernel(const float* x, int64_t dim, int64_t ldx, const float* weight, float eps,
                                float* out, int64_t ldo, const float* scale, const float* shift) {
  const float* xr = x + blockIdx.x * ldx;
  float* o = out + blockIdx.x * ldo;
  float ss = 0.0f;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) ss += xr[i] * xr[i];
  const float inv = 1.0f / sqrtf(block_sum(ss) / float(dim) + eps);
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
    float v = xr[i] * inv * (1.0f + weight[i]);
    if (scale) v = (1.0f + scale[i]) * v + shift[i];
    o[i] = v;
  }
}

// One block per (row, head); thread t handles the pairs t, t + blockDim.x, ... of the head.
__global__ void head_norm_rope_kernel(float* x, int64_t ldx, int64_t head_dim, const float* weight, float eps,
                                      const float* cos, const float* sin, int64_t half) {
  const int64_t row = blockIdx.x;
  float* xh = x + row * ldx + blockIdx.y * head_dim;
  const int64_t pairs = head_dim / 2;
  float ss = 0.0f;
  for (int64_t p = threadIdx.x; p < pairs; p += blockDim.x)
    ss += xh[2 * p] * xh[2 * p] + xh[2 * p + 1] * xh[2 * p + 1];
  const float inv = 1.0f / sqrtf(block_sum(ss) / float(head_dim) + eps);
  for (int64_t p = threadIdx.x; p < pairs; p += blockDim.x) {
    const float a = xh[2 * p] * inv * (1.0f + weight[2 * p]);
    const float b = xh[2 * p + 1] * inv * (1.0f + weight[2 * p + 1]);
    if (cos && p < half) {
      const float c = cos[row * half + p], s = sin[row * half + p];
      xh[2 * p] = a * c - b * s;
      xh[2 * p + 1] = b * c + a * s;
    } else {
      xh[2 * p] = a;
      xh[2 * p + 1] = b;
    }
  }
}

__device__ float sigmoidf(float x) {
  return 1.0f / (1.0f + expf(-x));
}

enum class Pointwise { kSigmoidGate, kSwiglu, kResidual, kGatedResidual };

// a[r][i] op= b[r][i] over rows x dim, a grid-stride loop over all elements.
template <Pointwise kOp>
__global__ void pointwise_kernel(float* a, int64_t lda, const float* b, int64_t ldb, const float* gate,
                                 int64_t rows, int64_t dim) {
  const int64_t n = rows * dim;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n;
       e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = e / dim, i = e % dim;
    float& x = a[r * lda + i];
    const float y = b[r * ldb + i];
    if constexpr (kOp == Pointwise::kSigmoidGate) x = x * sigmoidf(y);
    if constexpr (kOp == Pointwise::kSwiglu) x = x * sigmoidf(x) * y;
    if constexpr (kOp == Pointwise::kResidual) x = x + y;
    if constexpr (kOp == Pointwise::kGatedResidual) x = x + gate[i] * y;
  }
}

__global__ void round_bf16_kernel(const float* x, int64_t n, __nv_bfloat16* out) {
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n;
       e += int64_t(gridDim.x) * blockDim.x)
    out[e] = __float2bfloat16_rn(x[e]);
}

template <Pointwise kOp>
void launch_pointwise(float* a, int64_t lda, const float* b, int64_t ldb, const float* gate, int64_t rows,
                      int64_t dim, cudaStream_t stream, const char* what) {
  if (rows <= 0 || dim <= 0) return;
  pointwise_kernel<kOp>
      <<<grid_stride_blocks(rows * dim, 256), 256, 0, stream>>>(a, lda, b, ldb, gate, rows, dim);
  check(cudaGetLastError(), what);
}

}  // namespace

void rms_norm(const float* x, int64_t rows, int64_t dim, int64_t ldx, const float* weight, float eps,
              float* out, int64_t ldo, const float* scale, const float* shift, cudaStream_t stream) {
  if (rows <= 0) return;
  rms_norm_kernel<<<unsigned(rows), kNormThreads, 0, stream>>>(x, dim, ldx, weight, eps, out, ldo, scale,
                                                               shift);
  check(cudaGetLastError(), "rms_norm kernel launch");
}

void head_norm_rope(float* x, int64_t rows, int64_t ldx, int64_t heads, int64_t head_dim, const float* weight,
                    float eps, const float* cos, const float* sin, int64_t half, cudaStream_t stream) {
  if (rows <= 0 || heads <= 0) return;
  const int threads = int(std::clamp<int64_t>((head_dim / 2 + 31) / 32 * 32, 32, 1024));
  head_norm_rope_kernel<<<dim3(unsigned(rows), unsigned(heads)), threads, 0, stream>>>(
      x, ldx, head_dim, weight, eps, cos, sin, half);
  check(cudaGetLastError(), "head_norm_rope kernel launch");
}

void sigmoid_gate(float* o, int64_t ldo, const float* g, int64_t ldg, int64_t rows, int64_t dim,
                  cudaStream_t stream) {
  launch_pointwise<Pointwise::kSigmoidGate>(o, ldo, g, ldg, nullptr, rows, dim, stream,
                                            "sigmoid_gate kernel launch");
}

void swiglu(float* a, int64_t lda, const float* b, int64_t ldb, int64_t rows, int64_t dim,
            cudaStream_t stream) {
  launch_pointwise<Pointwise::kSwiglu>(a, lda, b, ldb, nullptr, rows, dim, stream, "swiglu kernel launch");
}

void gated_residual(float* x, int64_t ldx, const float* y, int64_t ldy, const float* gate, int64_t rows,
                    int64_t dim, cudaStream_t stream) {
  if (gate)
    launch_pointwise<Pointwise::kGatedResidual>(x, ldx, y, ldy, gate, rows, dim, stream,
                                                "gated_residual kernel launch");
  else
    launch_pointwise<Pointwise::kResidual>(x, ldx, y, ldy, nullptr, rows, dim, stream,
                                           "residual kernel launch");
}

void round_to_bf16(const float* x, int64_t n, __nv_bfloat16* out, cudaStream_t stream) {
  if (n <= 0) return;
  round_bf16_kernel<<<grid_stride_blocks(n, 256), 256, 0, stream>>>(x, n, out);
  check(cudaGetLastError(), "round_to_bf16 kernel launch");
}

}  // namespace krea2::cuda
