// Byte-level construction of safetensors files, valid or deliberately malformed, for reader tests.
#pragma once
#include <cstdint>
#include <string>

namespace krea2::test {

// 8 bytes, little-endian.
std::string le64(uint64_t v);

// u64 header length + `header` + `data`. `header_len` overrides the length field (default: header.size()).
std::string craft_safetensors(const std::string& header, const std::string& data = "",
                              int64_t header_len = -1);

// Writes craft_safetensors(...) to `path` and returns `path`.
std::string write_crafted(const std::string& path, const std::string& header, const std::string& data = "",
                          int64_t header_len = -1);

}  // namespace krea2::test
