// One transformer block on the GPU (the CUDA counterpart of model/block.h run_block): the block's weights
// uploaded once, then attention + SwiGLU with pre-norms, residuals, optional per-sample modulation and rope,
// every activation in device memory. Weights: F32 / BF16 / F16 as stored; in f32 compute BF16 / F16 are
// widened to float32 on the device, in bf16 compute F32 / F16 are rounded to bf16 there (never expanded in
// host memory). Quantized storage types are not supported yet (the constructor names the tensor and type).
#pragma once
#include <cuda_bf16.h>

#include <cstdint>
#include <string>
#include <vector>

#include "cuda/device.h"
#include "krea2/compute.h"
#include "model/block.h"

namespace krea2::cuda {

// A linear layer's weight on the device, in the compute mode's operand type.
struct DeviceMatrix {
  int64_t rows = 0, cols = 0;
  DeviceBuffer<float> f32;           // f32 compute
  DeviceBuffer<__nv_bfloat16> bf16;  // bf16 compute
};

// Uploads w (named `name` in errors) for `compute` (kF32 or kBf16).
DeviceMatrix upload_matrix(const WeightMatrix& w, Compute compute, const std::string& name);

struct DeviceBlock {
  Compute compute = Compute::kF32;
  DeviceBuffer<float> norm1, norm2, norm_q, norm_k;
  std::vector<float> scale_shift_table;  // (6, D) on the host: added to each sample's temb_mod per call
  DeviceMatrix to_q, to_k, to_v, to_gate, to_out, gate, up, down;
};

// `prefix` names the block in errors (e.g. "block 3"; the weights are named by their field, "attn.to_q").
DeviceBlock upload_block(const BlockWeights& w, Compute compute, const std::string& prefix);

// Device activation buffers, grown on demand and reused across calls.
struct DeviceWorkspace {
  DeviceBuffer<float> h, q, k, v, g, o, a, u, m;
  DeviceBuffer<__nv_bfloat16> rounded;  // bf16 compute: the rounded left operand of a product
};

// x (rows x width, device) updated in place, as run_block: `segments` bound attention; key_valid (device,
// optional) masks keys; cos / sin (device, rows x half, optional) rotate q and k; mod (host, optional)
// modulates per sample. Runs on `stream` without synchronising.
void run_block(const DeviceBlock& w, const BlockDims& d, float* x, int64_t rows,
               const std::vector<Segment>& segments, const uint8_t* key_valid, const float* cos,
               const float* sin, int64_t half, const Modulation* mod, DeviceWorkspace& ws,
               cudaStream_t stream = 0);

}  // namespace krea2::cuda
