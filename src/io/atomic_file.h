// A file written under PATH.tmp and renamed to PATH only when complete, so a failure never leaves a partial
// file under PATH.
#pragma once
#include <cstddef>
#include <string>

namespace krea2 {

class AtomicFile {
 public:
  // Creates PATH.tmp; throws krea2::Error naming the path on failure.
  explicit AtomicFile(const std::string& path);
  ~AtomicFile();  // removes PATH.tmp unless committed
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t n);
  // fsync, close, rename PATH.tmp -> PATH.
  void commit();
  const std::string& path() const { return path_; }

 private:
  [[noreturn]] void fail(const std::string& what) const;
  std::string path_, tmp_;
  int fd_ = -1;
  bool committed_ = false;
};

}  // namespace krea2
