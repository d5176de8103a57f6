// The Qwen2-family byte-level BPE tokenizer (what Krea 2's Qwen3-VL text encoder reads), byte-exact with HF
// `tokenizer(text).input_ids`: added tokens cut out of the raw text (leftmost-longest), the rest
// NFC-normalised, split by the pre-tokenizer regex, mapped byte -> unicode (GPT-2 table) and merged by merge
// rank.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace krea2 {

class Tokenizer {
 public:
  // path: a tokenizer.json file; a vocab.json file (merges.txt and tokenizer_config.json beside it); a folder
  // holding tokenizer.json, or vocab.json + merges.txt (+ tokenizer_config.json / added_tokens.json); a
  // folder whose `tokenizer/` subfolder is such a folder (a diffusers pipeline root); or a .gguf file with
  // tokenizer.ggml.* metadata (model "gpt2", tokens, token_type, merges). Throws krea2::Error naming the file
  // and what is wrong.
  static Tokenizer load(const std::string& path);

  // Token ids of `text` exactly as HF `tokenizer(text).input_ids` (no BOS/EOS). Added tokens in the text are
  // matched first (leftmost-longest, on the raw text), the rest is NFC-normalised, split by the regex,
  // byte-level mapped and BPE-merged. Invalid UTF-8: throws krea2::Error naming the byte offset.
  std::vector<int32_t> encode(std::string_view text) const;
  // The byte-level piece of each id (vocab string, e.g. "\u0120red" as UTF-8; an added token's text), for
  // --json and tests. krea2::Error for an id that names no token.
  std::string token_text(int32_t id) const;
  // Bytes of the ids joined (byte-level decoded; added tokens as their text). krea2::Error for an unknown id.
  std::string decode(const std::vector<int32_t>& ids) const;
  std::optional<int32_t> find_token(std::string_view token_text) const;  // vocab or added token
  int64_t vocab_size() const;                                            // largest id + 1
  std::string describe() const;  // "tokenizer.json, 151643 tokens, 151387 merges, 26 added"

  // Internal (src/text/tokenizer_impl.h): the loaders build an Impl and wrap it.
  struct Impl;
  explicit Tokenizer(std::shared_ptr<const Impl> impl);

 private:
  std::shared_ptr<const Impl> impl_;  // immutable once built: copies share it, encode is thread-safe
};

}  // namespace krea2
