// The CUDA backend's attention (cuda/ops.h): one warp per query row, four rows per block, keys and values
// staged through shared memory 32 rows at a time, an online softmax in float32 (running max, rescaled sum and
// accumulator), so memory stays O(rows) and no score matrix exists. GQA reads the query head's KV head in
// place; masked keys and (causal) later keys are skipped; a query with no key gets zeros. Each lane holds
// head_dim / 32 dimensions of q and of the accumulator.
//
// A first, plain version: its job is to be right (tests/cuda/test_cuda_ops.cpp against the scalar reference);
// a tensor-core (mma / wgmma) kernel comes once it can be measured on a GPU.
#include <cuda_runtime.h>

#include <cmath>

#include "cuda/device.h"
#include "cuda/ops.h"
#include "krea2/error.h"

namespace krea2::cuda {
namespace {

constexpr int kWarps = 4;  // query rows per block
constexpr int kTile = 32;  // keys per shared-memory tile

template <int kDimsPerLane>
__global__ void attention_kernel(const float* q, int64_t ldq, const float* k, int64_t ldk, const float* v,
                                 int64_t ldv, float* out, int64_t ldo, int64_t begin, int64_t length,
                                 bool causal, int group, const uint8_t* key_valid, float scale) {
  constexpr int kHeadDim = 32 * kDimsPerLane;
  extern __shared__ float smem[];
  float* ks = smem;                     // [kTile][kHeadDim]
  float* vs = smem + kTile * kHeadDim;  // [kTile][kHeadDim]
  const int warp = int(threadIdx.x) >> 5, lane = int(threadIdx.x) & 31;
  const int head = int(blockIdx.y), kv_head = head / group;
  const int64_t i = int64_t(blockIdx.x) * kWarps + warp;  // query, within the segment
  const bool active = i < length;

  float qr[kDimsPerLane], acc[kDimsPerLane];
  for (int c = 0; c < kDimsPerLane; ++c) {
    qr[c] = active ? q[(begin + i) * ldq + int64_t(head) * kHeadDim + lane + 32 * c] : 0.0f;
    acc[c] = 0.0f;
  }
  float m = -INFINITY, l = 0.0f;

  // Keys this block needs: the whole segment, or (causal) those up to its last query.
  const int64_t last = min(length, int64_t(blockIdx.x + 1) * kWarps) - 1;
  const int64_t keys = causal ? last + 1 : length;
  for (int64_t j0 = 0; j0 < keys; j0 += kTile) {
    __syncthreads();  // the previous tile is no longer read
    for (int e = int(threadIdx.x); e < kTile * kHeadDim; e += int(blockDim.x)) {
      const int t = e / kHeadDim, d = e % kHeadDim;
      const int64_t row = begin + j0 + t;
      const bool in = j0 + t < keys;
      ks[e] = in ? k[row * ldk + int64_t(kv_head) * kHeadDim + d] : 0.0f;
      vs[e] = in ? v[row * ldv + int64_t(kv_head) * kHeadDim + d] : 0.0f;
    }
    __syncthreads();
    if (!active) continue;
    const int tiles_keys = int(min(int64_t(kTile), keys - j0));
    for (int t = 0; t < tiles_keys; ++t) {  // every branch below is uniform over the warp
      const int64_t j = j0 + t;
      if (causal && j > i) break;
      if (key_valid && !key_valid[begin + j]) continue;
      float s = 0.0f;
      for (int c = 0; c < kDimsPerLane; ++c) s += qr[c] * ks[t * kHeadDim + lane + 32 * c];
      for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
      s *= scale;
      const float m_new = fmaxf(m, s);
      const float correction = expf(m - m_new);  // 0 for the first key (m = -inf)
      const float p = expf(s - m_new);
      l = l * correction + p;
      for (int c = 0; c < kDimsPerLane; ++c)
        acc[c] = acc[c] * correction + p * vs[t * kHeadDim + lane + 32 * c];
      m = m_new;
    }
  }
  if (!active) return;
  for (int c = 0; c < kDimsPerLane; ++c)
    out[(begin + i) * ldo + int64_t(head) * kHeadDim + lane + 32 * c] = l > 0.0f ? acc[c] / l : 0.0f;
}

template <int kDimsPerLane>
void launch(const float* q, int64_t ldq, const float* k, int64_t ldk, const float* v, int64_t ldv, float* out,
            int64_t ldo, const AttentionShape& shape, const Segment& seg, const uint8_t* key_valid,
            cudaStream_t stream) {
  const dim3 grid(unsigned((seg.length + kWarps - 1) / kWarps), unsigned(shape.num_heads));
  const size_t smem = size_t(2) * kTile * 32 * kDimsPerLane * sizeof(float);
  const float scale = float(1.0 / std::sqrt(double(shape.head_dim)));
  attention_kernel<kDimsPerLane><<<grid, 32 * kWarps, smem, stream>>>(
      q, ldq, k, ldk, v, ldv, out, ldo, seg.begin, seg.length, seg.causal,
      shape.num_heads / shape.num_kv_heads, key_valid, scale);
  check(cudaGetLastError(), "attention kernel launch");
}

}  // namespace

void attention(const float* q, int64_t ldq, const float* k, int64_t ldk, const float* v, int64_t ldv,
               float* out, int64_t ldo, const AttentionShape& shape, const std::vector<Segment>& segments,
               const uint8_t* key_valid, cudaStream_t stream) {
  if (shape.head_dim % 32 != 0 || shape.head_dim > 128 || shape.head_dim <= 0)
    throw Error("cuda attention: head_dim must be 32, 64, 96 or 128, found " +
                std::to_string(shape.head_dim));
  if (shape.num_kv_heads <= 0 || shape.num_heads % shape.num_kv_heads != 0)
    throw Error("cuda attention: " + std::to_string(shape.num_heads) + " query heads cannot share " +
                std::to_string(shape.num_kv_heads) + " KV heads");
  for (const Segment& seg : segments) {
    if (seg.length <= 0) continue;
    switch (shape.head_dim / 32) {
      case 1:
        launch<1>(q, ldq, k, ldk, v, ldv, out, ldo, shape, seg, key_valid, stream);
        break;
      case 2:
        launch<2>(q, ldq, k, ldk, v, ldv, out, ldo, shape, seg, key_valid, stream);
        break;
      case 3:
        launch<3>(q, ldq, k, ldk, v, ldv, out, ldo, shape, seg, key_valid, stream);
        break;
      default:
        launch<4>(q, ldq, k, ldk, v, ldv, out, ldo, shape, seg, key_valid, stream);
        break;
    }
  }
}

}  // namespace krea2::cuda
