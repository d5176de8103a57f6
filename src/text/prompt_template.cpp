#include "text/prompt_template.h"

#include <algorithm>

#include "krea2/error.h"
#include "text/utf8.h"

namespace krea2 {

const char* const kKrea2PromptPrefix =
    "<|im_start|>system\nDescribe the image by detailing the color, shape, size, texture, quantity, text, "
    "spatial relationships of the objects and background:<|im_end|>\n<|im_start|>user\n";
const char* const kKrea2PromptSuffix = "<|im_end|>\n<|im_start|>assistant\n";

PromptTokens krea2_prompt_tokens(const Tokenizer& tok, const std::vector<std::string>& prompts,
                                 int64_t max_sequence_length) {
  if (max_sequence_length < 1 || max_sequence_length > kKrea2MaxSequenceLength)
    throw Error("max_sequence_length " + std::to_string(max_sequence_length) +
                " is out of range (expected 1.." + std::to_string(kKrea2MaxSequenceLength) + ")");
  const auto pad = tok.find_token("<|endoftext|>");
  if (!pad)
    throw Error("the tokenizer has no <|endoftext|> token (the Krea 2 padding token): " + tok.describe());
  const std::vector<int32_t> suffix = tok.encode(kKrea2PromptSuffix);
  if (int64_t(suffix.size()) != kKrea2SuffixTokens)
    throw Error("the tokenizer gives " + std::to_string(suffix.size()) +
                " tokens for the Krea 2 prompt suffix, " +
                "expected 5 (not a Qwen2-family tokenizer?): " + tok.describe());
  const int64_t prefix_len = int64_t(tok.encode(kKrea2PromptPrefix).size());
  if (prefix_len != kKrea2PrefixTokens)
    throw Error("the tokenizer gives " + std::to_string(prefix_len) +
                " tokens for the Krea 2 prompt prefix, " +
                "expected 34 (not a Qwen2-family tokenizer?): " + tok.describe());

  PromptTokens out;
  out.batch = int64_t(prompts.size());
  out.prefix_tokens = kKrea2PrefixTokens;
  const int64_t text_len = max_sequence_length + kKrea2PrefixTokens - kKrea2SuffixTokens;
  out.seq_len = text_len + kKrea2SuffixTokens;
  const size_t total = size_t(out.batch * out.seq_len);
  out.input_ids.reserve(total);
  out.attention_mask.reserve(total);
  out.position_ids.reserve(total);
  for (size_t b = 0; b < prompts.size(); ++b) {
    if (const auto bad = text::find_invalid_utf8(prompts[b]))
      throw Error("prompt " + std::to_string(b) + ": invalid UTF-8 at byte offset " + std::to_string(*bad));
    const std::vector<int32_t> ids = tok.encode(kKrea2PromptPrefix + prompts[b]);
    const int64_t n = int64_t(ids.size());
    out.truncated.push_back(n > text_len);
    out.prompt_tokens.push_back(std::max<int64_t>(0, n - kKrea2PrefixTokens));
    const int64_t kept = std::min(n, text_len);
    const size_t row = out.input_ids.size();
    out.input_ids.insert(out.input_ids.end(), ids.begin(), ids.begin() + kept);
    out.attention_mask.insert(out.attention_mask.end(), size_t(kept), 1);
    out.input_ids.insert(out.input_ids.end(), size_t(text_len - kept), *pad);
    out.attention_mask.insert(out.attention_mask.end(), size_t(text_len - kept), 0);
    out.input_ids.insert(out.input_ids.end(), suffix.begin(), suffix.end());
    out.attention_mask.insert(out.attention_mask.end(), suffix.size(), 1);
    int32_t seen = 0;
    for (int64_t i = 0; i < out.seq_len; ++i) {
      seen += out.attention_mask[row + size_t(i)];
      out.position_ids.push_back(std::max(seen - 1, 0));
    }
  }
  return out;
}

}  // namespace krea2
