// The pre-tokenizer: regex splits (HF `Split` with behavior Isolated: every match and every gap between
// matches is a piece), run one after another, with PCRE2 (UTF + UCP, JIT-compiled). `\s` / `\S` are
// rewritten to Unicode White_Space, which is what they mean to Oniguruma (HF tokenizers) and Python's regex
// module; PCRE2's own \s also takes U+180E.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace krea2::text {

// The Qwen2 pattern (tokenizer.json's Split regex; the slow Qwen2Tokenizer's PRETOKENIZE_REGEX).
extern const char* const kQwen2Pattern;
// GPT-2's (HF ByteLevel with use_regex true).
extern const char* const kGpt2Pattern;

// `pattern` with \s and \S replaced by explicit White_Space classes. Throws krea2::Error on \S inside a
// character class (not expressible) or a trailing backslash.
std::string rewrite_white_space(std::string_view pattern);

class PreTokenizer {
 public:
  PreTokenizer();
  ~PreTokenizer();
  PreTokenizer(PreTokenizer&&) noexcept;
  PreTokenizer& operator=(PreTokenizer&&) noexcept;

  // Adds a split by `pattern` (Oniguruma-style, as tokenizer.json writes it). `source` starts error messages.
  void add_split(const std::string& pattern, const std::string& source);
  size_t splits() const;

  // Pieces of valid UTF-8 `text`, in order, covering it exactly. Appends views into `text` to `out`.
  void split(std::string_view text, std::vector<std::string_view>& out) const;

 private:
  struct Regex;
  std::vector<std::unique_ptr<Regex>> regexes_;
};

}  // namespace krea2::text
