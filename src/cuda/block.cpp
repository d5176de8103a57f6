#include "cuda/block.h"

#include <cuda_runtime_api.h>

#include "cuda/convert.h"
#include "cuda/ops.h"
#include "krea2/error.h"

namespace krea2::cuda {
namespace {

DeviceBuffer<float> upload_vector(const std::vector<float>& v) {
  return to_device(v);
}

// Device buffer sized for at least n elements (reallocated only to grow).
template <typename T>
T* sized(DeviceBuffer<T>& b, int64_t n) {
  if (b.size() < size_t(n)) b = DeviceBuffer<T>(size_t(n));
  return b.get();
}

// y (+)= x W^T in the block's compute mode: bf16 rounds x into the workspace first.
void product(const DeviceMatrix& w, const float* x, int64_t rows, float* y, int64_t ldy, Compute compute,
             DeviceWorkspace& ws, cudaStream_t stream) {
  if (compute == Compute::kBf16) {
    __nv_bfloat16* xb = sized(ws.rounded, rows * w.cols);
    round_to_bf16(x, rows * w.cols, xb, stream);
    gemm_xwt(xb, rows, w.cols, w.bf16.get(), w.rows, y, ldy, false, stream);
  } else {
    gemm_xwt(x, rows, w.cols, w.f32.get(), w.rows, y, ldy, false, stream);
  }
}

}  // namespace

DeviceMatrix upload_matrix(const WeightMatrix& w, Compute compute, const std::string& name) {
  if (compute != Compute::kF32 && compute != Compute::kBf16)
    throw Error("cuda: compute mode " + std::string(compute_name(compute)) +
                " is not supported on the GPU yet");
  if (!w.is_plain_float() || w.delta != nullptr)
    throw Error("cuda: weight " + name + " is stored as " + std::string(dtype_name(w.dtype)) +
                (w.delta ? " with an adapter" : "") +
                "; the GPU takes F32, BF16 or F16 weights for now (quantized types are not supported yet)");
  DeviceMatrix d;
  d.rows = w.rows;
  d.cols = w.cols;
  const size_t n = size_t(w.rows * w.cols);
  if (w.dtype == DType::F32) {
    DeviceBuffer<float> f(n);
    f.upload(static_cast<const float*>(w.data), n);
    if (compute == Compute::kF32) {
      d.f32 = std::move(f);
    } else {
      d.bf16 = DeviceBuffer<__nv_bfloat16>(n);
      round_to_bf16(f.get(), int64_t(n), d.bf16.get());
      check(cudaDeviceSynchronize(), "rounding a weight to bf16");
    }
    return d;
  }
  // 16-bit storage: uploaded as stored, then widened (f32 compute) or converted (F16, bf16 compute).
  DeviceBuffer<uint16_t> raw(n);
  raw.upload(static_cast<const uint16_t*>(w.data), n);
  const auto* bf = reinterpret_cast<const __nv_bfloat16*>(raw.get());
  const auto* hf = reinterpret_cast<const __half*>(raw.get());
  if (compute == Compute::kF32) {
    d.f32 = DeviceBuffer<float>(n);
    if (w.dtype == DType::BF16)
      widen_bf16(bf, int64_t(n), d.f32.get());
    else
      widen_f16(hf, int64_t(n), d.f32.get());
  } else {
    d.bf16 = DeviceBuffer<__nv_bfloat16>(n);
    if (w.dtype == DType::BF16)
      check(cudaMemcpy(d.bf16.get(), bf, n * 2, cudaMemcpyDeviceToDevice), "cudaMemcpy of a bf16 weight");
    else
      f16_to_bf16(hf, int64_t(n), d.bf16.get());
  }
  check(cudaDeviceSynchronize(), "converting a weight");
  return d;
}

DeviceBlock upload_block(const BlockWeights& w, Compute compute, const std::string& prefix) {
  DeviceBlock d;
  d.compute = compute;
  d.norm1 = upload_vector(w.norm1);
  d.norm2 = upload_vector(w.norm2);
  d.norm_q = upload_vector(w.attn.norm_q);
  d.norm_k = upload_vector(w.attn.norm_k);
  d.scale_shift_table = w.scale_shift_table;
  d.to_q = upload_matrix(w.attn.to_q, compute, prefix + " attn.to_q");
  d.to_k = upload_matrix(w.attn.to_k, compute, prefix + " attn.to_k");
  d.to_v = upload_matrix(w.attn.to_v, compute, prefix + " attn.to_v");
  d.to_gate = upload_matrix(w.attn.to_gate, compute, prefix + " attn.to_gate");
  d.to_out = upload_matrix(w.attn.to_out, compute, prefix + " attn.to_out");
  d.gate = upload_matrix(w.ff.gate, compute, prefix + " ff.gate");
  d.up = upload_matrix(w.ff.up, compute, prefix + " ff.up");
  d.down = upload_matrix(w.ff.down, compute, prefix + " ff.down");
  return d;
}

void run_block(const DeviceBlock& w, const BlockDims& d, float* x, int64_t rows,
               const std::vector<Segment>& segments, const uint8_t* key_valid, const float* cos,
               const float* sin, int64_t half, const Modulation* mod, DeviceWorkspace& ws,
               cudaStream_t stream) {
  if (rows == 0) return;
  const int64_t D = d.width, Dkv = d.kv_width, F = d.ff, hd = d.heads.head_dim;
  const int64_t samples = mod ? int64_t(mod->row_begin.size()) - 1 : 0;
  // m = temb_mod[s] + table per sample (samples x 6D), computed on the host and uploaded once per call.
  float* m = nullptr;
  if (mod) {
    std::vector<float> host(size_t(samples * 6 * D));
    for (int64_t s = 0; s < samples; ++s)
      for (int64_t i = 0; i < 6 * D; ++i)
        host[size_t(s * 6 * D + i)] = mod->temb_mod[s * 6 * D + i] + w.scale_shift_table[size_t(i)];
    m = sized(ws.m, samples * 6 * D);
    check(cudaMemcpyAsync(m, host.data(), host.size() * sizeof(float), cudaMemcpyHostToDevice, stream),
          "cudaMemcpyAsync of the modulation");
    check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");  // `host` goes out of scope
  }
  float* h = sized(ws.h, rows * D);
  float* q = sized(ws.q, rows * D);
  float* k = sized(ws.k, rows * Dkv);
  float* v = sized(ws.v, rows * Dkv);
  float* g = sized(ws.g, rows * D);
  float* o = sized(ws.o, rows * D);

  // Pre-norm of x into h, with modulation chunks (scale, scale + 1) per sample.
  auto norm_in = [&](const DeviceBuffer<float>& weight, int scale_chunk) {
    if (!mod) {
      rms_norm(x, rows, D, D, weight.get(), d.eps, h, D, nullptr, nullptr, stream);
      return;
    }
    for (int64_t s = 0; s < samples; ++s) {
      const int64_t r0 = mod->row_begin[size_t(s)], r1 = mod->row_begin[size_t(s + 1)];
      const float* ms = m + s * 6 * D;
      rms_norm(x + r0 * D, r1 - r0, D, D, weight.get(), d.eps, h + r0 * D, D, ms + scale_chunk * D,
               ms + (scale_chunk + 1) * D, stream);
    }
  };
  // x += gate * h, the gate being modulation chunk `gate_chunk` per sample (or 1 without modulation).
  auto residual = [&](int gate_chunk) {
    if (!mod) {
      gated_residual(x, D, h, D, nullptr, rows, D, stream);
      return;
    }
    for (int64_t s = 0; s < samples; ++s) {
      const int64_t r0 = mod->row_begin[size_t(s)], r1 = mod->row_begin[size_t(s + 1)];
      gated_residual(x + r0 * D, D, h + r0 * D, D, m + (s * 6 + gate_chunk) * D, r1 - r0, D, stream);
    }
  };

  // Attention half: x = x + pregate * to_out(attn(q, k, v) * sigmoid(gate)).
  norm_in(w.norm1, 0);
  product(w.to_q, h, rows, q, D, w.compute, ws, stream);
  product(w.to_k, h, rows, k, Dkv, w.compute, ws, stream);
  product(w.to_v, h, rows, v, Dkv, w.compute, ws, stream);
  product(w.to_gate, h, rows, g, D, w.compute, ws, stream);
  head_norm_rope(q, rows, D, d.heads.num_heads, hd, w.norm_q.get(), d.eps, cos, sin, half, stream);
  head_norm_rope(k, rows, Dkv, d.heads.num_kv_heads, hd, w.norm_k.get(), d.eps, cos, sin, half, stream);
  attention(q, D, k, Dkv, v, Dkv, o, D, d.heads, segments, key_valid, stream);
  sigmoid_gate(o, D, g, D, rows, D, stream);
  product(w.to_out, o, rows, h, D, w.compute, ws, stream);
  residual(2);
  norm_in(w.norm2, 3);

  // Feed-forward half: x = x + postgate * down(silu(gate(h)) * up(h)).
  float* a = sized(ws.a, rows * F);
  float* u = sized(ws.u, rows * F);
  product(w.gate, h, rows, a, F, w.compute, ws, stream);
  product(w.up, h, rows, u, F, w.compute, ws, stream);
  swiglu(a, F, u, F, rows, F, stream);
  product(w.down, a, rows, h, D, w.compute, ws, stream);
  residual(5);
}

}  // namespace krea2::cuda
