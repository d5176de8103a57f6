// TextEncoder::encode: diffusers Krea2Pipeline.encode_prompt from prompt strings to prompt_embeds.
#include <algorithm>
#include <cstdio>

#include "krea2/error.h"
#include "krea2/text_encoder.h"
#include "krea2/tokenizer.h"
#include "text/encoder_weights.h"
#include "text/prompt_template.h"

namespace krea2 {

TextEmbeddings TextEncoder::encode(const Tokenizer& tokenizer, const std::vector<std::string>& prompts,
                                   const EncodeOptions& options) const {
  if (prompts.empty()) throw Error("encode: no prompt given");
  if (options.num_images_per_prompt < 1 || options.num_images_per_prompt > 4096)
    throw Error("encode: num_images_per_prompt must be in 1..4096, found " +
                std::to_string(options.num_images_per_prompt));
  const PromptTokens tokens = krea2_prompt_tokens(tokenizer, prompts, options.max_sequence_length);
  for (size_t b = 0; b < prompts.size(); ++b)
    if (tokens.truncated[b] && options.warnings)
      options.warnings->push_back("prompt " + std::to_string(b) + " has " +
                                  std::to_string(tokens.prompt_tokens[b]) +
                                  " tokens; truncated to max_sequence_length " +
                                  std::to_string(options.max_sequence_length) + " (its tail is dropped)");
  const std::vector<int>& taps = options.taps.empty() ? impl_->default_taps : options.taps;
  const Tensor hidden = hidden_states(tokens.input_ids, tokens.attention_mask, tokens.position_ids,
                                      tokens.batch, taps, options.skip_padding, options);
  // Drop the template's prefix rows; repeat each prompt num_images_per_prompt times.
  const int64_t S = tokens.seq_len, P = tokens.prefix_tokens, L = S - P, T = int64_t(taps.size());
  const int64_t D = impl_->config.hidden_size, n = options.num_images_per_prompt, B = tokens.batch;
  TextEmbeddings out;
  out.embeds = Tensor({B * n, L, T, D});
  Tensor mask({B * n, L});
  for (int64_t b = 0; b < B; ++b)
    for (int64_t r = 0; r < n; ++r) {
      const int64_t dst = b * n + r;
      std::copy_n(hidden.ptr() + (b * S + P) * T * D, L * T * D, out.embeds.ptr() + dst * L * T * D);
      for (int64_t i = 0; i < L; ++i)
        mask.data[size_t(dst * L + i)] = tokens.attention_mask[size_t(b * S + P + i)];
    }
  out.mask = std::move(mask);
  return out;
}

}  // namespace krea2
