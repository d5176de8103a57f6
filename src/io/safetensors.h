// safetensors: mmap'd reader with full header validation, and an atomic writer.
// Format: u64 little-endian header length n, n bytes of JSON {name: {dtype, shape, data_offsets:[b,e]},
// "__metadata__": {str: str}}, then the data block; offsets are relative to the data block.
#pragma once
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "io/mapped_file.h"
#include "krea2/tensor.h"

namespace krea2 {

// Header larger than this is rejected before it is read (a malicious length cannot make us allocate).
inline constexpr size_t kMaxSafetensorsHeaderBytes = 100u << 20;

// A safetensors file's header parsed from bytes in memory: views into those bytes, and the metadata.
struct SafetensorsHeader {
  std::vector<TensorView> tensors;  // in header order
  std::map<std::string, std::string> metadata;
};

// The validation SafetensorsFile does (below), over the whole file's bytes; `source` (the path) starts every
// message. The views point into `bytes`.
SafetensorsHeader parse_safetensors(std::span<const std::byte> bytes, const std::string& source);

class SafetensorsFile {
 public:
  // Maps and validates: header size bounds, valid JSON object, every entry has a known dtype, non-negative
  // shape, data_offsets [begin, end] with end - begin == numel * dtype_size, inside the data block, no two
  // ranges overlapping. Throws krea2::Error naming the file (and tensor) on any violation.
  explicit SafetensorsFile(const std::string& path);

  const std::string& path() const { return file_.path(); }
  // In header order.
  const std::vector<TensorView>& tensors() const { return tensors_; }
  const TensorView* find(const std::string& name) const;  // nullptr if absent
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  MappedFile file_;
  std::vector<TensorView> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// A tensor to write: bytes are copied from `data` (must hold numel * dtype_size bytes).
struct TensorToWrite {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;
  const void* data = nullptr;
};

// Writes to `path + ".tmp"` then renames, so a failure never leaves a partial file under `path`.
// Header padded with spaces to a multiple of 8 bytes so the data block is aligned.
void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// Convenience: float32 tensors by name.
void write_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace krea2
