// The text encoder's parameters as a plain struct, the one visitor that walks them (load, random init, int8
// preparation), and what a TextEncoder holds.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "io/checkpoint.h"
#include "krea2/text_encoder.h"
#include "model/weights.h"

namespace krea2 {

struct TextLayerWeights {
  std::vector<float> input_norm, post_norm;  // (hidden)
  std::vector<float> q_norm, k_norm;         // (head_dim)
  WeightMatrix q, k, v, o;
  WeightMatrix gate, up, down;
};

struct TextEncoderWeights {
  WeightMatrix embed;  // (vocab, hidden): rows are looked up, never multiplied
  std::vector<TextLayerWeights> layers;
  std::vector<float> norm;  // final RMSNorm (hidden)
};

// Calls f(ParamSlot&) for every parameter, named as in a transformers Qwen3 text model's state dict without
// its prefix ("embed_tokens.weight", "layers.3.self_attn.q_proj.weight", "norm.weight").
template <class F>
void visit_text_weights(TextEncoderWeights& w, const TextEncoderConfig& c, F&& f) {
  const int64_t D = c.hidden_size, hd = c.head_dim, Q = c.num_heads * hd, KV = c.num_kv_heads * hd;
  const int64_t I = c.intermediate_size;
  auto matrix = [&](const std::string& name, int64_t out, int64_t in, WeightMatrix& m) {
    ParamSlot s{name, {out, in}, &m, nullptr};
    f(s);
  };
  auto vector = [&](const std::string& name, int64_t n, std::vector<float>& v) {
    ParamSlot s{name, {n}, nullptr, &v};
    f(s);
  };
  matrix("embed_tokens.weight", c.vocab_size, D, w.embed);
  w.layers.resize(size_t(c.num_layers));
  for (size_t i = 0; i < w.layers.size(); ++i) {
    TextLayerWeights& l = w.layers[i];
    const std::string p = "layers." + std::to_string(i) + ".";
    vector(p + "input_layernorm.weight", D, l.input_norm);
    matrix(p + "self_attn.q_proj.weight", Q, D, l.q);
    matrix(p + "self_attn.k_proj.weight", KV, D, l.k);
    matrix(p + "self_attn.v_proj.weight", KV, D, l.v);
    matrix(p + "self_attn.o_proj.weight", D, Q, l.o);
    vector(p + "self_attn.q_norm.weight", hd, l.q_norm);
    vector(p + "self_attn.k_norm.weight", hd, l.k_norm);
    vector(p + "post_attention_layernorm.weight", D, l.post_norm);
    matrix(p + "mlp.gate_proj.weight", I, D, l.gate);
    matrix(p + "mlp.up_proj.weight", I, D, l.up);
    matrix(p + "mlp.down_proj.weight", D, I, l.down);
  }
  vector("norm.weight", D, w.norm);
}

struct TextEncoderImpl {
  TextEncoderConfig config;
  TextEncoderLoadInfo load_info;
  std::vector<int> default_taps;
  TextEncoderWeights weights;
  Compute compute = Compute::kF32;
  std::unique_ptr<Checkpoint> checkpoint;
  std::shared_ptr<const TextEncoderImpl> base;  // with_compute: the encoder whose bytes these weights use
  std::vector<std::unique_ptr<std::byte[]>> arenas;
  std::byte* new_arena(size_t bytes) {
    return arenas.emplace_back(std::make_unique_for_overwrite<std::byte[]>(bytes)).get();
  }
};

}  // namespace krea2
