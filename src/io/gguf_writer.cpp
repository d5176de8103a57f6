#include "io/gguf_writer.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>

#include "io/atomic_file.h"
#include "krea2/error.h"

namespace krea2 {

namespace {

void put_le(std::string& out, uint64_t v, size_t n) {
  for (size_t i = 0; i < n; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}

void put_string(std::string& out, const std::string& s) {
  put_le(out, s.size(), 8);
  out += s;
}

uint64_t align_up(uint64_t n, uint64_t a) {
  return (n + a - 1) / a * a;
}

std::string q(const std::string& name) {
  return "'" + name + "'";
}

// Element encoding of the fixed-size types: (bytes, unsigned max or signed range).
struct Scalar {
  size_t bytes;
  bool is_signed, is_float;
};

std::optional<Scalar> scalar_info(GgufType t) {
  switch (t) {
    case GgufType::U8:
    case GgufType::BOOL:
      return Scalar{1, false, false};
    case GgufType::I8:
      return Scalar{1, true, false};
    case GgufType::U16:
      return Scalar{2, false, false};
    case GgufType::I16:
      return Scalar{2, true, false};
    case GgufType::U32:
      return Scalar{4, false, false};
    case GgufType::I32:
      return Scalar{4, true, false};
    case GgufType::F32:
      return Scalar{4, false, true};
    case GgufType::U64:
      return Scalar{8, false, false};
    case GgufType::I64:
      return Scalar{8, true, false};
    case GgufType::F64:
      return Scalar{8, false, true};
    default:
      return std::nullopt;
  }
}

// Encodes values, checking that each is consistent; `what` names the value for a message.
class ValueEncoder {
 public:
  ValueEncoder(std::string& out, const std::string& path) : out_(out), path_(path) {}

  void value(const GgufValue& v, const std::string& what) {
    put_le(out_, uint32_t(v.type), 4);
    if (v.type == GgufType::STRING) {
      const auto* s = std::get_if<std::string>(&v.data);
      if (!s) inconsistent(what, v.type);
      put_string(out_, *s);
    } else if (v.type == GgufType::ARRAY) {
      const auto* a = std::get_if<GgufArray>(&v.data);
      if (!a) inconsistent(what, v.type);
      array(*a, what, 1);
    } else if (auto sc = scalar_info(v.type)) {
      if (sc->is_float) {
        const auto* d = std::get_if<double>(&v.data);
        if (!d) inconsistent(what, v.type);
        put_float(*d, sc->bytes);
      } else if (sc->is_signed) {
        const auto* i = std::get_if<int64_t>(&v.data);
        if (!i) inconsistent(what, v.type);
        put_signed(*i, v.type, what);
      } else {
        const auto* u = std::get_if<uint64_t>(&v.data);
        if (!u) inconsistent(what, v.type);
        put_unsigned(*u, v.type, what);
      }
    } else {
      fail(what + ": invalid value type " + std::to_string(uint32_t(v.type)));
    }
  }

 private:
  [[noreturn]] void fail(const std::string& msg) const { throw Error(path_ + ": " + msg); }
  [[noreturn]] void inconsistent(const std::string& what, GgufType t) const {
    fail(what + ": a " + std::string(gguf_type_name(t)) + " value holding another kind of data");
  }

  void put_float(double d, size_t bytes) {
    uint64_t bits = 0;
    if (bytes == 4) {
      const float f = static_cast<float>(d);
      uint32_t b;
      std::memcpy(&b, &f, 4);
      bits = b;
    } else {
      std::memcpy(&bits, &d, 8);
    }
    put_le(out_, bits, bytes);
  }

  void put_unsigned(uint64_t u, GgufType t, const std::string& what) {
    const size_t bytes = scalar_info(t)->bytes;
    const uint64_t max = t == GgufType::BOOL ? 1
                         : bytes == 8        ? ~uint64_t(0)
                                             : (uint64_t(1) << (8 * bytes)) - 1;
    if (u > max) fail(what + ": " + std::to_string(u) + " does not fit in " + std::string(gguf_type_name(t)));
    put_le(out_, u, bytes);
  }

  void put_signed(int64_t i, GgufType t, const std::string& what) {
    const size_t bytes = scalar_info(t)->bytes;
    if (bytes < 8) {
      const int64_t lim = int64_t(1) << (8 * bytes - 1);
      if (i < -lim || i >= lim)
        fail(what + ": " + std::to_string(i) + " does not fit in " + std::string(gguf_type_name(t)));
    }
    put_le(out_, static_cast<uint64_t>(i), bytes);
  }

  void array(const GgufArray& a, const std::string& what, int depth) {
    const auto sc = scalar_info(a.type);
    if (!sc && a.type != GgufType::STRING && a.type != GgufType::ARRAY)
      fail(what + ": invalid array element type " + std::to_string(uint32_t(a.type)));
    // Only the vector that the element type selects may hold elements (others would be silently lost).
    const size_t held = a.uints.size() + a.ints.size() + a.floats.size() + a.strings.size() + a.arrays.size();
    if (held != a.size())
      fail(what + ": array of " + std::string(gguf_type_name(a.type)) + " holds elements of another type");
    put_le(out_, uint32_t(a.type), 4);
    put_le(out_, a.size(), 8);
    if (a.type == GgufType::STRING) {
      for (const std::string& s : a.strings) put_string(out_, s);
    } else if (a.type == GgufType::ARRAY) {
      if (depth >= kGgufMaxArrayDepth)  // as the reader: the declaration alone is too deep
        fail(what + ": arrays nested deeper than " + std::to_string(kGgufMaxArrayDepth) + " levels");
      for (size_t i = 0; i < a.arrays.size(); ++i)
        array(a.arrays[i], what + "[" + std::to_string(i) + "]", depth + 1);
    } else if (sc->is_float) {
      for (double d : a.floats) put_float(d, sc->bytes);
    } else if (sc->is_signed) {
      for (int64_t i : a.ints) put_signed(i, a.type, what);
    } else {
      for (uint64_t u : a.uints) put_unsigned(u, a.type, what);
    }
  }

  std::string& out_;
  const std::string& path_;
};

}  // namespace

GgufWriter::GgufWriter(const std::string& path, uint32_t alignment) : path_(path), alignment_(alignment) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0)
    fail("alignment " + std::to_string(alignment) + " is not a nonzero power of two");
  file_ = std::make_unique<AtomicFile>(path);
}

