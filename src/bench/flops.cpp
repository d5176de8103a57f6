#include "bench/flops.h"

namespace krea2 {

namespace {

// One transformer block over `rows` rows split into attention segments of `seq` rows each.
struct BlockFlops {
  double linear = 0, attention = 0;
};

BlockFlops block_flops(double rows, double seq, double D, double Dkv, double F, double attn_width) {
  BlockFlops f;
  f.linear = 2.0 * rows * (D * D + 2.0 * D * Dkv + D * D + D * D + 3.0 * D * F);
  // Every row is a query against the `seq` keys of its segment, once for QK^T and once for PV.
  f.attention = 4.0 * rows * seq * attn_width;
  return f;
}

}  // namespace

double attention_flops(int64_t seq, int64_t heads, int64_t head_dim) {
  return 4.0 * double(seq) * double(seq) * double(head_dim) * double(heads);
}

FlopCount forward_flops(const Config& c, int64_t batch, int64_t image_tokens, int64_t text_tokens) {
  const double B = double(batch), N = double(image_tokens), L = double(text_tokens);
  const double H = double(c.hidden()), C = double(c.in_channels), E = double(c.timestep_embed_dim);
  const double nl = double(c.num_text_layers), Dt = double(c.text_hidden_dim);
  const double text_attn_width = double(c.text_head_dim()) * c.text_num_attention_heads;
  FlopCount f;

  // Layerwise blocks: every text token is its own sequence of nl rows.
  const BlockFlops layerwise =
      block_flops(B * L * nl, nl, Dt, double(c.text_kv_hidden()), c.text_intermediate_size, text_attn_width);
  // Refiner blocks: one sequence of L rows per sample.
  const BlockFlops refiner =
      block_flops(B * L, L, Dt, double(c.text_kv_hidden()), c.text_intermediate_size, text_attn_width);
  f.text_linear = c.num_layerwise_text_blocks * layerwise.linear + c.num_refiner_text_blocks * refiner.linear;
  f.text_attention =
      c.num_layerwise_text_blocks * layerwise.attention + c.num_refiner_text_blocks * refiner.attention;
  f.text_other = 2.0 * B * L * nl * Dt + 2.0 * B * L * (Dt * H + H * H);

  f.timestep = 2.0 * B * (E * H + H * H + H * 6.0 * H);
  f.img_in = 2.0 * B * N * C * H;
  // Main blocks: one sequence of L + N rows per sample; attention width = heads * head_dim = H.
  const BlockFlops block = block_flops(B * (L + N), L + N, H, double(c.kv_hidden()), c.intermediate_size, H);
  f.blocks_linear = c.num_layers * block.linear;
  f.blocks_attention = c.num_layers * block.attention;
  f.final_layer = 2.0 * B * N * H * C;
  return f;
}

TextEncoderFlops text_encoder_flops(const TextEncoderConfig& c, int64_t layers, int64_t tokens) {
  const double S = double(tokens), D = double(c.hidden_size), Q = double(c.num_heads * c.head_dim);
  const double KV = double(c.num_kv_heads * c.head_dim), I = double(c.intermediate_size);
  TextEncoderFlops f;
  f.linear = double(layers) * 2.0 * S * (D * Q + 2.0 * D * KV + Q * D + 3.0 * D * I);
  f.attention = double(layers) * 2.0 * S * (S + 1.0) * Q;
  return f;
}

}  // namespace krea2
