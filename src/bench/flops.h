// Analytic FLOP counts of the Krea 2 forward, for `krea2 bench` (GFLOP/s, % of peak) and its tests.
//
// Convention: 2 FLOPs per multiply-add of every matrix product, attention's QK^T and PV included;
// element-wise work (norms, rope, softmax, activations, residuals) is not counted. Per sample, with L text
// tokens, N image tokens, S = L + N, D = hidden, Dkv = kv hidden, F = ffn, H = D, C = in_channels, E =
// timestep_embed_dim:
//   main block       2 S (D*D [q] + 2 D*Dkv [k, v] + D*D [gate] + D*D [out] + 3 D*F [gate, up, down]) + 4 S^2
//   D text layerwise   per token, nl rows of width Dt (text kv Dtkv, ffn Ft):
//                    2 nl (2 Dt*Dt + 2 Dt*Dtkv + Dt*Dt + 3 Dt*Ft) + 4 nl^2 Dt
//   text refiner     the same with L rows instead of nl, once per sample
//   projector        2 L nl Dt;   txt_in  2 L (Dt*H + H*H);   img_in  2 N C H
//   timestep path    2 (E*H + H*H + H*6H);   final layer  2 N H C
// Attention's 4 S^2 D is QK^T (2 S^2 hd per head) plus PV (the same), times the query heads.
#pragma once
#include <cstdint>

#include "krea2/config.h"
#include "krea2/text_encoder.h"

namespace krea2 {

// FLOPs of one forward, split the way `krea2 bench` reports stages. Doubles: the real model is ~1e14 per
// step.
struct FlopCount {
  double text_linear = 0;     // matrix products inside the layerwise + refiner blocks
  double text_attention = 0;  // QK^T + PV of the layerwise + refiner blocks
  double text_other = 0;      // projector + txt_in
  double timestep = 0;        // time_embed linears + time_mod_proj
  double img_in = 0;
  double blocks_linear = 0;     // q, k, v, gate, out, ff of the main blocks
  double blocks_attention = 0;  // QK^T + PV of the main blocks
  double final_layer = 0;

  double text() const { return text_linear + text_attention + text_other; }  // Model::encode_text
  double predict() const { return timestep + img_in + blocks_linear + blocks_attention + final_layer; }
  double total() const { return text() + predict(); }
};

// One forward of `batch` samples, each with `text_tokens` (all valid) text and `image_tokens` image tokens.
FlopCount forward_flops(const Config& config, int64_t batch, int64_t image_tokens, int64_t text_tokens);

// Attention alone over one sequence of `seq` rows: QK^T + PV = 4 seq^2 head_dim heads.
double attention_flops(int64_t seq, int64_t heads, int64_t head_dim);

// The text encoder over one sample of `tokens` rows through `layers` decoder layers (D = hidden, Q = heads x
// head_dim, KV = kv heads x head_dim, I = intermediate):
//   per layer  2 S (D*Q [q] + 2 D*KV [k, v] + Q*D [o] + 3 D*I [gate, up, down]) + 2 S (S + 1) Q
// the causal attention's QK^T and PV over the S (S + 1) / 2 visible (query, key) pairs.
struct TextEncoderFlops {
  double linear = 0;
  double attention = 0;
  double total() const { return linear + attention; }
};
TextEncoderFlops text_encoder_flops(const TextEncoderConfig& config, int64_t layers, int64_t tokens);

}  // namespace krea2
