// The Krea 2 prompt encoder: the text tower of Qwen3-VL-4B-Instruct (a Qwen3 decoder) run over the
// pipeline's prompt template, its tapped hidden states stacked as the transformer's encoder_hidden_states,
// exactly as diffusers' Krea2Pipeline.encode_prompt computes them.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "krea2/compute.h"
#include "krea2/model.h"
#include "krea2/sampler.h"
#include "krea2/tensor.h"
// krea2/tokenizer.h: the Tokenizer encode() takes.

namespace krea2 {

// The Qwen3(-VL) text tower's configuration (defaults: Qwen3-VL-4B-Instruct's text_config).
struct TextEncoderConfig {
  int64_t vocab_size = 151936;
  int64_t hidden_size = 2560;
  int64_t num_layers = 36;
  int64_t num_heads = 32;
  int64_t num_kv_heads = 8;
  int64_t head_dim = 128;
  int64_t intermediate_size = 9728;
  double rms_norm_eps = 1e-6;
  double rope_theta = 5e6;
  // Interleaved M-RoPE sections (Qwen3-VL-4B: 24, 20, 20; empty when unknown). For text the three position
  // axes are equal, so they do not change the computation (kept for inspect and validation).
  std::vector<int64_t> mrope_section;

  // Throws krea2::Error naming the key when a value is out of range or inconsistent.
  void validate() const;
  // Parses a transformers config.json: Qwen3-VL (`text_config` nested) or a plain Qwen3 text config;
  // `rope_scaling` + `rope_theta` or transformers v5's `rope_parameters`.
  static TextEncoderConfig from_json_text(const std::string& text, const std::string& source);
  static TextEncoderConfig from_json_file(const std::string& path);
};

// The hidden states Krea 2 taps by default: 2, 5, ..., 35 (Krea2Pipeline's text_encoder_select_layers).
std::vector<int> default_text_encoder_taps();

struct TextEncoderLoadOptions {
  bool verbose = false;             // progress on stderr
  Compute compute = Compute::kF32;  // of the matrix products (krea2/compute.h)
  std::vector<std::string>* warnings = nullptr;
};

struct TextEncoderLoadInfo {
  std::string file_format;    // "safetensors", "GGUF v3", ...
  std::string names;          // "transformers Qwen3-VL names (model.language_model.*)", ...
  std::string config_source;  // the config.json path, "GGUF metadata", ...
  std::string taps_source;    // where the default taps came from (model_index.json, or the built-in default)
  std::string quantization;   // "none", "ggml blocks", ...
  std::vector<std::string> ignored_tensors;  // vision tower, lm_head, ... (counted, never read)
};

// How to encode prompts.
struct EncodeOptions {
  // Hidden-state indices to stack, each 0..num_layers (0 = the embeddings, k = the output of layer k - 1,
  // num_layers = after the final norm); empty = the encoder's default_taps().
  std::vector<int> taps;
  int64_t max_sequence_length = 512;
  int64_t num_images_per_prompt = 1;
  // Run each prompt on its valid tokens only (exact: the valid rows do not change, and the pipeline never
  // reads pad rows, which are then zero). false runs the padded sequence with the mask, as upstream.
  bool skip_padding = true;
  // Called after each decoder layer.
  std::function<void(int done, int total)> progress;
  StageTimes* times = nullptr;
  // Filled with one line per prompt whose tail was cut at max_sequence_length.
  std::vector<std::string>* warnings = nullptr;
};

class Tokenizer;
struct TextEncoderImpl;

class TextEncoder {
 public:
  // A transformers Qwen3-VL folder (config.json with text_config + safetensors, sharded or not; names
  // model.language_model.* or language_model.*; vision weights ignored), a diffusers pipeline root whose
  // text_encoder/ holds one, a ComfyUI single file (model.layers.N.*; config from the tensor shapes), or a
  // GGUF (llama.cpp names blk.N.attn_q.weight, config from its qwen3 / qwen3vl metadata). Every weight format
  // the transformer reads; weights stay mmap'd. The default taps come from the model_index.json of the
  // pipeline root the folder sits in, else default_text_encoder_taps().
  static TextEncoder load(const std::string& path, const TextEncoderLoadOptions& options = {});
  // Random weights (deterministic for a seed), scaled so activations stay finite. F32, BF16 or F16.
  static TextEncoder random(const TextEncoderConfig& config, DType weight_dtype, uint64_t seed);

  const TextEncoderConfig& config() const;
  const TextEncoderLoadInfo& load_info() const;
  const std::vector<int>& default_taps() const;
  Compute compute() const;
  // The same encoder computing in `mode`, sharing the weights.
  TextEncoder with_compute(Compute mode) const;
  int64_t parameter_count() const;

  // Hidden states of token rows. ids, mask, positions: (batch, seq) each; mask 1 = valid (a causal,
  // key-padding mask, as upstream). Returns (batch, seq, taps.size(), hidden) float32. Only the layers up to
  // the deepest tap run. With skip_padding, invalid rows are not computed (their output is zero) and the
  // valid rows of each sample run as one causal segment at the given positions.
  Tensor hidden_states(const std::vector<int32_t>& ids, const std::vector<uint8_t>& mask,
                       const std::vector<int32_t>& positions, int64_t batch, const std::vector<int>& taps,
                       bool skip_padding, const EncodeOptions& options = {}) const;

  // Krea2Pipeline.encode_prompt: the template around each prompt, padding / truncation to
  // max_sequence_length, the encoder, the taps stacked, the 34 template rows dropped, each prompt's rows
  // repeated num_images_per_prompt times. embeds (B, max_sequence_length, taps, hidden), mask (B,
  // max_sequence_length) 1 / 0.
  TextEmbeddings encode(const Tokenizer& tokenizer, const std::vector<std::string>& prompts,
                        const EncodeOptions& options = {}) const;

  explicit TextEncoder(std::shared_ptr<const TextEncoderImpl> impl);
  const TextEncoderImpl& impl() const { return *impl_; }

 private:
  std::shared_ptr<const TextEncoderImpl> impl_;
};

}  // namespace krea2
