#include "text/byte_level.h"

#include <array>

#include "text/utf8.h"

namespace krea2::text {

namespace {

struct Tables {
  std::array<char32_t, 256> to_cp{};
  std::array<int16_t, 324> to_byte{};  // code points 0..323 cover the alphabet
  std::array<std::string, 256> utf8;
  Tables() {
    to_byte.fill(-1);
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      to_cp[b] = printable ? char32_t(b) : next++;
      to_byte[to_cp[b]] = int16_t(b);
      append_utf8(utf8[b], to_cp[b]);
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

}  // namespace

char32_t byte_to_code_point(uint8_t b) {
  return tables().to_cp[b];
}

int code_point_to_byte(char32_t cp) {
  return cp < 324 ? tables().to_byte[cp] : -1;
}

std::string byte_level_encode(std::string_view bytes) {
  const Tables& t = tables();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) out += t.utf8[static_cast<unsigned char>(c)];
  return out;
}

void byte_level_decode_append(std::string_view piece, std::string& out) {
  const auto* p = reinterpret_cast<const unsigned char*>(piece.data());
  size_t i = 0;
  while (i < piece.size()) {
    // The piece may come from an untrusted file: decode only complete, valid sequences, copy the rest.
    const size_t start = i;
    char32_t cp = p[i];
    size_t len = 1;
    if (cp >= 0xC0 && cp < 0xE0 && i + 1 < piece.size() && (p[i + 1] & 0xC0) == 0x80) {
      cp = ((cp & 0x1F) << 6) | (p[i + 1] & 0x3F);
      len = 2;
    } else if (cp >= 0x80) {
      // Three- and four-byte sequences are never in the alphabet: copy through.
      len = 1;
      while (start + len < piece.size() && (p[start + len] & 0xC0) == 0x80) ++len;
      out.append(piece.substr(start, len));
      i += len;
      continue;
    }
    const int b = code_point_to_byte(cp);
    if (b >= 0)
      out += char(b);
    else
      out.append(piece.substr(start, len));
    i += len;
  }
}

}  // namespace krea2::text
