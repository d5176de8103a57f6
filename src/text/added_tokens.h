// Cutting added tokens (<|im_start|>, ...) out of a text: leftmost-longest matching (HF's AddedVocabulary, an
// Aho-Corasick LeftmostLongest search), with the lstrip / rstrip flags taking the white space beside a match.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace krea2::text {

class AddedTokenMatcher {
 public:
  void add(std::string text, int32_t id, bool lstrip, bool rstrip);
  bool empty() const { return entries_.empty(); }

  // Splits `s`: on_text(view) for each non-empty stretch between matches, on_token(id) for each match, in
  // order.
  template <class OnText, class OnToken>
  void split(std::string_view s, OnText&& on_text, OnToken&& on_token) const {
    if (entries_.empty()) {
      if (!s.empty()) on_text(s);
      return;
    }
    size_t done = 0, i = 0;
    while (i < s.size()) {
      const Entry* hit = match_at(s, i);
      if (!hit) {
        ++i;
        continue;
      }
      size_t start = i, end = i + hit->text.size();
      if (hit->lstrip) start = strip_left(s, done, start);
      if (hit->rstrip) end = strip_right(s, end);
      if (start > done) on_text(s.substr(done, start - done));
      on_token(hit->id);
      done = i = end;
    }
    if (done < s.size()) on_text(s.substr(done));
  }

 private:
  struct Entry {
    std::string text;
    int32_t id;
    bool lstrip, rstrip;
  };
  const Entry* match_at(std::string_view s, size_t i) const;
  // White space (Unicode White_Space, whole UTF-8 code points) before `pos` down to `floor` / after `pos`.
  static size_t strip_left(std::string_view s, size_t floor, size_t pos);
  static size_t strip_right(std::string_view s, size_t pos);

  std::vector<Entry> entries_;
  std::array<std::vector<uint32_t>, 256> by_first_byte_;  // entry indices, longest first
};

}  // namespace krea2::text
