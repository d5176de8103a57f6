// The text tower's forward (transformers Qwen3VLTextModel for text-only input): embeddings, decoder layers
// (plain-weight RMSNorm, q/k head norms before rotate-half RoPE, causal GQA attention with the key-padding
// mask, SwiGLU), the hidden states of the requested taps. Rows of all samples run together through the
// products; each sample is one causal attention segment.
#include <omp.h>

#include <algorithm>
#include <cstdio>

#include "krea2/error.h"
#include "model/block.h"
#include "ops/activations.h"
#include "ops/attention.h"
#include "ops/gemm.h"
#include "ops/linear.h"
#include "ops/norm.h"
#include "ops/rope_half.h"
#include "ops/weight_decode.h"
#include "text/encoder_weights.h"

namespace krea2 {

namespace {

struct LayerBuffers {
  std::vector<float> h, q, k, v, o, g, u;
  LinearScratch scratch;
};

void run_layer(const TextLayerWeights& w, const TextEncoderConfig& c, float* x, int64_t rows,
               const std::vector<Segment>& segments, const uint8_t* key_valid, const HalfRopeTable& rope,
               LayerBuffers& b, StageTimes* times) {
  const int64_t D = c.hidden_size, hd = c.head_dim, Q = c.num_heads * hd, KV = c.num_kv_heads * hd;
  const int64_t I = c.intermediate_size;
  const float eps = float(c.rms_norm_eps);
  float* h = sized(b.h, rows * D);
  float* q = sized(b.q, rows * Q);
  float* k = sized(b.k, rows * KV);
  float* v = sized(b.v, rows * KV);
  float* o = sized(b.o, rows * Q);
  {
    StageTimer t(times, "norm_rope");
    rms_norm_plain(x, rows, D, D, w.input_norm.data(), eps, h, D);
  }
  {
    StageTimer t(times, "qkv");
    linear_many(h, rows, D, {{&w.q, q, Q}, {&w.k, k, KV}, {&w.v, v, KV}}, b.scratch);
  }
  {
    StageTimer t(times, "norm_rope");
    head_norm_rope_half(q, rows, Q, c.num_heads, hd, w.q_norm.data(), eps, rope);
    head_norm_rope_half(k, rows, KV, c.num_kv_heads, hd, w.k_norm.data(), eps, rope);
  }
  {
    StageTimer t(times, "attention");
    const AttentionShape shape{int(c.num_heads), int(c.num_kv_heads), int(hd)};
    attention(q, Q, k, KV, v, KV, o, Q, shape, segments, key_valid);
  }
  {
    StageTimer t(times, "out_proj");
    linear(o, rows, Q, w.o, nullptr, x, D, b.scratch, /*accumulate=*/true);
  }
  {
    StageTimer t(times, "norm_rope");
    rms_norm_plain(x, rows, D, D, w.post_norm.data(), eps, h, D);
  }
  float* g = sized(b.g, rows * I);
  float* u = sized(b.u, rows * I);
  {
    StageTimer t(times, "ff_gate_up");
    linear_many(h, rows, D, {{&w.gate, g, I}, {&w.up, u, I}}, b.scratch);
  }
  {
    StageTimer t(times, "swiglu");
    swiglu_inplace(g, I, u, I, rows, I);
  }
  {
    StageTimer t(times, "ff_down");
    linear(g, rows, I, w.down, nullptr, x, D, b.scratch, /*accumulate=*/true);
  }
}

}  // namespace

Tensor TextEncoder::hidden_states(const std::vector<int32_t>& ids, const std::vector<uint8_t>& mask,
                                  const std::vector<int32_t>& positions, int64_t batch,
                                  const std::vector<int>& taps_in, bool skip_padding,
                                  const EncodeOptions& options) const {
  const TextEncoderConfig& c = impl_->config;
  const TextEncoderWeights& W = impl_->weights;
  const std::vector<int>& taps = taps_in.empty() ? impl_->default_taps : taps_in;
  if (batch < 1 || ids.empty() || ids.size() % size_t(batch) != 0)
    throw Error("text encoder: " + std::to_string(ids.size()) + " token ids do not split into " +
                std::to_string(batch) + " sample(s)");
  const int64_t S = int64_t(ids.size()) / batch;
  if (mask.size() != ids.size() || positions.size() != ids.size())
    throw Error("text encoder: ids, mask and positions must have the same size (" +
                std::to_string(ids.size()) + ", " + std::to_string(mask.size()) + ", " +
                std::to_string(positions.size()) + ")");
  int deepest = 0;
  for (int t : taps) {
    if (t < 0 || t > c.num_layers)
      throw Error("text encoder: tap " + std::to_string(t) + " out of range 0.." +
                  std::to_string(c.num_layers) + " (0 = embeddings, " + std::to_string(c.num_layers) +
                  " = after the final norm)" +
                  (taps_in.empty() ? "; these are the default taps (" + impl_->load_info.taps_source +
                                         "): give the taps for this encoder (--taps)"
                                   : ""));
    deepest = std::max(deepest, t);
  }
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= c.vocab_size)
      throw Error("text encoder: token id " + std::to_string(ids[i]) + " outside the vocabulary (0.." +
                  std::to_string(c.vocab_size - 1) + ")");
    if (positions[i] < 0) throw Error("text encoder: negative position id");
  }
  const GemmComputeScope compute(impl_->compute);
  const int64_t D = c.hidden_size, T = int64_t(taps.size());

  // The rows that run: every row, or only the valid ones; row_of[i] = index into (batch * S).
  std::vector<int64_t> row_of;
  std::vector<Segment> segments;
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t begin = int64_t(row_of.size());
    for (int64_t s = 0; s < S; ++s)
      if (!skip_padding || mask[size_t(b * S + s)]) row_of.push_back(b * S + s);
    segments.push_back({begin, int64_t(row_of.size()) - begin, /*causal=*/true});
  }
  const int64_t M = int64_t(row_of.size());
  std::vector<uint8_t> key_valid;
  if (!skip_padding) key_valid.assign(mask.begin(), mask.end());
  std::vector<int32_t> row_positions(static_cast<size_t>(M));
  for (int64_t r = 0; r < M; ++r) row_positions[size_t(r)] = positions[size_t(row_of[size_t(r)])];
  const HalfRopeTable rope = make_half_rope_table(row_positions.data(), M, c.head_dim, c.rope_theta);

  Tensor out({batch, S, T, D});
  if (M == 0) return out;
  auto store = [&](int index, const float* x) {
    for (int64_t t = 0; t < T; ++t) {
      if (taps[size_t(t)] != index) continue;
#pragma omp parallel for schedule(static) if (M * D > 65536)
      for (int64_t r = 0; r < M; ++r) std::copy_n(x + r * D, D, out.ptr() + (row_of[size_t(r)] * T + t) * D);
    }
  };

  std::vector<float> x(size_t(M * D));
  {
    StageTimer t(options.times, "embed");
#pragma omp parallel for schedule(static) if (M * D > 65536)
    for (int64_t r = 0; r < M; ++r)
      decode_weight_segment(W.embed, ids[size_t(row_of[size_t(r)])], 0, D, x.data() + r * D);
  }
  store(0, x.data());
  LayerBuffers buffers;
  const int layers = std::min<int>(deepest, int(c.num_layers));
  for (int l = 0; l < layers; ++l) {
    run_layer(W.layers[size_t(l)], c, x.data(), M, segments, key_valid.empty() ? nullptr : key_valid.data(),
              rope, buffers, options.times);
    if (l + 1 < c.num_layers) store(l + 1, x.data());
    if (options.progress) options.progress(l + 1, layers);
  }
  if (deepest == c.num_layers) {
    rms_norm_plain(x.data(), M, D, D, W.norm.data(), float(c.rms_norm_eps), x.data(), D);
    store(int(c.num_layers), x.data());
  }
  return out;
}

}  // namespace krea2
