// Read-only memory mapping of a whole file.
#pragma once
#include <cstddef>
#include <string>

namespace krea2 {

class MappedFile {
 public:
  // Throws krea2::Error naming `path` if it cannot be opened or mapped. An empty file maps to size 0.
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::byte* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace krea2
