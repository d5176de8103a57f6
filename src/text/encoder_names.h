// How the text encoder's parameters are spelled in the files users have.
#pragma once
#include <string>

namespace krea2 {

enum class TextEncoderNames {
  kHub,    // transformers Qwen3VLForConditionalGeneration: model.language_model.*
  kBare,   // a bare Qwen3VLModel state dict (a diffusers text_encoder/ folder): language_model.*
  kComfy,  // ComfyUI text-encoder file, a Qwen3 causal LM: model.*
  kPlain,  // a bare Qwen3 text model: no prefix
  kGguf,   // llama.cpp: token_embd.weight, blk.N.attn_q.weight, ...
};

const char* text_encoder_names_description(TextEncoderNames names);

// The checkpoint name of a parameter (visit_text_weights' name) under `names`.
std::string text_encoder_checkpoint_name(const std::string& name, TextEncoderNames names);

// Tensors a file may carry that the text path never reads: the vision tower, the LM head, rotary caches.
bool is_ignorable_text_encoder_extra(const std::string& checkpoint_name, TextEncoderNames names);

}  // namespace krea2
