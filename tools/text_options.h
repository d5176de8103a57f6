// The prompt-encoding options shared by `krea2 encode` and `krea2 generate --prompt`: --text-encoder,
// --tokenizer, --prompt (repeatable), --negative-prompt, --max-sequence-length, --taps,
// --num-images-per-prompt, --keep-text-padding.
#pragma once
#include <optional>
#include <set>
#include <string>

#include "args.h"
#include "krea2/sampler.h"

namespace krea2::cli {

extern const std::set<std::string> kTextValueFlags;
extern const std::set<std::string> kTextSwitches;
// Their --help lines.
std::string text_help();

struct EncodedPrompts {
  TextEmbeddings prompt;
  std::optional<TextEmbeddings> negative;  // when asked for (with_negative)
  double seconds = 0;
  std::string taps;  // "2,5,8", for metadata
};

// Loads the tokenizer and text encoder named by the options, encodes --prompt (and the negative prompt,
// "" unless --negative-prompt, when with_negative or --negative-prompt is given), and frees the encoder
// before returning. Progress on stderr when `progress`; warnings (truncation) unless quiet.
// `default_encoder`: used when --text-encoder is absent (a pipeline root given as --model).
EncodedPrompts encode_prompts(const Args& args, bool with_negative, bool progress, bool quiet,
                              const std::string& default_encoder = "");

}  // namespace krea2::cli
