// The Krea 2 forward: timestep embedding, text path (fusion + txt_in), [text, image] blocks, final layer.
// Rows of all samples are packed one after another ("ragged batch"): sample s owns [text_s, image_s].
#include <omp.h>

#include <cmath>
#include <cstring>
#include <sstream>

#include "krea2/model.h"
#include "lora/lora_state.h"
#include "model/block.h"
#include "model/model_impl.h"
#include "ops/gemm.h"
#include "ops/activations.h"
#include "ops/norm.h"

namespace krea2 {

namespace {

void expect_shape(const Tensor& t, const Shape& shape, const char* name) {
  if (t.shape != shape)
    throw Error(std::string("input '") + name + "': expected shape " + shape_str(shape) + ", found " +
                shape_str(t.shape));
}

void expect_rank(const Tensor& t, size_t rank, const char* name, const char* layout) {
  if (t.shape.size() != rank)
    throw Error(std::string("input '") + name + "': expected " + std::to_string(rank) + " dims " + layout +
                ", found shape " + shape_str(t.shape));
}

void check_finite(const Tensor& t, const char* name) {
  for (float v : t.data)
    if (!std::isfinite(v)) throw Error(std::string("input '") + name + "' holds a NaN or infinity");
}

BlockDims text_dims(const Config& c) {
  BlockDims d;
  d.width = c.text_hidden_dim;
  d.kv_width = c.text_kv_hidden();
  d.ff = c.text_intermediate_size;
  d.heads = {c.text_num_attention_heads, c.text_num_key_value_heads, int(c.text_head_dim())};
  d.eps = float(c.norm_eps);
  return d;
}

BlockDims main_dims(const Config& c) {
  BlockDims d;
  d.width = c.hidden();
  d.kv_width = c.kv_hidden();
  d.ff = c.intermediate_size;
  d.heads = {c.num_attention_heads, c.num_key_value_heads, c.attention_head_dim};
  d.eps = float(c.norm_eps);
  return d;
}

// Activation buffers live as long as the thread: a sampler's next step reuses them instead of page-faulting
// hundreds of MB of fresh allocations at every call.
Workspace& thread_workspace() {
  thread_local Workspace ws;
  return ws;
}

// Sinusoidal embedding of 1000 t, cos half first; f_i, 1000 t and the angles rounded to float32 as upstream.
std::vector<float> timestep_features(const Tensor& timestep, int dim) {
  const int half = dim / 2;
  const int64_t B = timestep.numel();
  std::vector<float> e(size_t(B * dim));
  const float neg_log = float(-std::log(10000.0));
  for (int64_t b = 0; b < B; ++b) {
    const float t1000 = timestep.data[size_t(b)] * 1000.0f;
    for (int i = 0; i < half; ++i) {
      const float exponent = (neg_log * float(i)) / float(half);
      const float angle = t1000 * std::exp(exponent);
      e[size_t(b * dim + i)] = float(std::cos(double(angle)));
      e[size_t(b * dim + half + i)] = float(std::sin(double(angle)));
    }
  }
  return e;
}

// (rows, in) -> (rows, out) through a LinearWeights.
std::vector<float> apply_linear(const LinearWeights& l, const float* x, int64_t rows,
                                LinearScratch& scratch) {
  std::vector<float> y(size_t(rows * l.weight.rows));
  linear(x, rows, l.weight.cols, l.weight, l.bias.empty() ? nullptr : l.bias.data(), y.data(), l.weight.rows,
         scratch);
  return y;
}

void record(std::map<std::string, Tensor>* trace, const std::string& name, Shape shape, const float* data) {
  if (!trace) return;
  Tensor t(std::move(shape));
  std::memcpy(t.data.data(), data, t.data.size() * sizeof(float));
  (*trace)[name] = std::move(t);
}

// Scatters packed text rows back to (B, L, width) (zeros where a token was dropped).
Tensor scatter_text(const TextContext& text, const float* rows, int64_t ld, int64_t width,
                    const std::vector<int64_t>& sample_row0) {
  Tensor out({text.batch, text.text_len, width});
  int64_t r = 0;
  for (int64_t s = 0; s < text.batch; ++s)
    for (int64_t j = 0; j < text.lengths[size_t(s)]; ++j, ++r)
      std::memcpy(out.ptr() + (s * text.text_len + text.token_index[size_t(r)]) * width,
                  rows + (sample_row0[size_t(s)] + j) * ld, size_t(width) * sizeof(float));
  return out;
}

}  // namespace

TextContext Model::encode_text(const Tensor& encoder_hidden_states, const std::optional<Tensor>& mask,
                               const Tensor& text_positions, const ForwardOptions& options) const {
  const GemmComputeScope compute(impl_->compute);
  const WeightDeltaScaleScope lora_scale(options.lora_scale);
  const Config& c = impl_->config;
  ModelWeights rescaled;  // used only when adapter vectors need another scale
  const ModelWeights& w = lora_call_weights(*impl_, options.lora_scale, rescaled);
  StageTimer total(options.times, "text_fusion");
  expect_rank(encoder_hidden_states, 4, "encoder_hidden_states", "(B, L, num_text_layers, text_hidden_dim)");
  const int64_t B = encoder_hidden_states.dim(0), L = encoder_hidden_states.dim(1);
  const int64_t nl = c.num_text_layers, Dt = c.text_hidden_dim, H = c.hidden();
  expect_shape(encoder_hidden_states, {B, L, nl, Dt}, "encoder_hidden_states");
  check_finite(encoder_hidden_states, "encoder_hidden_states");
  if (mask) expect_shape(*mask, {B, L}, "encoder_attention_mask");
  if (text_positions.numel() != 0) expect_shape(text_positions, {L, 3}, "position_ids (text rows)");

  TextContext ctx;
  ctx.batch = B;
  ctx.text_len = L;
  const bool drop = options.skip_padded_text && mask.has_value();
  for (int64_t s = 0; s < B; ++s) {
    int64_t kept = 0;
    for (int64_t j = 0; j < L; ++j) {
      const bool valid = !mask || mask->data[size_t(s * L + j)] != 0.0f;
      if (drop && !valid) continue;
      ctx.token_index.push_back(j);
      ctx.key_valid.push_back(valid ? 1 : 0);
      ++kept;
    }
    ctx.lengths.push_back(kept);
  }
  const int64_t T = int64_t(ctx.token_index.size());
  std::vector<int64_t> sample_row0(size_t(B + 1), 0);
  for (int64_t s = 0; s < B; ++s)
    sample_row0[size_t(s + 1)] = sample_row0[size_t(s)] + ctx.lengths[size_t(s)];

  // Layerwise blocks: each token's nl tapped layers form one short sequence.
  Workspace& ws = thread_workspace();
  ws.times = options.times;
  float* x = sized(ws.x, T * nl * Dt);  // every row written below
  for (int64_t s = 0, r = 0; s < B; ++s)
    for (int64_t j = 0; j < ctx.lengths[size_t(s)]; ++j, ++r)
      std::memcpy(x + r * nl * Dt,
                  encoder_hidden_states.ptr() + (s * L + ctx.token_index[size_t(r)]) * nl * Dt,
                  size_t(nl * Dt) * sizeof(float));
  const BlockDims td = text_dims(c);
  std::vector<Segment> layer_segments(static_cast<size_t>(T));
  for (int64_t r = 0; r < T; ++r) layer_segments[size_t(r)] = {r * nl, nl};
  for (size_t i = 0; i < w.layerwise_blocks.size(); ++i) {
    run_block(w.layerwise_blocks[i], td, x, T * nl, layer_segments, nullptr, nullptr, nullptr, ws);
    if (options.progress)
      options.progress("text", int(i + 1), int(w.layerwise_blocks.size() + w.refiner_blocks.size()));
  }

  // Projector Linear(nl -> 1) over the layer axis.
  std::vector<float> y(size_t(T * Dt), 0.0f);
  for (int64_t r = 0; r < T; ++r)
    for (int64_t n = 0; n < nl; ++n) {
      const float p = w.projector[size_t(n)];
      const float* src = x + (r * nl + n) * Dt;
      float* dst = y.data() + r * Dt;
      for (int64_t i = 0; i < Dt; ++i) dst[i] += p * src[i];
    }

  // Refiner blocks across the tokens of each sample, padded tokens masked as keys.
  std::vector<Segment> token_segments;
  for (int64_t s = 0; s < B; ++s) token_segments.push_back({sample_row0[size_t(s)], ctx.lengths[size_t(s)]});
  bool any_invalid = false;
  for (uint8_t v : ctx.key_valid) any_invalid |= v == 0;
  const uint8_t* key_valid = any_invalid ? ctx.key_valid.data() : nullptr;
  for (size_t i = 0; i < w.refiner_blocks.size(); ++i) {
    run_block(w.refiner_blocks[i], td, y.data(), T, token_segments, key_valid, nullptr, nullptr, ws);
    if (options.progress)
      options.progress("text", int(w.layerwise_blocks.size() + i + 1),
                       int(w.layerwise_blocks.size() + w.refiner_blocks.size()));
  }
  if (options.trace) (*options.trace)["text_fusion"] = scatter_text(ctx, y.data(), Dt, Dt, sample_row0);

  // txt_in: RMSNorm -> linear_1 -> gelu_tanh -> linear_2.
  rms_norm(y.data(), T, Dt, Dt, w.txt_norm.data(), float(c.norm_eps), y.data(), Dt);
  std::vector<float> t1 = apply_linear(w.txt_linear_1, y.data(), T, ws.scratch);
  gelu_tanh_inplace(t1.data(), int64_t(t1.size()));
  ctx.rows = Tensor({T, H}, apply_linear(w.txt_linear_2, t1.data(), T, ws.scratch));
  if (options.trace) (*options.trace)["txt_in"] = scatter_text(ctx, ctx.rows.ptr(), H, H, sample_row0);

  ctx.positions = Tensor({T, 3});
  if (text_positions.numel() != 0)
    for (int64_t r = 0; r < T; ++r)
      std::memcpy(ctx.positions.ptr() + 3 * r, text_positions.ptr() + 3 * ctx.token_index[size_t(r)],
                  3 * sizeof(float));
  return ctx;
}

Tensor Model::predict(const TextContext& text, const Tensor& hidden_states, const Tensor& timestep,
                      const Tensor& image_positions, const ForwardOptions& options) const {
  const GemmComputeScope compute(impl_->compute);
  const WeightDeltaScaleScope lora_scale(options.lora_scale);
  const Config& c = impl_->config;
  ModelWeights rescaled;  // used only when adapter vectors need another scale
  const ModelWeights& w = lora_call_weights(*impl_, options.lora_scale, rescaled);
  const int64_t B = text.batch, H = c.hidden(), C = c.in_channels;
  expect_rank(hidden_states, 3, "hidden_states", "(B, N, in_channels)");
  const int64_t N = hidden_states.dim(1);
  expect_shape(hidden_states, {B, N, C}, "hidden_states");
  expect_shape(timestep, {B}, "timestep");
  expect_shape(image_positions, {N, 3}, "position_ids (image rows)");
  check_finite(hidden_states, "hidden_states");
  check_finite(timestep, "timestep");
  Workspace& ws = thread_workspace();
  ws.times = options.times;

  // Timestep path: temb (B, H) and the shared modulation temb_mod (B, 6H).
  std::vector<float> temb, temb_mod;
  {
    StageTimer t(options.times, "timestep");
    std::vector<float> e = timestep_features(timestep, c.timestep_embed_dim);
    std::vector<float> h1 = apply_linear(w.time_linear_1, e.data(), B, ws.scratch);
    gelu_tanh_inplace(h1.data(), int64_t(h1.size()));
    temb = apply_linear(w.time_linear_2, h1.data(), B, ws.scratch);
    std::vector<float> act = temb;
    gelu_tanh_inplace(act.data(), int64_t(act.size()));
    temb_mod = apply_linear(w.time_mod_proj, act.data(), B, ws.scratch);
  }
  record(options.trace, "time_embed", {B, 1, H}, temb.data());
  record(options.trace, "time_mod_proj", {B, 1, 6 * H}, temb_mod.data());

  // Pack [text_s, image_s] for every sample.
  Modulation mod;
  mod.temb_mod = temb_mod.data();
  mod.row_begin.assign(size_t(B + 1), 0);
  for (int64_t s = 0; s < B; ++s)
    mod.row_begin[size_t(s + 1)] = mod.row_begin[size_t(s)] + text.lengths[size_t(s)] + N;
  const int64_t R = mod.row_begin[size_t(B)];
  float* x = sized(ws.x, R * H);  // every row written below: text rows copied, image rows by img_in
  std::vector<float> positions(size_t(R * 3));
  std::vector<uint8_t> key_valid(size_t(R), 1);
  bool any_invalid = false;
  {
    StageTimer t(options.times, "gemm_embed");
    int64_t text_row = 0;
    for (int64_t s = 0; s < B; ++s) {
      const int64_t r0 = mod.row_begin[size_t(s)], Ls = text.lengths[size_t(s)];
      std::memcpy(x + r0 * H, text.rows.ptr() + text_row * H, size_t(Ls * H) * sizeof(float));
      std::memcpy(positions.data() + r0 * 3, text.positions.ptr() + text_row * 3,
                  size_t(Ls * 3) * sizeof(float));
      for (int64_t j = 0; j < Ls; ++j) {
        key_valid[size_t(r0 + j)] = text.key_valid[size_t(text_row + j)];
        any_invalid |= key_valid[size_t(r0 + j)] == 0;
      }
      std::memcpy(positions.data() + (r0 + Ls) * 3, image_positions.ptr(), size_t(N * 3) * sizeof(float));
      linear(hidden_states.ptr() + s * N * C, N, C, w.img_in.weight, w.img_in.bias.data(), x + (r0 + Ls) * H,
             H, ws.scratch);
      text_row += Ls;
    }
  }
  if (options.trace) {
    Tensor img({B, N, H});
    for (int64_t s = 0; s < B; ++s)
      std::memcpy(img.ptr() + s * N * H, x + (mod.row_begin[size_t(s)] + text.lengths[size_t(s)]) * H,
                  size_t(N * H) * sizeof(float));
    (*options.trace)["img_in"] = std::move(img);
  }

  const RopeTable rope = make_rope_table(positions.data(), R, c.axes_dims_rope, c.rope_theta);
  std::vector<Segment> segments;
  for (int64_t s = 0; s < B; ++s)
    segments.push_back({mod.row_begin[size_t(s)], mod.row_begin[size_t(s + 1)] - mod.row_begin[size_t(s)]});
  const BlockDims md = main_dims(c);
  for (size_t i = 0; i < w.blocks.size(); ++i) {
    run_block(w.blocks[i], md, x, R, segments, any_invalid ? key_valid.data() : nullptr, &rope, &mod, ws);
    if (options.trace) {
      // (B, L + N, H) with text rows at their original token index.
      const int64_t L = text.text_len;
      Tensor t({B, L + N, H});
      int64_t text_row = 0;
      for (int64_t s = 0; s < B; ++s) {
        const int64_t r0 = mod.row_begin[size_t(s)], Ls = text.lengths[size_t(s)];
        for (int64_t j = 0; j < Ls; ++j)
          std::memcpy(t.ptr() + (s * (L + N) + text.token_index[size_t(text_row + j)]) * H, x + (r0 + j) * H,
                      size_t(H) * sizeof(float));
        std::memcpy(t.ptr() + (s * (L + N) + L) * H, x + (r0 + Ls) * H, size_t(N * H) * sizeof(float));
        text_row += Ls;
      }
      (*options.trace)["transformer_blocks." + std::to_string(i)] = std::move(t);
    }
    if (options.progress) options.progress("blocks", int(i + 1), int(w.blocks.size()));
  }

  // Final layer on the image rows: (1 + temb + table[0]) * RMSNorm(x) + (temb + table[1]), then linear.
  Tensor out({B, N, C});
  {
    StageTimer t(options.times, "final_layer");
    std::vector<float>& h = ws.h;  // the blocks are done with it
    h.resize(size_t(B * N * H));
    std::vector<float> scale(static_cast<size_t>(H)), shift(static_cast<size_t>(H));
    for (int64_t s = 0; s < B; ++s) {
      for (int64_t i = 0; i < H; ++i) {
        scale[size_t(i)] = temb[size_t(s * H + i)] + w.final_scale_shift_table[size_t(i)];
        shift[size_t(i)] = temb[size_t(s * H + i)] + w.final_scale_shift_table[size_t(H + i)];
      }
      const int64_t img0 = mod.row_begin[size_t(s)] + text.lengths[size_t(s)];
      rms_norm(x + img0 * H, N, H, H, w.final_norm.data(), float(c.norm_eps), h.data() + s * N * H, H,
               scale.data(), shift.data());
    }
    linear(h.data(), B * N, H, w.final_linear.weight, w.final_linear.bias.data(), out.ptr(), C, ws.scratch);
  }
  record(options.trace, "final_layer", out.shape, out.ptr());
  return out;
}

Tensor Model::forward(const ForwardInputs& in, const ForwardOptions& options) const {
  const Config& c = impl_->config;
  expect_rank(in.encoder_hidden_states, 4, "encoder_hidden_states",
              "(B, L, num_text_layers, text_hidden_dim)");
  expect_rank(in.hidden_states, 3, "hidden_states", "(B, N, in_channels)");
  const int64_t B = in.encoder_hidden_states.dim(0), L = in.encoder_hidden_states.dim(1);
  const int64_t N = in.hidden_states.dim(1);
  if (in.hidden_states.dim(0) != B)
    throw Error("input 'hidden_states': batch " + std::to_string(in.hidden_states.dim(0)) +
                " differs from encoder_hidden_states batch " + std::to_string(B));
  expect_shape(in.position_ids, {L + N, 3}, "position_ids");
  check_finite(in.position_ids, "position_ids");
  Tensor text_pos({L, 3}), image_pos({N, 3});
  std::memcpy(text_pos.ptr(), in.position_ids.ptr(), size_t(L * 3) * sizeof(float));
  std::memcpy(image_pos.ptr(), in.position_ids.ptr() + L * 3, size_t(N * 3) * sizeof(float));
  if (options.trace) {
    const RopeTable rope = make_rope_table(in.position_ids.ptr(), L + N, c.axes_dims_rope, c.rope_theta);
    Tensor cs({L + N, 2 * rope.half}), sn({L + N, 2 * rope.half});
    for (int64_t r = 0; r < L + N; ++r)
      for (int64_t k = 0; k < 2 * rope.half; ++k) {
        cs.data[size_t(r * 2 * rope.half + k)] = rope.cos[size_t(r * rope.half + k / 2)];
        sn.data[size_t(r * 2 * rope.half + k)] = rope.sin[size_t(r * rope.half + k / 2)];
      }
    (*options.trace)["rotary_emb.cos"] = std::move(cs);
    (*options.trace)["rotary_emb.sin"] = std::move(sn);
  }
  TextContext text = encode_text(in.encoder_hidden_states, in.encoder_attention_mask, text_pos, options);
  return predict(text, in.hidden_states, in.timestep, image_pos, options);
}

}  // namespace krea2
