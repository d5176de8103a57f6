// The analytic FLOP count of `krea2 bench` against a brute-force count: every Linear of Model::parameters()
// times the rows it is applied to, plus attention counted query by query.
#include <gtest/gtest.h>

#include <string>

#include "bench/flops.h"
#include "krea2/model.h"

namespace krea2 {
namespace {

// A tiny config whose every size differs, so a swapped dimension changes the count.
Config tiny_config() {
  Config c;
  c.in_channels = 4;
  c.num_layers = 3;
  c.attention_head_dim = 8;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.intermediate_size = 40;
  c.timestep_embed_dim = 6;
  c.text_hidden_dim = 12;
  c.num_text_layers = 5;
  c.text_num_attention_heads = 3;
  c.text_num_key_value_heads = 1;
  c.text_intermediate_size = 20;
  c.num_layerwise_text_blocks = 2;
  c.num_refiner_text_blocks = 1;
  c.axes_dims_rope = {2, 2, 4};
  return c;
}

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.rfind(prefix, 0) == 0;
}

// Rows each parameter's Linear is applied to in one forward (B samples, L text, N image tokens); 0 if the
// parameter is not a Linear weight.
double linear_rows(const TensorView& p, const Config& c, double B, double N, double L) {
  const std::string& n = p.name;
  if (p.shape.size() != 2 || n.size() < 7 || n.substr(n.size() - 7) != ".weight") return 0;
  if (n.find("scale_shift_table") != std::string::npos) return 0;
  if (starts_with(n, "text_fusion.layerwise_blocks.")) return B * L * c.num_text_layers;
  if (starts_with(n, "text_fusion.refiner_blocks.")) return B * L;
  if (starts_with(n, "txt_in.")) return B * L;
  if (starts_with(n, "img_in.")) return B * N;
  if (starts_with(n, "time_embed.") || starts_with(n, "time_mod_proj.")) return B;
  if (starts_with(n, "transformer_blocks.")) return B * (L + N);
  if (starts_with(n, "final_layer.linear.")) return B * N;
  ADD_FAILURE() << "unclassified 2-D weight " << n;
  return 0;
}

// QK^T and PV of `segments` sequences of `seq` rows, counted one multiply-add at a time.
double brute_attention(int64_t segments, int64_t seq, int64_t heads, int64_t head_dim) {
  double madds = 0;
  for (int64_t s = 0; s < segments; ++s)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < seq; ++i)
        for (int64_t j = 0; j < seq; ++j) madds += 2.0 * double(head_dim);  // q.k and p * v
  return 2.0 * madds;
}

TEST(Flops, MatchesBruteForceCount) {
  const Config c = tiny_config();
  const Model model = Model::random(c, DType::F32, 1);
  for (int64_t B : {1, 2})
    for (auto [N, L] : {std::pair<int64_t, int64_t>{6, 3}, {16, 7}, {9, 1}}) {
      double linear = 0, projector = 0;
      for (const TensorView& p : model.parameters()) {
        if (p.name == "text_fusion.projector.weight") {
          // Linear(nl -> 1) over the layer axis of every (token, channel).
          projector = 2.0 * double(B * L * c.text_hidden_dim) * double(p.shape[0] * p.shape[1]);
          continue;
        }
        linear += 2.0 * linear_rows(p, c, double(B), double(N), double(L)) * double(p.shape[0] * p.shape[1]);
      }
      const double attention =
          (c.num_layerwise_text_blocks *
               brute_attention(B * L, c.num_text_layers, c.text_num_attention_heads, c.text_head_dim()) +
           c.num_refiner_text_blocks * brute_attention(B, L, c.text_num_attention_heads, c.text_head_dim()) +
           c.num_layers * brute_attention(B, L + N, c.num_attention_heads, c.attention_head_dim));

      const FlopCount f = forward_flops(c, B, N, L);
      EXPECT_DOUBLE_EQ(f.total(), linear + projector + attention) << "B=" << B << " N=" << N << " L=" << L;
      EXPECT_DOUBLE_EQ(f.text_attention + f.blocks_attention, attention);
      EXPECT_DOUBLE_EQ(f.text_other,
                       projector + 2.0 * B * L * (c.text_hidden_dim * c.hidden() + c.hidden() * c.hidden()));
      EXPECT_DOUBLE_EQ(f.img_in, 2.0 * B * N * c.in_channels * c.hidden());
      EXPECT_DOUBLE_EQ(f.final_layer, 2.0 * B * N * c.hidden() * c.in_channels);
    }
}

TEST(Flops, StagesAddUp) {
  const FlopCount f = forward_flops(Config{}, 2, 1024, 64);
  EXPECT_DOUBLE_EQ(f.total(), f.text_linear + f.text_attention + f.text_other + f.timestep + f.img_in +
                                  f.blocks_linear + f.blocks_attention + f.final_layer);
  EXPECT_DOUBLE_EQ(f.text() + f.predict(), f.total());
}

TEST(Flops, RealConfigMainBlock) {
  // One main block of the real model (D 6144, Dkv 1536, F 16384) over S = 1088 rows, by hand.
  Config c;
  c.num_layers = 1;
  const double S = 1088, D = 6144, Dkv = 1536, F = 16384;
  const FlopCount f = forward_flops(c, 1, 1024, 64);
  EXPECT_DOUBLE_EQ(f.blocks_linear, 2 * S * (3 * D * D + 2 * D * Dkv + 3 * D * F));
  EXPECT_DOUBLE_EQ(f.blocks_attention, 4 * S * S * D);
}

TEST(Flops, Attention) {
  EXPECT_DOUBLE_EQ(attention_flops(4608, 48, 128), 4.0 * 4608.0 * 4608.0 * 128.0 * 48.0);
  EXPECT_DOUBLE_EQ(attention_flops(10, 3, 4), brute_attention(1, 10, 3, 4));
}

TEST(Flops, TextEncoderByHand) {
  TextEncoderConfig c;  // Qwen3-VL-4B: D 2560, Q 4096, KV 1024, I 9728
  const TextEncoderFlops f = text_encoder_flops(c, 1, 546);
  EXPECT_DOUBLE_EQ(f.linear,
                   2.0 * 546 * (2560.0 * 4096 + 2 * 2560.0 * 1024 + 4096.0 * 2560 + 3 * 2560.0 * 9728));
  // Causal: query i sees i + 1 keys; 2 FLOPs per multiply-add in QK^T and in PV over 32 heads of 128.
  double pairs = 0;
  for (int i = 0; i < 546; ++i) pairs += i + 1;
  EXPECT_DOUBLE_EQ(f.attention, 4.0 * pairs * 4096);
  EXPECT_DOUBLE_EQ(text_encoder_flops(c, 35, 546).total(), 35 * f.total());
}

}  // namespace
}  // namespace krea2
