// The Krea 2 transformer: load a checkpoint, run the exact upstream forward.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "krea2/compute.h"
#include "krea2/config.h"
#include "krea2/error.h"
#include "krea2/lora.h"
#include "krea2/tensor.h"

namespace krea2 {

struct ModelImpl;

// What forward() takes; shapes as upstream: B samples, N image tokens, L text tokens.
struct ForwardInputs {
  Tensor hidden_states;                          // (B, N, in_channels)
  Tensor encoder_hidden_states;                  // (B, L, num_text_layers, text_hidden_dim)
  Tensor timestep;                               // (B,), flow time in [0, 1]
  Tensor position_ids;                           // (L + N, 3)
  std::optional<Tensor> encoder_attention_mask;  // (B, L); nonzero = valid token. Absent = all valid.
};

// Per-stage timings, accumulated over calls (seconds).
struct StageTimes {
  std::map<std::string, double> seconds;
  void add(const std::string& stage, double s) { seconds[stage] += s; }
};

struct ForwardOptions {
  // Drop padded text tokens from the sequence (exact: they sit at rotary position 0 in the pipeline and are
  // never attended to). When false the full (B, L) text is kept and the mask is applied inside attention.
  bool skip_padded_text = true;
  // If set, stage outputs are stored under the fixture trace names (time_embed, time_mod_proj, text_fusion,
  // txt_in, img_in, rotary_emb.cos/.sin, transformer_blocks.i, final_layer), with the fixture shapes.
  std::map<std::string, Tensor>* trace = nullptr;
  // If set, per-stage wall times are added here.
  StageTimes* times = nullptr;
  // Called after each block ("text", i, n) / ("blocks", i, n).
  std::function<void(const std::string& stage, int done, int total)> progress;
  // Multiplies every attached adapter's delta for this call (diffusers' attention_kwargs["scale"]); 1 gives
  // the strengths passed to Model::with_loras. No effect on a model without adapters.
  float lora_scale = 1.0f;
};

// The output of the text path (text fusion + txt_in): depends only on the text, so a sampler computes it
// once.
struct TextContext {
  int64_t batch = 0;
  int64_t text_len = 0;              // L of the embeddings it came from
  std::vector<int64_t> lengths;      // rows kept per sample
  Tensor rows;                       // (sum lengths, hidden)
  Tensor positions;                  // (sum lengths, 3) rotary ids of those rows
  std::vector<uint8_t> key_valid;    // per row; all 1 when padded rows were dropped
  std::vector<int64_t> token_index;  // per row: its index in [0, text_len) of the original sample
  // Appends the samples of `other` (e.g. cond + uncond for one batched guidance pass).
  static TextContext concat(const TextContext& a, const TextContext& b);
};

// How Model::with_compute prepares int8 compute.
struct Int8Options {
  // Weights not already stored as int8 are quantized per output row at preparation; with a group G > 0 (a
  // power of 4 dividing the row) after the convrot rotation W R, as ComfyUI's int8 convrot files, which makes
  // each product rotate its activations too. 0: no rotation.
  int64_t rotation_group = 0;
};

struct LoadOptions {
  bool verbose = false;             // progress on stderr
  Compute compute = Compute::kF32;  // the loaded model's compute mode (see Model::with_compute)
  Int8Options int8;
  // Unexpected tensors in the checkpoint: error (default) or warning.
  bool allow_unexpected = false;
  std::vector<std::string>* warnings = nullptr;
};

// How a checkpoint was read (filled by Model::load; `krea2 inspect` prints it).
struct LoadInfo {
  std::string file_format;                    // "safetensors", "safetensors, 3 shard(s)", "GGUF v3"
  std::string names;                          // "original Krea names, prefix 'model.diffusion_model.'"
  std::string config_source;                  // a config.json path, "krea2.* metadata", "tensor shapes"
  std::vector<std::string> config_defaulted;  // keys no metadata or shape determined: upstream defaults
  std::vector<std::string> ignored_tensors;   // present but never read (last.up / last.down)
  std::string quantization;                   // "none", "ggml blocks", "ComfyUI scaled fp8 ...", ...
};

class Model {
 public:
  // A diffusers folder (DIR/transformer/ or DIR with config.json + safetensors, sharded or not), a single
  // .safetensors file under diffusers or original Krea names (F32 / BF16 / F16, ComfyUI scaled fp8, ComfyUI
  // int8_tensorwise + convrot; config.json beside it, else the config read off the tensor shapes), or a GGUF
  // file (config from krea2.* metadata, else the shapes). Weights stay mmap'd and are decoded inside the
  // matrix products.
  static Model load(const std::string& path, const LoadOptions& options = {});
  // Random weights (deterministic for a seed), scaled so activations stay finite. weight_dtype: F32, BF16 or
  // F16.
  static Model random(const Config& config, DType weight_dtype, uint64_t seed);

