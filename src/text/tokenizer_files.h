// Reading tokenizer files into one neutral description (TokenizerData), checked for syntax and types;
// tokenizer.cpp then checks it as a whole (unknown merge tokens, id conflicts) and builds the tokenizer.
// Formats: HF tokenizer.json; the slow-tokenizer files vocab.json + merges.txt (+ tokenizer_config.json's
// added_tokens_decoder, legacy added_tokens.json); GGUF tokenizer.ggml.* metadata. Every error is a
// krea2::Error starting with the file ("PATH: ") and naming the key or line.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace krea2::text {

// Ids must be below this (so a file cannot make the id table huge): 4M, above every real vocabulary.
inline constexpr int64_t kMaxTokenId = (int64_t(1) << 22) - 1;
// Tokenizer files read whole are refused above this size.
inline constexpr uint64_t kMaxTokenizerFileBytes = uint64_t(1) << 30;

struct AddedTokenSpec {
  int64_t id = 0;
  std::string content;
  bool special = false;
  bool normalized = false;  // matched after normalisation (else on the raw text)
  bool lstrip = false, rstrip = false;
  std::string where;  // for error messages: "PATH: added_tokens[3]"
};

struct MergeSpec {
  std::string left, right;
  uint32_t where = 0;  // line number (merges.txt) or array index
};

struct TokenizerData {
  std::string format;                                  // "tokenizer.json", "vocab.json + merges.txt", "GGUF"
  std::string vocab_source;                            // what vocab errors name ("PATH: model.vocab")
  std::vector<std::pair<std::string, int64_t>> vocab;  // BPE tokens, file order
  std::string merges_source;                           // "PATH: line" or "PATH: model.merges"
  bool merges_by_line = false;                         // where = line number (else an array index)
  std::vector<MergeSpec> merges;
  std::vector<AddedTokenSpec> added;
  std::vector<std::pair<int64_t, std::string>> unused;  // GGUF unused slots: id table only
  std::vector<std::string> split_patterns;              // pre-tokenizer regexes, in order
  std::string pattern_source;
  bool nfc = true;
  bool ignore_merges = false;
  std::optional<std::string> unk_token;
};

TokenizerData read_tokenizer_json(const std::string& path);
// The same from bytes in memory (`source` names them in errors).
TokenizerData parse_tokenizer_json(std::string_view text, const std::string& source);
// vocab.json + merges.txt; `config_path` / `added_path` may be empty (absent).
TokenizerData read_vocab_merges(const std::string& vocab_path, const std::string& merges_path,
                                const std::string& config_path, const std::string& added_path);
TokenizerData read_gguf_tokenizer(const std::string& path);

// Resolves Tokenizer::load's path to the files and reads them.
TokenizerData read_tokenizer_files(const std::string& path);

}  // namespace krea2::text
