// Streaming safetensors writer: every tensor is declared first (the header needs all offsets), then their
// bytes are written in declaration order, chunk by chunk, so a file larger than memory can be written.
// PATH.tmp is renamed to PATH by finish().
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/atomic_file.h"
#include "krea2/tensor.h"

namespace krea2 {

class SafetensorsStreamWriter {
 public:
  explicit SafetensorsStreamWriter(const std::string& path);

  // Declares the next tensor (an element dtype); returns its size in bytes.
  uint64_t add_tensor(const std::string& name, DType dtype, const Shape& shape);
  void set_metadata(const std::string& key, const std::string& value);
  // Consecutive chunks of the next tensor's bytes, in declaration order (the header goes out first).
  void write_chunk(const std::string& name, const void* data, size_t nbytes);
  // Checks every tensor was written in full, renames PATH.tmp to PATH.
  void finish();

 private:
  struct Declared {
    std::string name;
    DType dtype;
    Shape shape;
    uint64_t nbytes;
  };
  void write_header();
  [[noreturn]] void fail(const std::string& msg) const;

  std::string path_;
  std::unique_ptr<AtomicFile> file_;
  std::map<std::string, std::string> metadata_;
  std::vector<Declared> tensors_;
  bool header_written_ = false;
  size_t current_ = 0;
  uint64_t current_done_ = 0;
};

}  // namespace krea2
