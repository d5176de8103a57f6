// UTF-8 helpers of the tokenizer: strict validation (no overlong forms, surrogates or code points above
// U+10FFFF), decoding one code point, encoding one, and NFC normalisation (utf8proc).
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace krea2::text {

// Offset of the first byte that does not start a valid UTF-8 sequence; nullopt if all of `s` is valid.
std::optional<size_t> find_invalid_utf8(std::string_view s);

// Decodes the code point at s[i] of valid UTF-8, advancing i past it.
char32_t next_code_point(std::string_view s, size_t& i);

void append_utf8(std::string& out, char32_t cp);

// NFC of valid UTF-8 (ASCII is returned as is, without a copy through utf8proc).
std::string nfc(std::string_view s);

// Unicode White_Space (what \s means to Oniguruma and Python's regex): \t..\r, space, U+0085, U+00A0, U+1680,
// U+2000..U+200A, U+2028, U+2029, U+202F, U+205F, U+3000.
bool is_white_space(char32_t cp);

}  // namespace krea2::text
