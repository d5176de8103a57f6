// Krea2Pipeline.__call__: encode, denoise, decode, with the components loaded on first use.
#include "krea2/pipeline.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <mutex>

#include "krea2/text_encoder.h"
#include "krea2/tokenizer.h"
#include "krea2/vae.h"

namespace krea2 {

struct PipelineImpl {
  PipelinePaths paths;
  PipelineOptions options;
  std::optional<Tokenizer> tokenizer;
  std::optional<TextEncoder> encoder;
  std::optional<Model> transformer;
  std::optional<Vae> vae;
  std::mutex mutex;  // one generate at a time
};

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

void report(const PipelineProgressFn& fn, const std::string& stage, const std::string& detail, int done,
            int total) {
  if (fn && !fn({stage, detail, done, total})) throw Cancelled();
}

int64_t batch_of(const PipelineRequest& r) {
  return r.prompt_embeds ? r.prompt_embeds->embeds.shape.at(0)
                         : int64_t(r.prompts.size()) * r.num_images_per_prompt;
}

void check_request(const PipelineRequest& r) {
  if (r.prompt_embeds) {
    if (!r.prompts.empty()) throw Error("generate: give prompts or prompt_embeds, not both");
    if (r.prompt_embeds->embeds.shape.size() != 4)
      throw Error("generate: prompt_embeds must be (B, L, layers, dim), got " +
                  shape_str(r.prompt_embeds->embeds.shape));
    if (r.num_images_per_prompt != 1)
      throw Error("generate: with prompt_embeds every row is one image: num_images_per_prompt must be 1");
  } else if (r.prompts.empty()) {
    throw Error("generate: no prompt (give at least one, or prompt_embeds)");
  } else if (r.negative_prompt_embeds) {
    throw Error("generate: negative_prompt_embeds needs prompt_embeds");
  }
  if (r.steps < 1 || r.steps > 10000)
    throw Error("generate: steps must be in 1..10000, got " + std::to_string(r.steps));
  if (!std::isfinite(r.guidance) || r.guidance < 0)
    throw Error("generate: guidance must be a finite number >= 0, got " + std::to_string(r.guidance));
  if (r.num_images_per_prompt < 1 || r.num_images_per_prompt > 256)
    throw Error("generate: num_images_per_prompt must be in 1..256, got " +
                std::to_string(r.num_images_per_prompt));
  if (r.max_sequence_length < 1 || r.max_sequence_length > 4096)
    throw Error("generate: max_sequence_length must be in 1..4096, got " +
                std::to_string(r.max_sequence_length));
  if (!std::isfinite(r.lora_scale)) throw Error("generate: lora_scale must be finite");
  const int64_t batch = batch_of(r);
  if (r.latents) {
    const Shape& s = r.latents->shape;
    if (s.size() != 4 || s[0] != batch)
      throw Error("generate: latents must be (" + std::to_string(batch) +
                  ", channels, h, w) for this prompt batch, got " + shape_str(s));
    check_latent_size({s[2], s[3]});
  } else {
    latent_size_from_pixels(r.height, r.width);  // throws on sizes that are not multiples of 16
  }
}

}  // namespace

Pipeline::Pipeline(std::shared_ptr<PipelineImpl> impl) : impl_(std::move(impl)) {}

Pipeline Pipeline::open(const PipelinePaths& paths, const PipelineOptions& options, bool preload) {
  namespace fs = std::filesystem;
  const std::pair<const char*, const std::string*> parts[] = {
      {"transformer", &paths.transformer}, {"text encoder", &paths.text_encoder}, {"VAE", &paths.vae}};
  if (paths.transformer.empty()) throw Error("pipeline: no transformer path given");
  for (const auto& [what, path] : parts)
    if (!path->empty() && !fs::exists(*path))
      throw Error(*path + ": " + what + " not found (no such file or folder)");
  if (!paths.tokenizer.empty() && !fs::exists(paths.tokenizer))
    throw Error(paths.tokenizer + ": tokenizer not found (no such file or folder)");
  auto impl = std::make_shared<PipelineImpl>();
  impl->paths = paths;
  if (impl->paths.tokenizer.empty() && !paths.text_encoder.empty())
    impl->paths.tokenizer = find_tokenizer(paths.text_encoder);
  impl->options = options;
  Pipeline p(impl);
  if (preload && options.keep_loaded) {
    if (paths.text_encoder.empty() || paths.vae.empty())
      throw Error("pipeline: preload needs every component's path");
    impl->tokenizer = Tokenizer::load(impl->paths.tokenizer);
    TextEncoderLoadOptions te;
    te.compute = options.text_compute;
    te.warnings = options.warnings;
    impl->encoder = TextEncoder::load(paths.text_encoder, te);
    p.transformer();
    impl->vae = Vae::load(paths.vae);
  }
  return p;
}

const PipelinePaths& Pipeline::paths() const {
  return impl_->paths;
}

Model Pipeline::transformer() const {
  if (impl_->transformer) return *impl_->transformer;
  LoadOptions load;
  load.compute = impl_->options.compute;
  load.warnings = impl_->options.warnings;
  Model m = Model::load(impl_->paths.transformer, load);
  if (impl_->options.keep_loaded) impl_->transformer = m;
  return m;
}

