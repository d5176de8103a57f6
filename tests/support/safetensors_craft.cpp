#include "support/safetensors_craft.h"

#include "support/test_util.h"

namespace krea2::test {

std::string le64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[size_t(i)] = static_cast<char>((v >> (8 * i)) & 0xff);
  return s;
}

std::string craft_safetensors(const std::string& header, const std::string& data, int64_t header_len) {
  uint64_t n = header_len < 0 ? header.size() : uint64_t(header_len);
  return le64(n) + header + data;
}

std::string write_crafted(const std::string& path, const std::string& header, const std::string& data,
                          int64_t header_len) {
  write_file(path, craft_safetensors(header, data, header_len));
  return path;
}

}  // namespace krea2::test
