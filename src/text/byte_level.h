// GPT-2's byte-level alphabet (`bytes_to_unicode`): each of the 256 byte values stands for one printable code
// point, so every byte string is a string of "characters" BPE can merge. Printable Latin-1 bytes ('!'..'~',
// U+00A1..U+00AC, U+00AE..U+00FF) stand for themselves; the other 68 take U+0100.. in byte order (space is
// U+0120 'Ġ', '\n' U+010A 'Ċ').
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace krea2::text {

char32_t byte_to_code_point(uint8_t b);
// The byte a code point stands for; -1 if it is not in the alphabet.
int code_point_to_byte(char32_t cp);

// UTF-8 of the byte-level characters of `bytes`.
std::string byte_level_encode(std::string_view bytes);
// Appends the bytes a byte-level string stands for (valid UTF-8); characters outside the alphabet are copied
// as their UTF-8.
void byte_level_decode_append(std::string_view piece, std::string& out);

}  // namespace krea2::text
