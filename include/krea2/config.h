// Krea2Transformer2DModel configuration: the 17 diffusers init arguments with upstream defaults.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace krea2 {

struct Config {
  int in_channels = 64;
  int num_layers = 28;
  int attention_head_dim = 128;
  int num_attention_heads = 48;
  int num_key_value_heads = 12;
  int intermediate_size = 16384;
  int timestep_embed_dim = 256;
  int text_hidden_dim = 2560;
  int num_text_layers = 12;
  int text_num_attention_heads = 20;
  int text_num_key_value_heads = 20;
  int text_intermediate_size = 6912;
  int num_layerwise_text_blocks = 2;
  int num_refiner_text_blocks = 2;
  std::vector<int> axes_dims_rope = {32, 48, 48};
  double rope_theta = 1000.0;
  double norm_eps = 1e-5;

  // Derived sizes (see SPEC.md notation).
  int64_t hidden() const { return int64_t(attention_head_dim) * num_attention_heads; }
  int64_t kv_hidden() const { return int64_t(attention_head_dim) * num_key_value_heads; }
  int64_t text_head_dim() const { return text_hidden_dim / text_num_attention_heads; }
  int64_t text_kv_hidden() const { return text_head_dim() * text_num_key_value_heads; }

  // Throws krea2::Error naming the offending key when a value is out of range or inconsistent.
  void validate() const;

  // Parses diffusers' config.json text. Keys starting with '_' are metadata; unknown keys are appended to
  // `warnings` (if given). Validates. `source` names the file in error messages.
  static Config from_json_text(const std::string& text, const std::string& source,
                               std::vector<std::string>* warnings = nullptr);
  static Config from_json_file(const std::string& path, std::vector<std::string>* warnings = nullptr);
  std::string to_json_text() const;  // diffusers layout, with _class_name
};

}  // namespace krea2
