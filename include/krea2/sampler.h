// The diffusers Krea2Pipeline denoising loop around the transformer: flow-matching Euler schedule
// (FlowMatchEulerDiscreteScheduler as Krea 2 configures it), Krea's guidance, 2x2 latent packing, position
// ids and seeded noise. Every step is float32 arithmetic in upstream's order, so the same embeddings and
// noise give the same latents as diffusers.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "krea2/model.h"
#include "krea2/tensor.h"

namespace krea2 {

// ---- Schedule
// ------------------------------------------------------------------------------------------------

enum class TimeShift {
  kExponential,  // s' = e^mu / (e^mu + (1/s - 1))   (Krea 2's scheduler config)
  kLinear,       // s' = mu / (mu + (1/s - 1))
  kNone,         // s' = s
};

// Krea 2's FlowMatchEulerDiscreteScheduler config (use_dynamic_shifting with these values).
struct ShiftConfig {
  double base_shift = 0.5;
  double max_shift = 1.15;
  int64_t base_image_seq_len = 256;
  int64_t max_image_seq_len = 6400;
};

// mu used by the turbo (distilled) model regardless of resolution.
inline constexpr double kTurboMu = 1.15;

struct ScheduleOptions {
  int steps = 28;
  bool turbo = false;                // mu = kTurboMu instead of the resolution-dependent mu
  std::optional<double> mu;          // overrides both
  std::vector<float> custom_sigmas;  // pre-shift sigmas; when set, steps = custom_sigmas.size()
  TimeShift shift = TimeShift::kExponential;
  ShiftConfig config;
};

struct Schedule {
  double mu = 0;
  std::vector<float> sigmas;     // steps + 1 values, the last 0
  std::vector<float> timesteps;  // steps values: sigmas * 1000 (float32)
  int steps() const { return static_cast<int>(timesteps.size()); }
  // What the pipeline hands the transformer at step i: timesteps[i] / 1000 in float32 (not always ==
  // sigmas[i]).
  float transformer_timestep(int i) const { return timesteps.at(static_cast<size_t>(i)) / 1000.0f; }
};

// diffusers calculate_shift: the line through (base_image_seq_len, base_shift) and (max_image_seq_len,
// max_shift), evaluated at `image_seq_len` (float64, not clamped).
double calculate_shift(int64_t image_seq_len, const ShiftConfig& config = {});

// The scheduler's sigmas and timesteps for an image of `image_seq_len` packed tokens. Throws krea2::Error on
// steps < 1 or custom sigmas outside (0, 1].
Schedule make_schedule(const ScheduleOptions& options, int64_t image_seq_len);

// Parses "1,0.8,0.5" into float32 values; throws krea2::Error naming the bad item.
std::vector<float> parse_sigmas(const std::string& text);

// ---- Latent geometry and packing
// -----------------------------------------------------------------------------

// The VAE downsamples by 8 and the transformer packs 2x2 latent pixels into one token.
inline constexpr int64_t kVaeScale = 8;
inline constexpr int64_t kPatch = 2;

struct LatentSize {
  int64_t height = 0;  // latent pixels
  int64_t width = 0;
  int64_t tokens() const { return (height / kPatch) * (width / kPatch); }
};

// Throws krea2::Error unless both are positive multiples of 2.
void check_latent_size(const LatentSize& size);
// Pixel size -> latent size; pixel sizes must be positive multiples of 16 (error otherwise).
LatentSize latent_size_from_pixels(int64_t height, int64_t width);

// (B, C, h, w) -> (B, h/2 * w/2, 4C); inside a token, channel index c*4 + ph*2 + pw, tokens row-major.
Tensor pack_latents(const Tensor& latents);
// The inverse: (B, N, 4C) -> (B, C, h, w) with N == h/2 * w/2.
Tensor unpack_latents(const Tensor& packed, const LatentSize& size);

// Image rows (0, row, col) over the h/2 x w/2 token grid, row-major: (N, 3).
Tensor make_image_position_ids(const LatentSize& size);
// The pipeline's full position_ids: `text_len` rows of (0, 0, 0), then the image rows: (text_len + N, 3).
Tensor make_position_ids(int64_t text_len, const LatentSize& size);

// ---- Noise
// ---------------------------------------------------------------------------------------------------

// Standard normal float32 values, reproducible for a seed on every platform (our own generator: xoshiro256**
// seeded through splitmix64, Box-Muller on 53-bit uniforms). It does not reproduce torch.randn.
Tensor gaussian_noise(const Shape& shape, uint64_t seed);

// ---- Denoising loop
// ------------------------------------------------------------------------------------------

// Prompt embeddings as the text encoder gives them: (B, L, num_text_layers, text_hidden_dim), mask (B, L).
struct TextEmbeddings {
  Tensor embeds;
  std::optional<Tensor> mask;  // nonzero = valid token; absent = all valid
};

struct StepInfo {
  int step = 0;  // 0-based index of the step just finished
  int steps = 0;
  float sigma = 0;
  float sigma_next = 0;
  double seconds = 0;  // wall time of this step
};

enum class CfgMode {
  kBatched,  // cond + uncond as one transformer call of batch 2B
  kTwoPass,  // two calls of batch B
};

struct GenerateOptions {
  ScheduleOptions schedule;
  // Krea's convention: v = v_cond + g * (v_cond - v_uncond) when g > 0 (needs negative embeddings).
  double guidance = 0.0;
  CfgMode cfg_mode = CfgMode::kBatched;
  // Run the full Model::forward (text path included) at every step instead of encoding the text once. Same
  // result; kept to check and measure the cache.
  bool recompute_text = false;
  bool keep_step_latents = false;  // fill GenerateResult::step_latents
  ForwardOptions forward;          // skip_padded_text, times, progress (blocks of each call); no trace
  std::function<void(const StepInfo&)> on_step;
};

struct GenerateResult {
  Tensor latents;           // packed (B, N, C), after the last step
  Tensor latents_unpacked;  // (B, C/4, h, w)
  Schedule schedule;
  Tensor position_ids;               // (L + N, 3) of the prompt, as the pipeline builds them
  std::vector<Tensor> step_latents;  // packed latents after each step (keep_step_latents)
  double text_seconds = 0;           // encode_text time (prompt + negative)
  std::vector<double> step_seconds;
};

// Denoises `noise` (B, C/4, h, w) with the prompt (batch B) and, when guidance > 0, the negative prompt
// (batch B; its L may differ). Throws krea2::Error on inconsistent shapes or a missing negative prompt.
GenerateResult generate(const Model& model, const TextEmbeddings& prompt, const TextEmbeddings* negative,
                        const Tensor& noise, const GenerateOptions& options = {});

}  // namespace krea2
