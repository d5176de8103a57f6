#include "text/added_tokens.h"

#include <algorithm>
#include <cstring>

#include "text/utf8.h"

namespace krea2::text {

void AddedTokenMatcher::add(std::string text, int32_t id, bool lstrip, bool rstrip) {
  if (text.empty()) return;
  const auto first = static_cast<unsigned char>(text[0]);
  entries_.push_back(Entry{std::move(text), id, lstrip, rstrip});
  auto& list = by_first_byte_[first];
  list.push_back(uint32_t(entries_.size() - 1));
  // Longest first; equal lengths keep insertion order.
  std::stable_sort(list.begin(), list.end(),
                   [&](uint32_t a, uint32_t b) { return entries_[a].text.size() > entries_[b].text.size(); });
}

const AddedTokenMatcher::Entry* AddedTokenMatcher::match_at(std::string_view s, size_t i) const {
  for (uint32_t k : by_first_byte_[static_cast<unsigned char>(s[i])]) {
    const Entry& e = entries_[k];
    if (e.text.size() <= s.size() - i && std::memcmp(s.data() + i, e.text.data(), e.text.size()) == 0)
      return &e;
  }
  return nullptr;
}

size_t AddedTokenMatcher::strip_left(std::string_view s, size_t floor, size_t pos) {
  while (pos > floor) {
    size_t start = pos - 1;
    while (start > floor && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    if (find_invalid_utf8(s.substr(start, pos - start))) break;
    size_t k = start;
    if (!is_white_space(next_code_point(s, k)) || k != pos) break;
    pos = start;
  }
  return pos;
}

size_t AddedTokenMatcher::strip_right(std::string_view s, size_t pos) {
  while (pos < s.size()) {
    size_t len = 1;
    while (pos + len < s.size() && (static_cast<unsigned char>(s[pos + len]) & 0xC0) == 0x80) ++len;
    if (find_invalid_utf8(s.substr(pos, len))) break;
    size_t k = pos;
    if (!is_white_space(next_code_point(s, k))) break;
    pos = k;
  }
  return pos;
}

}  // namespace krea2::text
