// diffusers Krea2Pipeline.get_text_hidden_states' token layout (fixtures/text/README.md "The pipeline's
// rules" 1-4): `[prefix | prompt | PAD ... | suffix]` per prompt, prefix and prompt tokenized together and
// truncated from the right to max_sequence_length + 29 tokens, padded on the right with <|endoftext|> (mask
// 0), then the separately tokenized suffix (5 tokens); the encoder's first 34 rows (the prefix) are dropped
// afterwards.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "krea2/tokenizer.h"

namespace krea2 {

struct PromptTokens {
  int64_t batch = 0, seq_len = 0;       // seq_len = max_sequence_length + prefix_tokens
  int64_t prefix_tokens = 34;           // rows dropped after the encoder
  std::vector<int32_t> input_ids;       // (batch, seq_len)
  std::vector<uint8_t> attention_mask;  // (batch, seq_len)
  std::vector<int32_t> position_ids;    // (batch, seq_len): cumsum(mask) - 1 clamped at 0
  std::vector<bool> truncated;          // per prompt: the prompt's tail was cut
  std::vector<int64_t> prompt_tokens;   // per prompt: tokens of prefix+prompt before truncation minus prefix
};

inline constexpr int64_t kKrea2PrefixTokens = 34;
inline constexpr int64_t kKrea2SuffixTokens = 5;
inline constexpr int64_t kKrea2MaxSequenceLength = 4096;  // the largest max_sequence_length accepted

// Throws krea2::Error unless 1 <= max_sequence_length <= 4096, when the tokenizer has no <|endoftext|>, gives
// other than 34 / 5 tokens for the prefix / suffix (not a Qwen2-family tokenizer), or a prompt is not valid
// UTF-8 (the message names the prompt and the byte offset).
PromptTokens krea2_prompt_tokens(const Tokenizer& tok, const std::vector<std::string>& prompts,
                                 int64_t max_sequence_length);

extern const char* const kKrea2PromptPrefix;  // the template strings from the README
extern const char* const kKrea2PromptSuffix;

}  // namespace krea2
