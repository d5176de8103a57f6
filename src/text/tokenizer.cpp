#include "krea2/tokenizer.h"

#include <algorithm>
#include <cstdio>

#include "krea2/error.h"
#include "text/byte_level.h"
#include "text/tokenizer_impl.h"
#include "text/utf8.h"

namespace krea2 {

namespace {

std::string shown(std::string_view s) {
  std::string out = "\"";
  for (char c : s.substr(0, 60)) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7F || c == '"' || c == '\\') {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", u);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + (s.size() > 60 ? "...\"" : "\"");
}

}  // namespace

void Tokenizer::Impl::encode_plain(std::string_view s, std::vector<int32_t>& out) const {
  thread_local std::vector<std::string_view> pieces;
  pieces.clear();
  pre.split(s, pieces);
  for (std::string_view piece : pieces) {
    if (ignore_merges) {
      auto it = vocab.find(text::byte_level_encode(piece));
      if (it != vocab.end()) {
        out.push_back(it->second);
        continue;
      }
    }
    merges.encode(piece, byte_ids, unk, out);
  }
}

Tokenizer::Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

Tokenizer Tokenizer::load(const std::string& path) {
  return text::make_tokenizer(text::read_tokenizer_files(path));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  if (const auto bad = text::find_invalid_utf8(text)) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "invalid UTF-8 in the text at byte offset %zu (byte 0x%02X)", *bad,
                  static_cast<unsigned char>(text[*bad]));
    throw Error(buf);
  }
  const Impl& t = *impl_;
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  auto push_id = [&](int32_t id) { out.push_back(id); };
  t.raw_matcher.split(
      text,
      [&](std::string_view segment) {
        if (!t.nfc) {
          t.normalized_matcher.split(
              segment, [&](std::string_view s) { t.encode_plain(s, out); }, push_id);
          return;
        }
        const std::string normalized = text::nfc(segment);
        t.normalized_matcher.split(
            normalized, [&](std::string_view s) { t.encode_plain(s, out); }, push_id);
      },
      push_id);
  return out;
}

std::string Tokenizer::token_text(int32_t id) const {
  const Impl& t = *impl_;
  if (id < 0 || size_t(id) >= t.kinds.size() || t.kinds[size_t(id)] == Impl::kNone)
    throw Error("token id " + std::to_string(id) + " is not in the tokenizer (" + describe() + ")");
  return std::string(t.text_of(id));
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  const Impl& t = *impl_;
  std::string out;
  for (int32_t id : ids) {
    if (id < 0 || size_t(id) >= t.kinds.size() || t.kinds[size_t(id)] == Impl::kNone)
      throw Error("cannot decode token id " + std::to_string(id) + ": not in the tokenizer (" + describe() +
                  ")");
    if (t.kinds[size_t(id)] == Impl::kVocab)
      text::byte_level_decode_append(t.text_of(id), out);
    else
      out.append(t.text_of(id));
  }
  return out;
}

std::optional<int32_t> Tokenizer::find_token(std::string_view token_text) const {
  const Impl& t = *impl_;
  const std::string key(token_text);
  if (auto it = t.added.find(key); it != t.added.end()) return it->second;
  if (auto it = t.vocab.find(key); it != t.vocab.end()) return it->second;
  return std::nullopt;
}

int64_t Tokenizer::vocab_size() const {
  return int64_t(impl_->kinds.size());
}

std::string Tokenizer::describe() const {
  const Impl& t = *impl_;
  std::string s = t.format + ", " + std::to_string(t.vocab_tokens) + " tokens, " +
                  std::to_string(t.merges.size()) + " merges, " + std::to_string(t.added_tokens) + " added";
  if (t.unused_tokens) s += ", " + std::to_string(t.unused_tokens) + " unused";
  return s;
}

