// The Krea2Pipeline denoising loop: pack the noise, build the schedule and position ids, encode each text
// once, then per step predict the velocity (with guidance: cond and uncond, batched or in two passes),
// combine, and take an Euler step.
#include <algorithm>
#include <chrono>
#include <string>

#include "krea2/error.h"
#include "krea2/sampler.h"
#include "sampler/step_math.h"

namespace krea2 {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

void check_embeddings(const TextEmbeddings& text, const Config& config, int64_t batch, const char* what) {
  const Shape& s = text.embeds.shape;
  if (s.size() != 4 || s[2] != config.num_text_layers || s[3] != config.text_hidden_dim) {
    throw Error(std::string(what) + " embeddings must be (B, L, " + std::to_string(config.num_text_layers) +
                ", " + std::to_string(config.text_hidden_dim) + "), got " + shape_str(s));
  }
  if (s[0] != batch) {
    throw Error(std::string(what) + " embeddings have batch " + std::to_string(s[0]) +
                " but the noise has batch " + std::to_string(batch));
  }
  if (s[1] < 1) throw Error(std::string(what) + " embeddings have no tokens");
  if (text.mask && text.mask->shape != Shape{s[0], s[1]}) {
    throw Error(std::string(what) + " mask must be " + shape_str({s[0], s[1]}) + ", got " +
                shape_str(text.mask->shape));
  }
}

// Concatenates two tensors along the first axis (their other axes must agree).
Tensor concat_batch(const Tensor& a, const Tensor& b) {
  Shape shape = a.shape;
  shape[0] += b.shape[0];
  Tensor out(shape);
  std::copy(a.data.begin(), a.data.end(), out.data.begin());
  std::copy(b.data.begin(), b.data.end(), out.data.begin() + a.numel());
  return out;
}

Tensor ones(const Shape& shape) {
  return Tensor(shape, std::vector<float>(size_t(shape_numel(shape)), 1.0f));
}

Tensor filled(int64_t n, float value) {
  return Tensor({n}, std::vector<float>(size_t(n), value));
}

// Produces the transformer's velocity for the current latents; hides the text caching and the guidance
// layout.
class VelocityFn {
 public:
  VelocityFn(const Model& model, const TextEmbeddings& prompt, const TextEmbeddings* negative,
             const Tensor& image_pos, const GenerateOptions& options, double* text_seconds)
      : model_(model), prompt_(prompt), negative_(negative), image_pos_(image_pos), options_(options) {
    fwd_ = options.forward;
    fwd_.trace = nullptr;  // one trace per step would only overwrite itself
    if (options.recompute_text) return;
    auto start = Clock::now();
    cond_ = model.encode_text(prompt.embeds, prompt.mask, text_positions(prompt), fwd_);
    if (negative_) {
      uncond_ = model.encode_text(negative->embeds, negative->mask, text_positions(*negative), fwd_);
      if (options.cfg_mode == CfgMode::kBatched) both_ = TextContext::concat(cond_, uncond_);
    }
    *text_seconds = seconds_since(start);
  }

  // The guided velocity (B, N, C) at flow time t.
  Tensor operator()(const Tensor& x, float t) const {
    const int64_t batch = x.dim(0);
    if (!negative_) return predict(false, x, filled(batch, t));
    Tensor cond, uncond;
    if (options_.cfg_mode == CfgMode::kBatched && can_batch()) {
      Tensor both = predict_both(concat_batch(x, x), filled(2 * batch, t));
      const int64_t half = both.numel() / 2;
      cond = Tensor(x.shape, std::vector<float>(both.data.begin(), both.data.begin() + half));
      uncond = Tensor(x.shape, std::vector<float>(both.data.begin() + half, both.data.end()));
    } else {
      cond = predict(false, x, filled(batch, t));
      uncond = predict(true, x, filled(batch, t));
    }
    sampler::combine_guidance(cond.ptr(), uncond.ptr(), size_t(cond.numel()),
                              static_cast<float>(options_.guidance));
    return cond;
  }

 private:
  static Tensor text_positions(const TextEmbeddings& text) { return Tensor({text.embeds.dim(1), 3}); }

  // The uncached path concatenates raw embeddings, which needs equal text lengths; otherwise it runs two
  // passes.
  bool can_batch() const {
    return !options_.recompute_text || prompt_.embeds.dim(1) == negative_->embeds.dim(1);
  }

