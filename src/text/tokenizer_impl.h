// Tokenizer's implementation state, built once from TokenizerData and immutable afterwards (shared by copies;
// encode() only reads it, so concurrent calls are safe).
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "krea2/tokenizer.h"
#include "text/added_tokens.h"
#include "text/bpe.h"
#include "text/pretokenize.h"
#include "text/tokenizer_files.h"

namespace krea2 {

struct Tokenizer::Impl {
  enum Kind : uint8_t { kNone = 0, kVocab = 1, kAdded = 2, kUnused = 3 };

  std::string format;
  size_t vocab_tokens = 0, added_tokens = 0, unused_tokens = 0;

  // id -> text: pool[offsets[id], offsets[id + 1]), kinds[id].
  std::string pool;
  std::vector<size_t> offsets;
  std::vector<uint8_t> kinds;

  std::unordered_map<std::string, int32_t> vocab;  // BPE tokens
  std::unordered_map<std::string, int32_t> added;  // added tokens by text
  text::AddedTokenMatcher raw_matcher;             // normalized: false (matched on the raw text)
  text::AddedTokenMatcher normalized_matcher;      // normalized: true (matched after NFC)
  std::array<int32_t, 256> byte_ids{};
  int32_t unk = -1;
  text::BpeMerges merges;
  text::PreTokenizer pre;
  bool nfc = true;
  bool ignore_merges = false;

  std::string_view text_of(int32_t id) const {
    return std::string_view(pool).substr(offsets[size_t(id)], offsets[size_t(id) + 1] - offsets[size_t(id)]);
  }
  // Pre-tokenizes and merges normalised text without added tokens.
  void encode_plain(std::string_view s, std::vector<int32_t>& out) const;
};

namespace text {

// Checks the description as a whole (vocab ids, merges against the vocab, added-token conflicts, the regex)
// and builds the tokenizer.
Tokenizer make_tokenizer(TokenizerData data);

// A tokenizer from tokenizer.json bytes in memory (for the fuzzer and tests).
Tokenizer tokenizer_from_json_text(std::string_view json_text, const std::string& source);

}  // namespace text

}  // namespace krea2
