// The CUDA backend's operations on device memory, one per CPU op of the transformer block (ops/norm.h,
// ops/rope.h, ops/activations.h, ops/attention.h, ops/gemm.h), with the same arguments and semantics so each
// is tested against the CPU's scalar reference (tests/cuda/test_cuda_ops.cpp). Pointers are device pointers;
// everything runs on `stream` (0: the default stream) and returns without synchronising; launch errors throw
// krea2::Error. Row strides are in elements.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <vector>

#include "ops/attention.h"

namespace krea2::cuda {

// out = x / rms(x) * (1 + weight), then, with scale, out = (1 + scale) * out + shift (ops/norm.h rms_norm).
void rms_norm(const float* x, int64_t rows, int64_t dim, int64_t ldx, const float* weight, float eps,
              float* out, int64_t ldo, const float* scale, const float* shift, cudaStream_t stream = 0);

// Per head: x = x / rms(x) * (1 + weight), then (cos / sin: rows x half, or null) the interleaved rotation
// (ops/rope.h head_norm_rope).
void head_norm_rope(float* x, int64_t rows, int64_t ldx, int64_t heads, int64_t head_dim, const float* weight,
                    float eps, const float* cos, const float* sin, int64_t half, cudaStream_t stream = 0);

// o = o * sigmoid(g); a = silu(a) * b; x += gate * y (x += y when gate is null; gate per column).
void sigmoid_gate(float* o, int64_t ldo, const float* g, int64_t ldg, int64_t rows, int64_t dim,
                  cudaStream_t stream = 0);
void swiglu(float* a, int64_t lda, const float* b, int64_t ldb, int64_t rows, int64_t dim,
            cudaStream_t stream = 0);
void gated_residual(float* x, int64_t ldx, const float* y, int64_t ldy, const float* gate, int64_t rows,
                    int64_t dim, cudaStream_t stream = 0);

// float32 to bf16, round to nearest even (the bf16 compute mode's rounding of activations).
void round_to_bf16(const float* x, int64_t n, __nv_bfloat16* out, cudaStream_t stream = 0);

// Tiled attention with an online softmax (O(rows) memory), grouped KV heads, optional key mask (indexed by
// global row, device memory) and causal segments: ops/attention.h attention(). head_dim <= 128, a multiple
// of 32.
void attention(const float* q, int64_t ldq, const float* k, int64_t ldk, const float* v, int64_t ldv,
               float* out, int64_t ldo, const AttentionShape& shape, const std::vector<Segment>& segments,
               const uint8_t* key_valid = nullptr, cudaStream_t stream = 0);

// y (M x N, row stride ldy) (+)= x (M x K) W^T through cuBLASLt with float32 accumulation: W float32 (compute
// f32, TF32 off: the exact mode) or x and W bf16 (the bf16 mode). One handle and workspace per thread.
void gemm_xwt(const float* x, int64_t M, int64_t K, const float* w, int64_t N, float* y, int64_t ldy,
              bool accumulate, cudaStream_t stream = 0);
void gemm_xwt(const __nv_bfloat16* x, int64_t M, int64_t K, const __nv_bfloat16* w, int64_t N, float* y,
              int64_t ldy, bool accumulate, cudaStream_t stream = 0);

}  // namespace krea2::cuda