GgufWriter::~GgufWriter() = default;

void GgufWriter::fail(const std::string& msg) const {
  throw Error(path_ + ": " + msg);
}

void GgufWriter::check_usable() const {
  if (finished_) fail("the GGUF writer is already finished");
  if (broken_) fail("the GGUF writer failed earlier and cannot continue");
}

void GgufWriter::set(const std::string& key, GgufValue value) {
  check_usable();
  if (header_written_) fail("metadata " + q(key) + ": set after the header was written");
  if (key.empty() || key.size() > kGgufMaxNameBytes)
    fail("metadata key of " + std::to_string(key.size()) + " bytes (must be 1 to " +
         std::to_string(kGgufMaxNameBytes) + ")");
  if (keys_.count(key)) fail("metadata " + q(key) + " set twice");
  if (key == "general.alignment") {
    const auto* u = std::get_if<uint64_t>(&value.data);
    if (value.type != GgufType::U32 || !u || *u != alignment_)
      fail("metadata 'general.alignment' must be the writer's alignment " + std::to_string(alignment_) +
           " as u32 (give the alignment to the GgufWriter constructor)");
    alignment_set_ = true;
  }
  std::string bytes;
  put_string(bytes, key);
  ValueEncoder(bytes, path_).value(value, "metadata " + q(key));
  kv_bytes_ += bytes;
  ++kv_count_;
  keys_.insert(key);
}

size_t GgufWriter::add_tensor(const std::string& name, DType dtype, const Shape& shape) {
  check_usable();
  const std::string where = "tensor " + q(name);
  if (header_written_) fail(where + ": declared after the header was written");
  if (name.empty() || name.size() > kGgufMaxNameBytes)
    fail("tensor name of " + std::to_string(name.size()) + " bytes (must be 1 to " +
         std::to_string(kGgufMaxNameBytes) + ")");
  if (names_.count(name)) fail(where + " declared twice");
  if (!ggml_type_from_dtype(dtype))
    fail(where + ": dtype " + std::string(dtype_name(dtype)) + " has no GGUF type here");
  if (shape.size() > kGgufMaxDims)
    fail(where + ": shape " + shape_str(shape) + " has more than " + std::to_string(kGgufMaxDims) + " dims");
  const int64_t row = shape.empty() ? 1 : shape.back();
  const int64_t block = dtype_block_elements(dtype);
  uint64_t numel = 1, nbytes = 0;
  bool empty = false, overflow = false;
  for (int64_t d : shape) {
    if (d < 0) fail(where + ": negative dimension in shape " + shape_str(shape));
    if (d == 0)
      empty = true;
    else
      overflow = overflow || __builtin_mul_overflow(numel, uint64_t(d), &numel);
  }
  if (overflow || numel > uint64_t(INT64_MAX)) fail(where + ": shape " + shape_str(shape) + " is too large");
  if (row % block != 0)
    fail(where + ": shape " + shape_str(shape) + ": the last dim " + std::to_string(row) +
         " is not a multiple of the " + std::string(dtype_name(dtype)) + " block size " +
         std::to_string(block));
  if (!empty && __builtin_mul_overflow(numel / uint64_t(block), uint64_t(dtype_block_bytes(dtype)), &nbytes))
    fail(where + ": shape " + shape_str(shape) + " is too large");
  uint64_t padded = align_up(nbytes, alignment_);
  if (padded < nbytes || __builtin_add_overflow(data_size_, padded, &padded))
    fail(where + ": the data section would exceed 2^64 bytes");
  tensors_.push_back({name, dtype, shape, nbytes, data_size_});
  names_.insert(name);
  data_size_ = padded;
  return size_t(nbytes);
}