namespace text {

Tokenizer make_tokenizer(TokenizerData d) {
  auto impl = std::make_shared<Tokenizer::Impl>();
  Tokenizer::Impl& t = *impl;
  t.format = d.format;
  t.nfc = d.nfc;
  t.ignore_merges = d.ignore_merges;

  int64_t max_id = -1;
  for (const auto& [tok, id] : d.vocab) max_id = std::max(max_id, id);
  for (const auto& a : d.added) max_id = std::max(max_id, a.id);
  for (const auto& [id, tok] : d.unused) max_id = std::max(max_id, id);
  if (max_id < 0) throw Error(d.vocab_source + ": the tokenizer has no tokens");
  const size_t n = size_t(max_id) + 1;  // <= kMaxTokenId + 1, checked by the readers
  std::vector<const std::string*> texts(n, nullptr);
  t.kinds.assign(n, Tokenizer::Impl::kNone);

  t.vocab.reserve(d.vocab.size());
  for (const auto& [tok, id] : d.vocab) {
    if (texts[size_t(id)])
      throw Error(d.vocab_source + ": id " + std::to_string(id) + " is given to both " +
                  shown(*texts[size_t(id)]) + " and " + shown(tok));
    if (!t.vocab.emplace(tok, int32_t(id)).second)
      throw Error(d.vocab_source + ": token " + shown(tok) + " appears twice (ids " +
                  std::to_string(t.vocab[tok]) + " and " + std::to_string(id) + ")");
    texts[size_t(id)] = &tok;
    t.kinds[size_t(id)] = Tokenizer::Impl::kVocab;
  }
  t.vocab_tokens = d.vocab.size();

  std::vector<const AddedTokenSpec*> added_by_id(n, nullptr);
  for (const AddedTokenSpec& a : d.added) {
    const size_t id = size_t(a.id);
    if (const AddedTokenSpec* prev = added_by_id[id]) {
      if (prev->content == a.content) continue;  // listed twice (e.g. added_tokens.json and the config)
      throw Error(a.where + ": added token " + shown(a.content) + " has id " + std::to_string(a.id) +
                  ", which " + prev->where + " gives to " + shown(prev->content));
    }
    if (auto it = t.added.find(a.content); it != t.added.end())
      throw Error(a.where + ": added token " + shown(a.content) + " has id " + std::to_string(a.id) +
                  " but was already added with id " + std::to_string(it->second));
    if (t.kinds[id] == Tokenizer::Impl::kVocab && *texts[id] != a.content)
      throw Error(a.where + ": added token " + shown(a.content) + " has id " + std::to_string(a.id) +
                  ", which the vocab gives to " + shown(*texts[id]));
    if (auto it = t.vocab.find(a.content); it != t.vocab.end() && size_t(it->second) != id)
      throw Error(a.where + ": added token " + shown(a.content) + " has id " + std::to_string(a.id) +
                  " but the vocab has it as id " + std::to_string(it->second));
    added_by_id[id] = &a;
    t.added.emplace(a.content, int32_t(a.id));
    if (t.kinds[id] == Tokenizer::Impl::kNone) {
      texts[id] = &a.content;
      t.kinds[id] = Tokenizer::Impl::kAdded;
    }
    ++t.added_tokens;
    // Text that is not valid UTF-8 could match inside a code point: such a token is never matched.
    if (find_invalid_utf8(a.content)) continue;
    if (a.normalized && t.nfc)
      t.normalized_matcher.add(nfc(a.content), int32_t(a.id), a.lstrip, a.rstrip);
    else if (a.normalized)
      t.normalized_matcher.add(a.content, int32_t(a.id), a.lstrip, a.rstrip);
    else
      t.raw_matcher.add(a.content, int32_t(a.id), a.lstrip, a.rstrip);
  }
  for (const auto& [id, tok] : d.unused) {
    if (t.kinds[size_t(id)] != Tokenizer::Impl::kNone) continue;
    texts[size_t(id)] = &tok;
    t.kinds[size_t(id)] = Tokenizer::Impl::kUnused;
    ++t.unused_tokens;
  }

  size_t total = 0;
  for (const std::string* s : texts) total += s ? s->size() : 0;
  t.pool.reserve(total);
  t.offsets.resize(n + 1);
  for (size_t i = 0; i < n; ++i) {
    t.offsets[i] = t.pool.size();
    if (texts[i]) t.pool += *texts[i];
  }
  t.offsets[n] = t.pool.size();

  for (int b = 0; b < 256; ++b) {
    std::string ch;
    append_utf8(ch, byte_to_code_point(uint8_t(b)));
    auto it = t.vocab.find(ch);
    t.byte_ids[size_t(b)] = it == t.vocab.end() ? -1 : it->second;
  }
  if (d.unk_token) {
    auto it = t.vocab.find(*d.unk_token);
    if (it == t.vocab.end())
      throw Error(d.vocab_source + ": unk_token " + shown(*d.unk_token) + " is not in the vocab");
    t.unk = it->second;
  }

  t.merges.reserve(d.merges.size());
  std::string joined;
  for (size_t rank = 0; rank < d.merges.size(); ++rank) {
    const MergeSpec& m = d.merges[rank];
    auto where = [&] {
      return d.merges_by_line ? d.merges_source + ": line " + std::to_string(m.where)
                              : d.merges_source + "[" + std::to_string(m.where) + "]";
    };
    auto l = t.vocab.find(m.left);
    auto r = t.vocab.find(m.right);
    for (auto [it, tok] : {std::pair{l, &m.left}, std::pair{r, &m.right}})
      if (it == t.vocab.end())
        throw Error(where() + ": merge " + shown(m.left + " " + m.right) + " names " + shown(*tok) +
                    ", which is not in the vocab");
    joined = m.left;
    joined += m.right;
    auto merged = t.vocab.find(joined);
    if (merged == t.vocab.end())
      throw Error(where() + ": merge " + shown(m.left + " " + m.right) + " makes " + shown(joined) +
                  ", which is not in the vocab");
    t.merges.add(l->second, r->second, merged->second, int32_t(rank));
  }

  for (const std::string& p : d.split_patterns) t.pre.add_split(p, d.pattern_source);
  return Tokenizer(std::move(impl));
}

Tokenizer tokenizer_from_json_text(std::string_view json_text, const std::string& source) {
  return make_tokenizer(parse_tokenizer_json(json_text, source));
}

}  // namespace text

}  // namespace krea2
