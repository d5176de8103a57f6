#include "io/safetensors_stream.h"

#include <nlohmann/json.hpp>

#include "krea2/error.h"

namespace krea2 {

SafetensorsStreamWriter::SafetensorsStreamWriter(const std::string& path)
    : path_(path), file_(std::make_unique<AtomicFile>(path)) {}

void SafetensorsStreamWriter::fail(const std::string& msg) const {
  throw Error(path_ + ": " + msg);
}

uint64_t SafetensorsStreamWriter::add_tensor(const std::string& name, DType dtype, const Shape& shape) {
  if (header_written_) fail("tensor '" + name + "' declared after the data started");
  if (!dtype_is_safetensors(dtype) || dtype_size(dtype) == 0)
    fail("tensor '" + name + "': safetensors cannot store " + std::string(dtype_name(dtype)));
  for (const Declared& d : tensors_)
    if (d.name == name) fail("tensor '" + name + "' declared twice");
  uint64_t nbytes = dtype_size(dtype);
  for (int64_t d : shape) {
    if (d < 0) fail("tensor '" + name + "': negative dimension in " + shape_str(shape));
    if (__builtin_mul_overflow(nbytes, uint64_t(d), &nbytes)) fail("tensor '" + name + "': shape too large");
  }
  tensors_.push_back({name, dtype, shape, nbytes});
  return nbytes;
}

void SafetensorsStreamWriter::set_metadata(const std::string& key, const std::string& value) {
  if (header_written_) fail("metadata '" + key + "' set after the data started");
  metadata_[key] = value;
}

void SafetensorsStreamWriter::write_header() {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata_.empty()) {
    auto& meta = header["__metadata__"] = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata_) meta[k] = v;
  }
  uint64_t offset = 0;
  for (const Declared& t : tensors_) {
    header[t.name] = {{"dtype", std::string(dtype_name(t.dtype))},
                      {"shape", t.shape},
                      {"data_offsets", nlohmann::ordered_json::array({offset, offset + t.nbytes})}};
    offset += t.nbytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // the data block starts 8-byte aligned
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = uint8_t((uint64_t(text.size()) >> (8 * i)) & 0xff);
  file_->write(len, 8);
  file_->write(text.data(), text.size());
  header_written_ = true;
}

void SafetensorsStreamWriter::write_chunk(const std::string& name, const void* data, size_t nbytes) {
  if (!header_written_) write_header();
  while (current_ < tensors_.size() && tensors_[current_].nbytes == 0 && tensors_[current_].name != name)
    ++current_;
  if (current_ >= tensors_.size() || tensors_[current_].name != name)
    fail("tensor '" + name + "' written out of declaration order");
  const Declared& t = tensors_[current_];
  if (current_done_ + nbytes > t.nbytes)
    fail("tensor '" + name + "': " + std::to_string(current_done_ + nbytes) + " bytes written, it holds " +
         std::to_string(t.nbytes));
  file_->write(data, nbytes);
  current_done_ += nbytes;
  if (current_done_ == t.nbytes) {
    ++current_;
    current_done_ = 0;
  }
}

void SafetensorsStreamWriter::finish() {
  if (!header_written_) write_header();
  while (current_ < tensors_.size() && tensors_[current_].nbytes == 0) ++current_;
  if (current_ != tensors_.size()) fail("tensor '" + tensors_[current_].name + "' was not written in full");
  file_->commit();
}

}  // namespace krea2
