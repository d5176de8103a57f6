// Reading a small text file (a config.json, a PNG for tests) whole, with a bound on its size.
#pragma once
#include <cstdint>
#include <string>

namespace krea2 {

// The bytes of `path`. krea2::Error "<path>: cannot open <what>" when it cannot be read, and one naming the
// size when it is larger than max_bytes (so a hostile path never makes a huge allocation).
std::string read_text_file(const std::string& path, const std::string& what,
                           uint64_t max_bytes = uint64_t(64) << 20);

}  // namespace krea2
