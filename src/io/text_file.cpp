#include "io/text_file.h"

#include <fstream>
#include <sstream>

#include "krea2/error.h"

namespace krea2 {

std::string read_text_file(const std::string& path, const std::string& what, uint64_t max_bytes) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw Error(path + ": cannot open " + what);
  const std::streamoff size = in.tellg();
  if (size < 0) throw Error(path + ": cannot open " + what);
  if (uint64_t(size) > max_bytes)
    throw Error(path + ": " + what + " of " + std::to_string(size) + " bytes is larger than the " +
                std::to_string(max_bytes) + "-byte limit");
  in.seekg(0);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace krea2