void GgufWriter::write_raw(const void* data, size_t n) {
  broken_ = true;  // until the write returns
  file_->write(data, n);
  broken_ = false;
  written_ += uint64_t(n);
}

void GgufWriter::pad_to_alignment() {
  static constexpr char kZeros[256] = {};
  uint64_t pad = align_up(written_, alignment_) - written_;
  while (pad > 0) {
    const size_t n = size_t(std::min<uint64_t>(pad, sizeof kZeros));
    write_raw(kZeros, n);
    pad -= n;
  }
}

void GgufWriter::write_header() {
  check_usable();
  if (header_written_) fail("the header was already written");
  std::string h = "GGUF";
  put_le(h, 3, 4);
  put_le(h, tensors_.size(), 8);
  const bool add_alignment = alignment_ != kGgufDefaultAlignment && !alignment_set_;
  put_le(h, kv_count_ + (add_alignment ? 1 : 0), 8);
  h += kv_bytes_;
  if (add_alignment) {
    put_string(h, "general.alignment");
    put_le(h, uint32_t(GgufType::U32), 4);
    put_le(h, alignment_, 4);
  }
  for (const Declared& t : tensors_) {
    put_string(h, t.name);
    put_le(h, t.shape.size(), 4);
    for (size_t d = t.shape.size(); d-- > 0;) put_le(h, uint64_t(t.shape[d]), 8);  // ggml order
    put_le(h, *ggml_type_from_dtype(t.dtype), 4);
    put_le(h, t.offset, 8);
  }
  header_written_ = true;
  write_raw(h.data(), h.size());
  pad_to_alignment();
}

void GgufWriter::skip_empty_tensors(const std::string& name) {
  while (current_ < tensors_.size() && tensors_[current_].nbytes == 0 && current_done_ == 0 &&
         tensors_[current_].name != name)
    ++current_;
}

void GgufWriter::write_tensor(const std::string& name, const void* data, size_t nbytes) {
  check_usable();
  if (!header_written_) write_header();
  skip_empty_tensors(name);
  if (current_ < tensors_.size() && tensors_[current_].name == name) {
    const Declared& t = tensors_[current_];
    if (current_done_ != 0 || nbytes != t.nbytes)
      fail("tensor " + q(name) + ": write_tensor got " + std::to_string(nbytes) + " bytes, " +
           std::string(dtype_name(t.dtype)) + " " + shape_str(t.shape) + " holds " +
           std::to_string(t.nbytes) +
           (current_done_ ? " (" + std::to_string(current_done_) + " already written in chunks)" : ""));
  }
  write_tensor_chunk(name, data, nbytes);
}

void GgufWriter::write_tensor_chunk(const std::string& name, const void* data, size_t nbytes) {
  check_usable();
  if (!header_written_) write_header();
  skip_empty_tensors(name);
  if (current_ >= tensors_.size())
    fail("tensor " + q(name) + ": written after every declared tensor was written" +
         (names_.count(name) ? "" : " (it was never declared)"));
  const Declared& t = tensors_[current_];
  if (t.name != name)
    fail("tensor " + q(name) + " written out of order: the next tensor to write is " + q(t.name) + " (#" +
         std::to_string(current_) + ")" + (names_.count(name) ? "" : "; " + q(name) + " was never declared"));
  if (nbytes > t.nbytes - current_done_)
    fail("tensor " + q(name) + ": a chunk of " + std::to_string(nbytes) + " bytes overruns its " +
         std::to_string(t.nbytes) + " bytes (" + std::to_string(current_done_) + " already written)");
  if (nbytes > 0 && !data) fail("tensor " + q(name) + ": no data");
  write_raw(data, nbytes);
  current_done_ += nbytes;
  if (current_done_ == t.nbytes) {
    pad_to_alignment();
    ++current_;
    current_done_ = 0;
  }
}

void GgufWriter::finish() {
  check_usable();
  if (!header_written_) write_header();
  skip_empty_tensors("");
  if (current_ < tensors_.size())
    fail("finish: tensor " + q(tensors_[current_].name) + " (#" + std::to_string(current_) + " of " +
         std::to_string(tensors_.size()) + ") has " + std::to_string(current_done_) + " of " +
         std::to_string(tensors_[current_].nbytes) + " bytes written");
  broken_ = true;  // until the commit returns
  file_->commit();
  broken_ = false;
  finished_ = true;
}

}  // namespace krea2