  const Config& config() const;
  // The compute mode of the matrix products (krea2/compute.h); f32 unless made by with_compute.
  Compute compute() const;
  // The same model computing in `mode`, sharing this one's weights. f32 / bf16 need no preparation (bf16
  // rounds operands as the products pack them). int8 multiplies int8 weights with a scale per output row
  // by per-row int8 activations: weights stored that way (int8 convrot files) are used as stored, every
  // other Linear weight is quantized per row now (one byte per weight, in memory). Cheap to call again.
  Model with_compute(Compute mode, const Int8Options& int8 = {}) const;
  // The same model with adapters attached (krea2/lora.h), sharing this one's weights (the stored weights are
  // never changed): any adapters this model already has are replaced (they start from the model those were
  // attached to). At run time (default) LoRA products are added to the layers' outputs; LoHa / LoKr as exact
  // low-rank products where cheap; full deltas, and LoHa / LoKr where not cheap, are merged now into float32
  // copies of only the matrices they change. options.merge merges everything that way. Small float vectors
  // (biases, norms, modulation tables, the projector) always take their delta now. Every file is resolved and
  // checked before anything is built: an error leaves nothing attached. Merged copies are float32 (multiplied
  // in float32 under int8 compute too). save / quantize_model refuse a model with run-time terms (merge to
  // write one); with_compute starts again from the model as loaded (attach adapters after it).
  Model with_loras(const std::vector<LoraSpec>& loras, const LoraOptions& options = {}) const;
  // The model the adapters were attached to (this model when it has none).
  Model without_loras() const;
  bool has_loras() const;
  // Empty for random models.
  const LoadInfo& load_info() const;
  // Parameter count and bytes per stored dtype.
  int64_t parameter_count() const;
  std::map<DType, int64_t> bytes_per_dtype() const;
  // Name (diffusers), dtype, shape of every parameter, in visit order.
  std::vector<TensorView> parameters() const;

  // The velocity (B, N, in_channels). Throws krea2::Error on shape mismatches.
  Tensor forward(const ForwardInputs& in, const ForwardOptions& options = {}) const;

  // forward() in two halves. text_positions: (L, 3) or empty for all zeros.
  TextContext encode_text(const Tensor& encoder_hidden_states, const std::optional<Tensor>& mask,
                          const Tensor& text_positions, const ForwardOptions& options = {}) const;
  // hidden_states (B, N, C) with B == text.batch; timestep (B,); image_positions (N, 3).
  Tensor predict(const TextContext& text, const Tensor& hidden_states, const Tensor& timestep,
                 const Tensor& image_positions, const ForwardOptions& options = {}) const;

  // Writes the model as a diffusers folder (config.json + one safetensors file) in its stored dtypes.
  void save(const std::string& folder) const;

  Model(std::shared_ptr<const ModelImpl> impl);
  const ModelImpl& impl() const { return *impl_; }

 private:
  std::shared_ptr<const ModelImpl> impl_;
};

}  // namespace krea2
