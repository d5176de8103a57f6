#include "text/encoder_names.h"

#include <map>

namespace krea2 {

namespace {

// llama.cpp's names for the per-layer suffixes.
const std::map<std::string, std::string>& gguf_layer_names() {
  static const std::map<std::string, std::string> m = {
      {"input_layernorm.weight", "attn_norm.weight"},
      {"self_attn.q_proj.weight", "attn_q.weight"},
      {"self_attn.k_proj.weight", "attn_k.weight"},
      {"self_attn.v_proj.weight", "attn_v.weight"},
      {"self_attn.o_proj.weight", "attn_output.weight"},
      {"self_attn.q_norm.weight", "attn_q_norm.weight"},
      {"self_attn.k_norm.weight", "attn_k_norm.weight"},
      {"post_attention_layernorm.weight", "ffn_norm.weight"},
      {"mlp.gate_proj.weight", "ffn_gate.weight"},
      {"mlp.up_proj.weight", "ffn_up.weight"},
      {"mlp.down_proj.weight", "ffn_down.weight"},
  };
  return m;
}

std::string gguf_name(const std::string& name) {
  if (name == "embed_tokens.weight") return "token_embd.weight";
  if (name == "norm.weight") return "output_norm.weight";
  if (name.rfind("layers.", 0) == 0) {
    const size_t dot = name.find('.', 7);
    if (dot != std::string::npos) {
      auto it = gguf_layer_names().find(name.substr(dot + 1));
      if (it != gguf_layer_names().end()) return "blk." + name.substr(7, dot - 7) + "." + it->second;
    }
  }
  return name;
}

bool starts_with(const std::string& s, const char* prefix) {
  return s.rfind(prefix, 0) == 0;
}

}  // namespace

const char* text_encoder_names_description(TextEncoderNames names) {
  switch (names) {
    case TextEncoderNames::kHub:
      return "transformers Qwen3-VL names (model.language_model.*)";
    case TextEncoderNames::kBare:
      return "Qwen3VLModel names (language_model.*)";
    case TextEncoderNames::kComfy:
      return "ComfyUI / Qwen3 causal-LM names (model.layers.N.*)";
    case TextEncoderNames::kPlain:
      return "Qwen3 text-model names (layers.N.*)";
    case TextEncoderNames::kGguf:
      return "llama.cpp GGUF names (blk.N.*)";
  }
  return "?";
}

std::string text_encoder_checkpoint_name(const std::string& name, TextEncoderNames names) {
  switch (names) {
    case TextEncoderNames::kHub:
      return "model.language_model." + name;
    case TextEncoderNames::kBare:
      return "language_model." + name;
    case TextEncoderNames::kComfy:
      return "model." + name;
    case TextEncoderNames::kPlain:
      return name;
    case TextEncoderNames::kGguf:
      return gguf_name(name);
  }
  return name;
}

bool is_ignorable_text_encoder_extra(const std::string& n, TextEncoderNames names) {
  switch (names) {
    case TextEncoderNames::kHub:
      return starts_with(n, "model.visual.") || n == "lm_head.weight";
    case TextEncoderNames::kBare:
      return starts_with(n, "visual.") || n == "lm_head.weight";
    case TextEncoderNames::kComfy:
    case TextEncoderNames::kPlain:
      return starts_with(n, "visual.") || starts_with(n, "model.visual.") || n == "lm_head.weight";
    case TextEncoderNames::kGguf:
      return n == "output.weight" || n == "rope_freqs.weight";
  }
  return false;
}

}  // namespace krea2