  Tensor predict(bool use_negative, const Tensor& x, const Tensor& t) const {
    if (!options_.recompute_text)
      return model_.predict(use_negative ? uncond_ : cond_, x, t, image_pos_, fwd_);
    const TextEmbeddings& text = use_negative ? *negative_ : prompt_;
    return forward(text.embeds, text.mask, x, t);
  }

  Tensor predict_both(const Tensor& x2, const Tensor& t2) const {
    if (!options_.recompute_text) return model_.predict(both_, x2, t2, image_pos_, fwd_);
    std::optional<Tensor> mask;
    if (prompt_.mask || negative_->mask) {
      mask = concat_batch(
          prompt_.mask ? *prompt_.mask : ones({prompt_.embeds.dim(0), prompt_.embeds.dim(1)}),
          negative_->mask ? *negative_->mask : ones({negative_->embeds.dim(0), negative_->embeds.dim(1)}));
    }
    return forward(concat_batch(prompt_.embeds, negative_->embeds), mask, x2, t2);
  }

  Tensor forward(const Tensor& embeds, const std::optional<Tensor>& mask, const Tensor& x,
                 const Tensor& t) const {
    ForwardInputs in;
    in.hidden_states = x;
    in.encoder_hidden_states = embeds;
    in.timestep = t;
    in.position_ids = concat_batch(Tensor({embeds.dim(1), 3}), image_pos_);
    in.encoder_attention_mask = mask;
    return model_.forward(in, fwd_);
  }

  const Model& model_;
  const TextEmbeddings& prompt_;
  const TextEmbeddings* negative_;
  const Tensor& image_pos_;
  const GenerateOptions& options_;
  ForwardOptions fwd_;
  TextContext cond_, uncond_, both_;
};

}  // namespace

GenerateResult generate(const Model& model, const TextEmbeddings& prompt, const TextEmbeddings* negative,
                        const Tensor& noise, const GenerateOptions& options) {
  const Config& config = model.config();
  const int64_t channels = config.in_channels / 4;
  if (config.in_channels % 4 != 0) throw Error("in_channels must be a multiple of 4 for 2x2 packing");
  if (noise.shape.size() != 4 || noise.dim(1) != channels) {
    throw Error("noise must be (B, " + std::to_string(channels) + ", h, w), got " + shape_str(noise.shape));
  }
  const LatentSize size{noise.dim(2), noise.dim(3)};
  check_latent_size(size);
  const int64_t batch = noise.dim(0);
  if (batch < 1) throw Error("noise has batch 0");
  check_embeddings(prompt, config, batch, "prompt");
  if (!(options.guidance >= 0.0)) throw Error("guidance must be >= 0 (0 disables it)");
  const bool guided = options.guidance > 0.0;
  if (guided) {
    if (!negative) throw Error("guidance > 0 needs negative prompt embeddings");
    check_embeddings(*negative, config, batch, "negative prompt");
  }

  GenerateResult result;
  result.schedule = make_schedule(options.schedule, size.tokens());
  result.position_ids = make_position_ids(prompt.embeds.dim(1), size);
  const Tensor image_pos = make_image_position_ids(size);
  const Schedule& schedule = result.schedule;

  VelocityFn velocity(model, prompt, guided ? negative : nullptr, image_pos, options, &result.text_seconds);
  Tensor x = pack_latents(noise);
  for (int i = 0; i < schedule.steps(); ++i) {
    auto start = Clock::now();
    Tensor v = velocity(x, schedule.transformer_timestep(i));
    if (v.shape != x.shape) {
      throw Error("the transformer returned " + shape_str(v.shape) + " for latents " + shape_str(x.shape));
    }
    const float sigma = schedule.sigmas[size_t(i)], sigma_next = schedule.sigmas[size_t(i) + 1];
    sampler::euler_step(x.ptr(), v.ptr(), size_t(x.numel()), sigma, sigma_next);
    if (options.keep_step_latents) result.step_latents.push_back(x);
    const double seconds = seconds_since(start);
    result.step_seconds.push_back(seconds);
    if (options.on_step) options.on_step({i, schedule.steps(), sigma, sigma_next, seconds});
  }
  result.latents_unpacked = unpack_latents(x, size);
  result.latents = std::move(x);
  return result;
}

}  // namespace krea2
