// Streaming GGUF v3 writer (the layout gguf-py's GGUFWriter and ggml write): metadata and tensor infos first,
// then each tensor's bytes in declaration order, each padded to the alignment. Tensor data goes straight to
// the file, so a model far larger than memory can be written tensor by tensor (or chunk by chunk). Output
// goes to PATH.tmp, renamed to PATH by finish(); an unfinished writer removes PATH.tmp.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "io/gguf.h"
#include "krea2/tensor.h"

namespace krea2 {

class AtomicFile;

class GgufWriter {
 public:
  // `alignment`: a nonzero power of two; general.alignment is written only if it is not 32. Creates PATH.tmp.
  explicit GgufWriter(const std::string& path, uint32_t alignment = kGgufDefaultAlignment);
  ~GgufWriter();  // if finish() did not complete: closes and removes PATH.tmp
  GgufWriter(const GgufWriter&) = delete;
  GgufWriter& operator=(const GgufWriter&) = delete;

  // Metadata, written in the order set; each key once, before the header is written. The value must be
  // consistent (its data alternative matches its type, integers in range, bools 0/1, arrays nested at most
  // kGgufMaxArrayDepth deep). general.alignment may be set only to the writer's alignment (as u32).
  void set(const std::string& key, GgufValue value);
  void set_u32(const std::string& key, uint32_t v) { set(key, GgufValue::u32(v)); }
  void set_i32(const std::string& key, int32_t v) { set(key, GgufValue::i32(v)); }
  void set_u64(const std::string& key, uint64_t v) { set(key, GgufValue::u64(v)); }
  void set_f32(const std::string& key, float v) { set(key, GgufValue::f32(v)); }
  void set_bool(const std::string& key, bool v) { set(key, GgufValue::boolean(v)); }
  void set_string(const std::string& key, std::string v) { set(key, GgufValue::string(std::move(v))); }
  void set_i32_array(const std::string& key, const std::vector<int32_t>& v) {
    set(key, GgufValue::array(GgufArray::of_i32(v)));
  }
  void set_string_array(const std::string& key, std::vector<std::string> v) {
    set(key, GgufValue::array(GgufArray::of_strings(std::move(v))));
  }

  // Declares the next tensor: shape in torch order (at most 4 dims, written reversed as ggml dims); the last
  // dim (the row) must be a multiple of the dtype's block. Returns its size in bytes.
  size_t add_tensor(const std::string& name, DType dtype, const Shape& shape);

  // Writes the metadata and tensor infos. Called by the first write_tensor*() or by finish() if not before;
  // nothing can be set or declared afterwards.
  void write_header();
  // All bytes of the next tensor in declaration order, which must be `name`.
  void write_tensor(const std::string& name, const void* data, size_t nbytes);
  // Part of the next tensor's bytes: consecutive chunks, the tensor is complete when its size is reached.
  void write_tensor_chunk(const std::string& name, const void* data, size_t nbytes);

  // Checks that every tensor was written in full, flushes, fsyncs, closes and renames PATH.tmp to PATH.
  void finish();

  const std::string& path() const { return path_; }
  uint32_t alignment() const { return alignment_; }

 private:
  struct Declared {
    std::string name;
    DType dtype;
    Shape shape;
    uint64_t nbytes;
    uint64_t offset;  // relative to the data section
  };

  [[noreturn]] void fail(const std::string& msg) const;
  void check_usable() const;
  void skip_empty_tensors(const std::string& name);
  void write_raw(const void* data, size_t n);
  void pad_to_alignment();

  std::string path_;
  uint32_t alignment_;
  std::unique_ptr<AtomicFile> file_;  // PATH.tmp until finish() renames it
  bool header_written_ = false, finished_ = false, broken_ = false;
  std::set<std::string, std::less<>> keys_, names_;
  std::string kv_bytes_;  // the metadata entries set so far, encoded
  uint64_t kv_count_ = 0;
  bool alignment_set_ = false;
  std::vector<Declared> tensors_;
  uint64_t data_size_ = 0;     // sum of the padded tensor sizes declared so far
  uint64_t written_ = 0;       // bytes written to the file so far
  size_t current_ = 0;         // next tensor to write
  uint64_t current_done_ = 0;  // bytes of it written so far
};

}  // namespace krea2
