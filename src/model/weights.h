// The model's parameters as a plain struct, and the one visitor that walks them (load, save, random init, and
// later quantize / LoRA). Large matrices are WeightMatrix views (into the mmap or an owned arena); small
// vectors (norm weights, biases, modulation tables, the projector) are float32 copies.
#pragma once
#include <string>
#include <vector>

#include "krea2/config.h"
#include "krea2/tensor.h"
#include "ops/linear.h"

namespace krea2 {

struct AttentionWeights {
  WeightMatrix to_q, to_k, to_v, to_gate, to_out;
  std::vector<float> norm_q, norm_k;
};

struct FeedForwardWeights {
  WeightMatrix gate, up, down;
};

// A transformer block; text fusion blocks have no modulation table.
struct BlockWeights {
  std::vector<float> norm1, norm2;
  std::vector<float> scale_shift_table;  // (6, H) main blocks only
  AttentionWeights attn;
  FeedForwardWeights ff;
};

struct LinearWeights {
  WeightMatrix weight;
  std::vector<float> bias;
};

struct ModelWeights {
  LinearWeights img_in;
  LinearWeights time_linear_1, time_linear_2, time_mod_proj;
  std::vector<BlockWeights> layerwise_blocks, refiner_blocks;
  std::vector<float> projector;  // (1, num_text_layers)
  std::vector<float> txt_norm;
  LinearWeights txt_linear_1, txt_linear_2;
  std::vector<BlockWeights> blocks;
  std::vector<float> final_scale_shift_table;  // (2, H)
  std::vector<float> final_norm;
  LinearWeights final_linear;
};

// One parameter as the visitor presents it: its diffusers name, the shape the config implies, and where it
// goes.
struct ParamSlot {
  std::string name;
  Shape shape;
  WeightMatrix* matrix = nullptr;        // set for 2-D weights of Linear layers
  std::vector<float>* vector = nullptr;  // set for everything else
};

// Calls f(ParamSlot&) for every parameter the config implies, in checkpoint order. Sizes the block vectors
// first.
template <class F>
void visit_weights(ModelWeights& w, const Config& c, F&& f) {
  const int64_t H = c.hidden(), Dt = c.text_hidden_dim;
  auto matrix = [&](const std::string& name, int64_t out, int64_t in, WeightMatrix& m) {
    ParamSlot s{name, {out, in}, &m, nullptr};
    f(s);
  };
  auto vector = [&](const std::string& name, Shape shape, std::vector<float>& v) {
    ParamSlot s{name, std::move(shape), nullptr, &v};
    f(s);
  };
  auto linear = [&](const std::string& name, int64_t out, int64_t in, LinearWeights& l, bool bias) {
    matrix(name + ".weight", out, in, l.weight);
    if (bias) vector(name + ".bias", {out}, l.bias);
  };
  auto block = [&](const std::string& p, BlockWeights& b, int64_t D, int64_t Dkv, int64_t hd, int64_t F_,
                   bool modulated) {
    if (modulated) vector(p + "scale_shift_table", {6, D}, b.scale_shift_table);
    vector(p + "norm1.weight", {D}, b.norm1);
    vector(p + "norm2.weight", {D}, b.norm2);
    matrix(p + "attn.to_q.weight", D, D, b.attn.to_q);
    matrix(p + "attn.to_k.weight", Dkv, D, b.attn.to_k);
    matrix(p + "attn.to_v.weight", Dkv, D, b.attn.to_v);
    matrix(p + "attn.to_gate.weight", D, D, b.attn.to_gate);
    vector(p + "attn.norm_q.weight", {hd}, b.attn.norm_q);
    vector(p + "attn.norm_k.weight", {hd}, b.attn.norm_k);
    matrix(p + "attn.to_out.0.weight", D, D, b.attn.to_out);
    matrix(p + "ff.gate.weight", F_, D, b.ff.gate);
    matrix(p + "ff.up.weight", F_, D, b.ff.up);
    matrix(p + "ff.down.weight", D, F_, b.ff.down);
  };

  linear("img_in", H, c.in_channels, w.img_in, true);
  linear("time_embed.linear_1", H, c.timestep_embed_dim, w.time_linear_1, true);
  linear("time_embed.linear_2", H, H, w.time_linear_2, true);
  linear("time_mod_proj", 6 * H, H, w.time_mod_proj, true);
  w.layerwise_blocks.resize(size_t(c.num_layerwise_text_blocks));
  w.refiner_blocks.resize(size_t(c.num_refiner_text_blocks));
  for (size_t i = 0; i < w.layerwise_blocks.size(); ++i)
    block("text_fusion.layerwise_blocks." + std::to_string(i) + ".", w.layerwise_blocks[i], Dt,
          c.text_kv_hidden(), c.text_head_dim(), c.text_intermediate_size, false);
  for (size_t i = 0; i < w.refiner_blocks.size(); ++i)
    block("text_fusion.refiner_blocks." + std::to_string(i) + ".", w.refiner_blocks[i], Dt,
          c.text_kv_hidden(), c.text_head_dim(), c.text_intermediate_size, false);
  vector("text_fusion.projector.weight", {1, c.num_text_layers}, w.projector);
  vector("txt_in.norm.weight", {Dt}, w.txt_norm);
  linear("txt_in.linear_1", H, Dt, w.txt_linear_1, true);
  linear("txt_in.linear_2", H, H, w.txt_linear_2, true);
  w.blocks.resize(size_t(c.num_layers));
  for (size_t i = 0; i < w.blocks.size(); ++i)
    block("transformer_blocks." + std::to_string(i) + ".", w.blocks[i], H, c.kv_hidden(),
          c.attention_head_dim, c.intermediate_size, true);
  vector("final_layer.scale_shift_table", {2, H}, w.final_scale_shift_table);
  vector("final_layer.norm.weight", {H}, w.final_norm);
  linear("final_layer.linear", c.in_channels, H, w.final_linear, true);
}

}  // namespace krea2