PipelineResult Pipeline::generate(const PipelineRequest& r) const {
  check_request(r);
  std::lock_guard<std::mutex> lock(impl_->mutex);
  PipelineImpl& s = *impl_;
  const bool keep = s.options.keep_loaded;
  const bool guided = r.guidance > 0;
  if (r.decode && s.paths.vae.empty())
    throw Error("generate: this pipeline has no VAE: ask for latents only");
  PipelineResult result;

  // 1. The prompts (and the negative prompt when guided).
  TextEmbeddings prompt;
  std::optional<TextEmbeddings> negative;
  if (r.prompt_embeds) {
    prompt = *r.prompt_embeds;
    if (guided && r.negative_prompt_embeds) negative = *r.negative_prompt_embeds;
  }
  const bool need_encoder = !r.prompt_embeds || (guided && !negative);
  if (need_encoder) {
    if (s.paths.text_encoder.empty())
      throw Error(
          "generate: this pipeline has no text encoder: give prompt_embeds (and negative_prompt_embeds)");
    auto start = Clock::now();
    if (!s.tokenizer) {
      report(r.progress, "load", "tokenizer", 0, 1);
      s.tokenizer = Tokenizer::load(s.paths.tokenizer);
    }
    std::optional<TextEncoder> local;
    if (!s.encoder) {
      report(r.progress, "load", "text encoder", 0, 1);
      TextEncoderLoadOptions te;
      te.compute = s.options.text_compute;
      te.warnings = s.options.warnings;
      local = TextEncoder::load(s.paths.text_encoder, te);
      if (keep) s.encoder = local;
    }
    const TextEncoder& encoder = s.encoder ? *s.encoder : *local;
    EncodeOptions e;
    e.taps = r.taps;
    e.max_sequence_length = r.max_sequence_length;
    e.num_images_per_prompt = r.num_images_per_prompt;
    e.warnings = s.options.warnings;
    e.progress = [&](int done, int total) { report(r.progress, "encode", "", done, total); };
    for (int t : r.taps.empty() ? encoder.default_taps() : r.taps) result.taps.push_back(std::to_string(t));
    if (!r.prompt_embeds) prompt = encoder.encode(*s.tokenizer, r.prompts, e);
    if (guided && !negative) {
      // One negative row per prompt row (diffusers repeats the negative prompt to the batch).
      const size_t rows = r.prompt_embeds ? size_t(prompt.embeds.dim(0)) : r.prompts.size();
      if (r.prompt_embeds) e.num_images_per_prompt = 1;
      const std::vector<std::string> neg(rows, r.negative_prompt.value_or(""));
      negative = encoder.encode(*s.tokenizer, neg, e);
    }
    result.encode_seconds = seconds_since(start);
  }  // a text encoder loaded only for this call is freed here

  // 2. The denoising loop.
  {
    if (!s.transformer) report(r.progress, "load", "transformer", 0, 1);
    Model model = transformer();
    if (!r.loras.empty()) model = model.with_loras(r.loras);
    const int64_t batch = prompt.embeds.dim(0);
    const int64_t channels = model.config().in_channels / 4;
    Tensor noise;
    if (r.latents) {
      if (r.latents->dim(1) != channels)
        throw Error("generate: latents must have " + std::to_string(channels) +
                    " channels for this transformer, got " + shape_str(r.latents->shape));
      noise = *r.latents;
    } else {
      const LatentSize size = latent_size_from_pixels(r.height, r.width);
      noise = gaussian_noise({batch, channels, size.height, size.width}, r.seed);
    }
    GenerateOptions g;
    g.schedule.steps = r.steps;
    g.schedule.turbo = r.turbo;
    g.guidance = r.guidance;
    g.forward.lora_scale = r.lora_scale;
    g.forward.progress = [&](const std::string& stage, int done, int total) {
      if (stage == "blocks") report(r.progress, "blocks", "", done, total);
    };
    g.on_step = [&](const StepInfo& info) { report(r.progress, "denoise", "", info.step + 1, info.steps); };
    auto start = Clock::now();
    GenerateResult out = krea2::generate(model, prompt, guided ? &*negative : nullptr, noise, g);
    result.denoise_seconds = seconds_since(start);
    result.latents = std::move(out.latents);
    result.latents_unpacked = std::move(out.latents_unpacked);
    result.schedule = std::move(out.schedule);
  }
  if (!r.decode) return result;

  // 3. Latents to the image.
  std::optional<Vae> local;
  if (!s.vae) {
    report(r.progress, "load", "VAE", 0, 1);
    local = Vae::load(s.paths.vae);
    if (keep) s.vae = local;
  }
  const Vae& vae = s.vae ? *s.vae : *local;
  VaeDecodeOptions d;
  d.progress = [&](int done, int total) { report(r.progress, "decode", "", done, total); };
  auto start = Clock::now();
  result.image = vae.decode(result.latents_unpacked, d);
  result.decode_seconds = seconds_since(start);
  return result;
}

}  // namespace krea2
