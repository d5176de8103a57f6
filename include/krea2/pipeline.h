// Prompt to picture: diffusers' Krea2Pipeline.__call__ as one object holding the four components (tokenizer,
// text encoder, transformer, VAE): encode the prompt (and the negative prompt when guided), denoise seeded or
// given latents, decode to an image. What the C API (krea2/krea2.h), the Python module and `krea2 generate`
// build on.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "krea2/compute.h"
#include "krea2/error.h"
#include "krea2/lora.h"
#include "krea2/model.h"
#include "krea2/sampler.h"
#include "krea2/tensor.h"

namespace krea2 {

// Thrown when a progress callback asks to stop; the work done so far is discarded.
class Cancelled : public Error {
 public:
  Cancelled() : Error("cancelled by the progress callback") {}
};

// Where the components are. from_root fills every path from a diffusers pipeline root (model_index.json with
// transformer/, text_encoder/, tokenizer/, vae/); any path may then be replaced. An empty tokenizer path
// means "beside the text encoder" (find_tokenizer).
struct PipelinePaths {
  std::string transformer, text_encoder, tokenizer, vae;
  // Throws krea2::Error when `root` has no model_index.json or lacks one of the four folders.
  static PipelinePaths from_root(const std::string& root);
};

// The tokenizer beside a text encoder: the pipeline root's tokenizer/, tokenizer files in the encoder's
// folder (the hub's Qwen3-VL repos ship them there), or the encoder GGUF itself. krea2::Error when there is
// none.
std::string find_tokenizer(const std::string& text_encoder_path);

struct PipelineOptions {
  Compute compute = Compute::kF32;       // the transformer's products
  Compute text_compute = Compute::kF32;  // the text encoder's
  // Keep every component loaded between calls (the default, as a diffusers pipeline object). false loads each
  // when its stage starts and frees it when the stage ends, so peak memory is the largest component's (what
  // `krea2 generate` does).
  bool keep_loaded = true;
  std::vector<std::string>* warnings = nullptr;  // load warnings and prompt truncation, appended
};

// Which stage is running, for progress: "load" (done 0 of 1 when a component starts loading, with the
// component's name in `detail`), "encode" (text-encoder layers), "denoise" (steps; `detail` is empty) and
// "blocks" (transformer blocks inside the current step), "decode" (VAE stages).
struct PipelineProgress {
  std::string stage;
  std::string detail;
  int done = 0, total = 0;
};
// Return false to cancel (the call then throws Cancelled).
using PipelineProgressFn = std::function<bool(const PipelineProgress&)>;

// One call of the pipeline; defaults are diffusers' Krea2Pipeline.__call__ defaults.
struct PipelineRequest {
  std::vector<std::string> prompts;  // a batch; each gives num_images_per_prompt images
  // Instead of `prompts` (diffusers' prompt_embeds / prompt_embeds_mask): (B, L, taps, dim), each row one
  // image.
  std::optional<TextEmbeddings> prompt_embeds;
  // With prompt_embeds and guidance: the negative's (B, L', taps, dim); absent = negative_prompt encoded.
  std::optional<TextEmbeddings> negative_prompt_embeds;
  // Used when guidance > 0 ("" when absent, as the pipeline's default negative prompt).
  std::optional<std::string> negative_prompt;
  int64_t height = 1024, width = 1024;  // pixels, multiples of 16
  int steps = 28;
  double guidance = 4.5;  // Krea's convention, 0 = off
  bool turbo = false;     // mu = 1.15 whatever the resolution (the distilled model's schedule)
  uint64_t seed = 0;      // of our Gaussian generator (it does not reproduce torch.randn)
  int64_t num_images_per_prompt = 1;
  int64_t max_sequence_length = 512;
  std::vector<int> taps;  // empty: the pipeline's (model_index.json) or the built-in default
  std::optional<Tensor>
      latents;  // initial noise (B, in_channels / 4, h, w) instead of the seed (sets the size)
  std::vector<LoraSpec> loras;  // attached for this call only (run-time terms)
  float lora_scale = 1.0f;      // multiplies every adapter's strength
  bool decode = true;           // false: stop at the latents (output_type="latent")
  PipelineProgressFn progress;
};

struct PipelineResult {
  Tensor latents;           // packed (B, N, in_channels)
  Tensor latents_unpacked;  // (B, in_channels / 4, h, w)
  Tensor image;             // (B, 3, H, W) in [-1, 1]; empty when !decode
  Schedule schedule;
  std::vector<std::string> taps;  // hidden states stacked, as text ("2", "5", ...)
  double encode_seconds = 0, denoise_seconds = 0, decode_seconds = 0;
};

struct PipelineImpl;

class Pipeline {
 public:
  // Checks the paths given exist (the transformer's is required; a pipeline without a text encoder takes
  // prompt_embeds, one without a VAE stops at latents); components load on first use (all at once with
  // keep_loaded when `preload`).
  static Pipeline open(const PipelinePaths& paths, const PipelineOptions& options = {}, bool preload = false);

  const PipelinePaths& paths() const;
  // The transformer (loaded now if it is not); with keep_loaded it stays.
  Model transformer() const;

  // Throws krea2::Error on bad requests (empty prompt list, sizes, steps) before any component loads, and
  // Cancelled when `progress` returns false. Not to be called concurrently on one Pipeline.
  PipelineResult generate(const PipelineRequest& request) const;

  explicit Pipeline(std::shared_ptr<PipelineImpl> impl);

 private:
  std::shared_ptr<PipelineImpl> impl_;
};

}  // namespace krea2
