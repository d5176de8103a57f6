// The Krea 2 latent decoder: the Qwen-Image VAE (diffusers AutoencoderKLQwenImage, the Wan 2.1 video VAE
// architecture) run on one frame, where its causal 3-D convolutions are exactly 2-D ones, plus the pipeline's
// postprocessing to RGB bytes. Computes what diffusers' Krea2Pipeline step 7 computes (un-normalise, decode,
// clamp, VaeImageProcessor.postprocess).
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "krea2/model.h"
#include "krea2/tensor.h"

namespace krea2 {

// AutoencoderKLQwenImage's init arguments that matter for decoding (defaults: the released VAE).
struct VaeConfig {
  int64_t base_dim = 96, z_dim = 16, num_res_blocks = 2;
  std::vector<int64_t> dim_mult = {1, 2, 4, 4};
  // z_dim values each: z = latents / (1 / std) + mean before decoding.
  std::vector<float> latents_mean = {-0.7571f, -0.7089f, -0.9113f, 0.1075f,  -0.1745f, 0.9653f,
                                     -0.1517f, 1.5508f,  0.4134f,  -0.0715f, 0.5517f,  -0.3632f,
                                     -0.1922f, -0.9497f, 0.2503f,  -0.2921f};
  std::vector<float> latents_std = {2.8184f, 1.4541f, 2.3275f, 2.6558f, 1.2196f, 1.7708f, 2.6052f, 2.0743f,
                                    3.2687f, 2.1526f, 2.8652f, 1.5579f, 1.6382f, 1.1253f, 2.8251f, 1.916f};

  // The decoder's channel list d = base_dim * [m[-1], m[-1], m[-2], ..., m[0]] (levels + 1 entries).
  std::vector<int64_t> decoder_channels() const;
  int64_t levels() const { return int64_t(dim_mult.size()); }
  // Pixels per latent along each axis: 2^(levels - 1) (8 for the real VAE).
  int64_t scale_factor() const { return int64_t(1) << (levels() - 1); }

  // Throws krea2::Error naming the key when a value is out of range or inconsistent.
  void validate() const;
  // A diffusers config.json (AutoencoderKLQwenImage or AutoencoderKLWan); absent keys take the defaults.
  static VaeConfig from_json_text(const std::string& text, const std::string& source);
  static VaeConfig from_json_file(const std::string& path);
};

struct VaeLoadOptions {
  bool verbose = false;  // progress on stderr
  std::vector<std::string>* warnings = nullptr;
};

struct VaeLoadInfo {
  std::string file_format;                   // "safetensors", "GGUF v3", ...
  std::string names;                         // "diffusers names", "original Wan 2.1 names"
  std::string config_source;                 // the config.json path, or "tensor shapes ..."
  std::vector<std::string> ignored_tensors;  // encoder, quant_conv, time_conv (never read for decoding)
};

struct VaeDecodeOptions {
  // Called after each decoder stage (conv_in, mid block, each up block, head) of each image.
  std::function<void(int done, int total)> progress;
  // Per-stage wall times added here: "conv" (3x3), "upsample" (x2 + its conv), "conv1x1" (post_quant_conv,
  // shortcuts), "norm" (RMS norm + SiLU), "attention" (the mid block's attention core), "attention_proj"
  // (to_qkv, proj), "io" (un-normalise, layout, clamp).
  StageTimes* times = nullptr;
  // If set: batch element 0 under the fixture trace names (vae_input, post_quant_conv, decoder.conv_in,
  // decoder.mid_block.resnets.0, ..., decoder.conv_out), each (1, C, h, w).
  std::map<std::string, Tensor>* trace = nullptr;
};

struct VaeImpl;

class Vae {
 public:
  // A diffusers vae/ folder (config.json + safetensors), a pipeline root holding vae/, or a single file under
  // diffusers or original Wan 2.1 names (its config.json beside it if any, else the released config with the
  // sizes from the tensor shapes). Every storage type the transformer reads that applies (F32, BF16, F16,
  // fp8 with scales, ...). The live taps of the conv weights are copied to float32 at load (the file is not
  // kept open).
  static Vae load(const std::string& path, const VaeLoadOptions& options = {});
  // Benchmark / test weights, deterministic for a seed: convs uniform with variance 1 / fan_in, gammas near
  // 1, small biases; values rounded to `weight_dtype` (F32, BF16 or F16).
  static Vae random(const VaeConfig& config, DType weight_dtype, uint64_t seed);

  const VaeConfig& config() const;
  const VaeLoadInfo& load_info() const;
  // Live parameters (one frame: the last temporal taps, no time_conv).
  int64_t parameter_count() const;

  // latents (B, z_dim, h, w) or (B, z_dim, 1, h, w), normalised as the sampler gives them -> image
  // (B, 3, s h, s w) float32 in [-1, 1], s = config().scale_factor(): un-normalise, post_quant_conv, the
  // decoder, clamp. Any h, w >= 1. One image at a time (memory: a few maps of the largest stage).
  Tensor decode(const Tensor& latents, const VaeDecodeOptions& options = {}) const;

  explicit Vae(std::shared_ptr<const VaeImpl> impl);
  const VaeImpl& impl() const { return *impl_; }

 private:
  std::shared_ptr<const VaeImpl> impl_;
};

// VaeImageProcessor.postprocess: image (B, 3, H, W) in [-1, 1] -> (B, H, W, 3) RGB bytes:
// y = clamp(x * 0.5 + 0.5, 0, 1) in float32 (two roundings), then round(y * 255) half to even.
std::vector<uint8_t> image_to_rgb8(const Tensor& image);

// FLOPs (2 per multiply-add) of decoding one image of latent size h x w: every conv in its 2-D form
// (post_quant_conv included) plus the mid attention's two matrix products.
double vae_decode_flops(const VaeConfig& config, int64_t h, int64_t w);

}  // namespace krea2
