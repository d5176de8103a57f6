#include "io/gguf.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <limits>

#include "krea2/error.h"

namespace krea2 {

namespace {

struct GgmlType {
  uint32_t id;
  std::string_view name;
  std::optional<DType> dtype;  // nullopt: a ggml type we do not read
  bool removed = false;        // dropped from ggml (old files only)
};

// Every ggml type id we know of, ggml.h's enum ggml_type (ids 4, 5, 31-33 and 36-38 were removed from ggml).
constexpr GgmlType kGgmlTypes[] = {
    {0, "F32", DType::F32},
    {1, "F16", DType::F16},
    {2, "Q4_0", DType::Q4_0},
    {3, "Q4_1", DType::Q4_1},
    {4, "Q4_2", {}, true},
    {5, "Q4_3", {}, true},
    {6, "Q5_0", DType::Q5_0},
    {7, "Q5_1", DType::Q5_1},
    {8, "Q8_0", DType::Q8_0},
    {9, "Q8_1", {}},
    {10, "Q2_K", DType::Q2_K},
    {11, "Q3_K", DType::Q3_K},
    {12, "Q4_K", DType::Q4_K},
    {13, "Q5_K", DType::Q5_K},
    {14, "Q6_K", DType::Q6_K},
    {15, "Q8_K", {}},
    {16, "IQ2_XXS", {}},
    {17, "IQ2_XS", {}},
    {18, "IQ3_XXS", {}},
    {19, "IQ1_S", {}},
    {20, "IQ4_NL", {}},
    {21, "IQ3_S", {}},
    {22, "IQ2_S", {}},
    {23, "IQ4_XS", {}},
    {24, "I8", {}},
    {25, "I16", {}},
    {26, "I32", {}},
    {27, "I64", {}},
    {28, "F64", {}},
    {29, "IQ1_M", {}},
    {30, "BF16", DType::BF16},
    {31, "Q4_0_4_4", {}, true},
    {32, "Q4_0_4_8", {}, true},
    {33, "Q4_0_8_8", {}, true},
    {34, "TQ1_0", {}},
    {35, "TQ2_0", {}},
    {36, "IQ4_NL_4_4", {}, true},
    {37, "IQ4_NL_4_8", {}, true},
    {38, "IQ4_NL_8_8", {}, true},
    {39, "MXFP4", {}},
};

const GgmlType* ggml_type(uint32_t id) {
  for (const GgmlType& t : kGgmlTypes)
    if (t.id == id) return &t;
  return nullptr;
}

std::string supported_ggml_types() {
  std::string s;
  for (DType d : {DType::F32, DType::F16, DType::BF16, DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1,
                  DType::Q8_0, DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K})
    s += (s.empty() ? "" : ", ") + std::string(dtype_name(d));
  return s;
}

// A key or tensor name for a message: quoted, control bytes escaped, cut short (names are untrusted and may
// be 64 KiB of anything).
std::string quoted(std::string_view s) {
  constexpr size_t kMax = 200;
  std::string out = "'";
  for (size_t i = 0; i < s.size() && i < kMax; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f || c == '\'' || c == '\\') {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += char(c);
    }
  }
  if (s.size() > kMax) out += "...";
  return out + "'";
}

// Bytes of one element of a fixed-size type; 0 for string, array and invalid ids.
size_t scalar_bytes(GgufType t) {
  switch (t) {
    case GgufType::U8:
    case GgufType::I8:
    case GgufType::BOOL:
      return 1;
    case GgufType::U16:
    case GgufType::I16:
      return 2;
    case GgufType::U32:
    case GgufType::I32:
    case GgufType::F32:
      return 4;
    case GgufType::U64:
    case GgufType::I64:
    case GgufType::F64:
      return 8;
    default:
      return 0;
  }
}

// The fewest bytes a value of type t can occupy (a string: its u64 length; an array: type + count).
size_t min_value_bytes(GgufType t) {
  if (t == GgufType::STRING) return 8;
  if (t == GgufType::ARRAY) return 12;
  return scalar_bytes(t);
}

bool is_unsigned(GgufType t) {
  return t == GgufType::U8 || t == GgufType::U16 || t == GgufType::U32 || t == GgufType::U64;
}
bool is_signed(GgufType t) {
  return t == GgufType::I8 || t == GgufType::I16 || t == GgufType::I32 || t == GgufType::I64;
}
bool is_integer(GgufType t) {
  return is_unsigned(t) || is_signed(t);
}
bool is_float(GgufType t) {
  return t == GgufType::F32 || t == GgufType::F64;
}

uint64_t load_le(const std::byte* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = n; i-- > 0;) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

// Sign-extends the low n bytes of v.
int64_t sign_extend(uint64_t v, size_t n) {
  if (n == 8) return static_cast<int64_t>(v);
  const uint64_t sign = uint64_t(1) << (8 * n - 1);
  return static_cast<int64_t>((v ^ sign) - sign);
}

double load_float(uint64_t bits, size_t n) {
  if (n == 4) {
    const auto b = static_cast<uint32_t>(bits);
    float f;
    std::memcpy(&f, &b, 4);
    return f;
  }
  double d;
  std::memcpy(&d, &bits, 8);
  return d;
}

std::string found_type(const GgufValue& v) {
  if (v.type != GgufType::ARRAY) return std::string(gguf_type_name(v.type));
  return "array of " + std::string(gguf_type_name(std::get<GgufArray>(v.data).type));
}

}  // namespace

std::string_view gguf_type_name(GgufType t) {
  constexpr std::string_view kNames[] = {"u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
                                         "bool", "string", "array", "u64", "i64", "f64"};
  const auto i = static_cast<uint32_t>(t);
  return i < std::size(kNames) ? kNames[i] : "?";
}

size_t GgufArray::size() const {
  if (is_unsigned(type) || type == GgufType::BOOL) return uints.size();
  if (is_signed(type)) return ints.size();
  if (is_float(type)) return floats.size();
  if (type == GgufType::STRING) return strings.size();
  return arrays.size();
}

GgufArray GgufArray::of_i32(const std::vector<int32_t>& v) {
  GgufArray a;
  a.type = GgufType::I32;
  a.ints.assign(v.begin(), v.end());
  return a;
}
GgufArray GgufArray::of_u32(const std::vector<uint32_t>& v) {
  GgufArray a;
  a.type = GgufType::U32;
  a.uints.assign(v.begin(), v.end());
  return a;
}
GgufArray GgufArray::of_f32(const std::vector<float>& v) {
  GgufArray a;
  a.type = GgufType::F32;
  a.floats.assign(v.begin(), v.end());
  return a;
}
GgufArray GgufArray::of_strings(std::vector<std::string> v) {
  GgufArray a;
  a.type = GgufType::STRING;
  a.strings = std::move(v);
  return a;
}

std::optional<DType> dtype_from_ggml_type(uint32_t id) {
  const GgmlType* t = ggml_type(id);
  return t ? t->dtype : std::nullopt;
}

std::optional<uint32_t> ggml_type_from_dtype(DType d) {
  for (const GgmlType& t : kGgmlTypes)
    if (t.dtype == d) return t.id;
  return std::nullopt;
}

std::string_view ggml_type_name(uint32_t id) {
  const GgmlType* t = ggml_type(id);
  return t ? t->name : std::string_view();
}

// Reads one GGUF header front to back. Every read is bounds-checked first; counts are checked against the
// bytes left before anything proportional to them is reserved.
class GgufParser {
 public:
  GgufParser(std::span<const std::byte> bytes, const std::string& source)
      : base_(bytes.data()), size_(bytes.size()) {
    h_.source_ = source;
  }

  GgufHeader run() {
    read_fixed_header();
    for (uint64_t i = 0; i < kv_count_; ++i) read_entry(i);
    read_alignment();
    for (uint64_t i = 0; i < tensor_count_; ++i) read_tensor_info(i);
    place_tensors();
    return std::move(h_);
  }

 private:
  [[noreturn]] void fail(const std::string& msg) const { throw Error(h_.source_ + ": " + msg); }

  size_t left() const { return size_ - pos_; }

  // `what` is a callable giving the item being read, evaluated only for a message.
  template <typename What>
  void need(size_t n, const What& what) const {
    if (n > left())
      fail(what() + ": the file is truncated: the header needs " + std::to_string(n) + " bytes at byte " +
           std::to_string(pos_) + ", the file ends at byte " + std::to_string(size_));
  }

  // Unchecked: callers call need() first.
  uint64_t take(size_t n) {
    const uint64_t v = load_le(base_ + pos_, n);
    pos_ += n;
    return v;
  }

  template <typename What>
  uint64_t read(size_t n, const What& what) {
    need(n, what);
    return take(n);
  }

  template <typename What>
  std::string read_string(const What& what, size_t limit) {
    const uint64_t len = read(8, [&] { return what() + " (string length)"; });
    if (len > left())
      fail(what() + ": string length " + std::to_string(len) + " exceeds the file (" +
           std::to_string(left()) + " bytes left at byte " + std::to_string(pos_) + ")");
    if (len > limit)
      fail(what() + ": length " + std::to_string(len) + " exceeds the limit of " + std::to_string(limit) +
           " bytes");
    std::string s(reinterpret_cast<const char*>(base_ + pos_), size_t(len));
    pos_ += size_t(len);
    return s;
  }

  template <typename What>
  GgufType read_type(const What& what) {
    const uint64_t t = read(4, [&] { return what() + " (value type)"; });
    if (t > uint32_t(GgufType::F64)) fail(what() + ": unknown value type " + std::to_string(t));
    return static_cast<GgufType>(t);
  }

  void read_fixed_header() {
    if (size_ < 4)
      fail("file is " + std::to_string(size_) + " bytes, too short for a GGUF header (24 bytes)");
    if (load_le(base_, 4) != 0x46554747u) {  // "GGUF"
      static constexpr char kHex[] = "0123456789abcdef";
      std::string got;
      for (int i = 0; i < 4; ++i) {
        const auto c = static_cast<uint8_t>(base_[i]);
        got += std::string(i ? " " : "") + kHex[c >> 4] + kHex[c & 15];
      }
      fail("not a GGUF file: magic bytes " + got + ", expected 47 47 55 46 (\"GGUF\")");
    }
    pos_ = 4;
    const auto what = [] { return std::string("fixed header"); };
    const auto version = static_cast<uint32_t>(read(4, what));
    if (version == 1)
      fail("GGUF version 1 is not supported (it used 32-bit counts and lengths; supported: 2, 3)");
    if (version != 2 && version != 3) {
      const uint32_t swapped = __builtin_bswap32(version);
      if (swapped >= 1 && swapped <= 3)
        fail("GGUF version field reads " + std::to_string(version) + ": a big-endian GGUF (version " +
             std::to_string(swapped) + "), which is not supported (little-endian only)");
      fail("GGUF version " + std::to_string(version) + " is not supported (supported: 2, 3)");
    }
    h_.version_ = version;
    tensor_count_ = read(8, what);
    kv_count_ = read(8, what);
    // Smallest entries: a 1-byte key with a 1-byte value; a 1-byte name, no dims.
    constexpr size_t kMinEntry = 8 + 1 + 4 + 1, kMinTensorInfo = 8 + 1 + 4 + 4 + 8;
    if (kv_count_ > left() / kMinEntry)
      fail("metadata count " + std::to_string(kv_count_) + " exceeds the file: the " +
           std::to_string(left()) + " bytes after the fixed header hold at most " +
           std::to_string(left() / kMinEntry) + " entries");
    if (tensor_count_ > left() / kMinTensorInfo)
      fail("tensor count " + std::to_string(tensor_count_) + " exceeds the file: the " +
           std::to_string(left()) + " bytes after the fixed header hold at most " +
           std::to_string(left() / kMinTensorInfo) + " tensor infos");
    h_.metadata_.reserve(size_t(kv_count_));
    h_.tensors_.reserve(size_t(tensor_count_));
    h_.offsets_.reserve(size_t(tensor_count_));
  }

  void read_entry(uint64_t i) {
    std::string key = read_string([&] { return "metadata key #" + std::to_string(i); }, kGgufMaxNameBytes);
    if (key.empty()) fail("metadata key #" + std::to_string(i) + " is empty");
    const std::string where = "metadata " + quoted(key);
    if (h_.metadata_index_.count(key)) fail(where + " appears twice");
    const auto what = [&] { return where; };
    const GgufType type = read_type(what);
    GgufValue value = read_value(type, what, 0);
    h_.metadata_index_.emplace(key, h_.metadata_.size());
    h_.metadata_.emplace_back(std::move(key), std::move(value));
  }

  using Context = std::function<std::string()>;  // type-erased: read_array recurses

  GgufValue read_value(GgufType type, const Context& what, int depth) {
    GgufValue v{type, uint64_t(0)};
    if (type == GgufType::STRING) {
      v.data = read_string(what, std::numeric_limits<size_t>::max());
    } else if (type == GgufType::ARRAY) {
      v.data = read_array(what, depth + 1);
    } else {
      const size_t n = scalar_bytes(type);
      const uint64_t bits = read(n, what);
      if (type == GgufType::BOOL && bits > 1)
        fail(what() + ": bool value " + std::to_string(bits) + " is neither 0 nor 1");
      if (is_signed(type))
        v.data = sign_extend(bits, n);
      else if (is_float(type))
        v.data = load_float(bits, n);
      else
        v.data = bits;
    }
    return v;
  }

  // An array at nesting level `depth` (1 for a top-level array value).
  GgufArray read_array(const Context& what, int depth) {
    GgufArray a;
    a.type = read_type([&] { return what() + " (array element type)"; });
    const uint64_t count = read(8, [&] { return what() + " (array count)"; });
    const size_t min = min_value_bytes(a.type);
    if (count > left() / min)
      fail(what() + ": array count " + std::to_string(count) + " of " + std::string(gguf_type_name(a.type)) +
           " exceeds the file (at least " + std::to_string(min) + " bytes each, " + std::to_string(left()) +
           " bytes left at byte " + std::to_string(pos_) + ")");
    const auto n = size_t(count);
    if (a.type == GgufType::ARRAY) {
      if (depth >= kGgufMaxArrayDepth)
        fail(what() + ": arrays nested deeper than " + std::to_string(kGgufMaxArrayDepth) + " levels");
      a.arrays.reserve(n);
      for (size_t i = 0; i < n; ++i)
        a.arrays.push_back(read_array([&] { return what() + "[" + std::to_string(i) + "]"; }, depth + 1));
    } else if (a.type == GgufType::STRING) {
      a.strings.reserve(n);
      for (size_t i = 0; i < n; ++i)
        a.strings.push_back(read_string([&] { return what() + "[" + std::to_string(i) + "]"; },
                                        std::numeric_limits<size_t>::max()));
    } else {
      // Fixed-size elements: the count check above already covers all n * min bytes.
      if (is_signed(a.type))
        a.ints.reserve(n);
      else if (is_float(a.type))
        a.floats.reserve(n);
      else
        a.uints.reserve(n);
      for (size_t i = 0; i < n; ++i) {
        const uint64_t bits = take(min);
        if (is_signed(a.type)) {
          a.ints.push_back(sign_extend(bits, min));
        } else if (is_float(a.type)) {
          a.floats.push_back(load_float(bits, min));
        } else {
          if (a.type == GgufType::BOOL && bits > 1)
            fail(what() + "[" + std::to_string(i) + "]: bool value " + std::to_string(bits) +
                 " is neither 0 nor 1");
          a.uints.push_back(bits);
        }
      }
    }
    return a;
  }

  void read_alignment() {
    const GgufValue* v = h_.find_value("general.alignment");
    if (!v) return;
    if (v->type != GgufType::U32) fail("metadata 'general.alignment': expected u32, found " + found_type(*v));
    const uint64_t a = std::get<uint64_t>(v->data);
    if (a == 0 || (a & (a - 1)) != 0)
      fail("metadata 'general.alignment': " + std::to_string(a) + " is not a nonzero power of two");
    h_.alignment_ = uint32_t(a);
  }

  void read_tensor_info(uint64_t i) {
    std::string name =
        read_string([&] { return "tensor info #" + std::to_string(i) + " (name)"; }, kGgufMaxNameBytes);
    if (name.empty()) fail("tensor info #" + std::to_string(i) + " has an empty name");
    const std::string where = "tensor " + quoted(name);
    if (h_.tensor_index_.count(name)) fail(where + " is declared twice");
    const auto what = [&] { return where; };
    const uint64_t n_dims = read(4, what);
    if (n_dims > kGgufMaxDims)
      fail(where + ": n_dims " + std::to_string(n_dims) + " exceeds the maximum " +
           std::to_string(kGgufMaxDims));
    uint64_t ne[kGgufMaxDims] = {1, 1, 1, 1};
    need(8 * n_dims + 4 + 8, what);
    for (uint64_t d = 0; d < n_dims; ++d) ne[d] = take(8);
    const auto type_id = static_cast<uint32_t>(take(4));
    const uint64_t offset = take(8);

    std::string dims;
    for (uint64_t d = 0; d < n_dims; ++d) dims += (d ? ", " : "") + std::to_string(ne[d]);
    dims = "ggml dims [" + dims + "]";
    // Every dim fits in int64 and so does the element count (so shape_numel cannot overflow); 0 is allowed:
    // ggml and gguf-py both accept empty tensors, which occupy no bytes.
    uint64_t numel = 1;
    bool empty = false;
    for (uint64_t d = 0; d < n_dims; ++d) {
      if (ne[d] > uint64_t(INT64_MAX))
        fail(where + ": " + dims + ": dimension " + std::to_string(d) + " exceeds 2^63 - 1");
      if (ne[d] == 0)
        empty = true;
      else if (__builtin_mul_overflow(numel, ne[d], &numel) || numel > uint64_t(INT64_MAX))
        fail(where + ": " + dims + " hold more than 2^63 - 1 elements");
    }
    if (empty) numel = 0;

    const GgmlType* gt = ggml_type(type_id);
    if (!gt) fail(where + ": unknown ggml type " + std::to_string(type_id));
    if (!gt->dtype)
      fail(where + ": ggml type " + std::to_string(type_id) + " (" + std::string(gt->name) +
           (gt->removed ? ", removed from ggml" : "") +
           ") is not supported (supported: " + supported_ggml_types() + ")");
    const DType dtype = *gt->dtype;
    const int64_t block = dtype_block_elements(dtype);
    if (int64_t(ne[0]) % block != 0)
      fail(where + ": row length ne[0] = " + std::to_string(ne[0]) + " is not a multiple of the " +
           std::string(gt->name) + " block size " + std::to_string(block));
    // bytes = ne[0] / block * block_bytes * (the other dims).
    uint64_t nbytes = 0;
    if (!empty) {
      // Not dtype_row_bytes: its int64 product could overflow for a hostile ne[0].
      bool overflow =
          __builtin_mul_overflow(ne[0] / uint64_t(block), uint64_t(dtype_block_bytes(dtype)), &nbytes);
      for (uint64_t d = 1; d < n_dims; ++d)
        overflow = overflow || __builtin_mul_overflow(nbytes, ne[d], &nbytes);
      if (overflow || nbytes > std::numeric_limits<size_t>::max())
        fail(where + ": " + dims + " of " + std::string(gt->name) + " need more than 2^64 bytes");
    }
    if (offset % h_.alignment_ != 0)
      fail(where + ": data offset " + std::to_string(offset) + " is not a multiple of the alignment " +
           std::to_string(h_.alignment_));
    uint64_t end;
    if (__builtin_add_overflow(offset, nbytes, &end))
      fail(where + ": data offset " + std::to_string(offset) + " + size " + std::to_string(nbytes) +
           " overflows 64 bits");

    TensorView view;
    view.name = name;
    view.dtype = dtype;
    for (uint64_t d = n_dims; d-- > 0;) view.shape.push_back(int64_t(ne[d]));
    view.nbytes = size_t(nbytes);
    h_.tensor_index_.emplace(std::move(name), h_.tensors_.size());
    h_.tensors_.push_back(std::move(view));
    h_.offsets_.push_back(offset);
  }

  // Data section placement: every tensor inside the file, no two sharing bytes.
  void place_tensors() {
    const uint64_t a = h_.alignment_;
    h_.data_offset_ = (uint64_t(pos_) + a - 1) / a * a;  // pos_ <= size_, far from 2^64
    if (h_.tensors_.empty()) return;
    if (h_.data_offset_ > size_)
      fail("the file is truncated: it ends at byte " + std::to_string(size_) +
           ", before the data section (byte " + std::to_string(h_.data_offset_) + ")");
    const uint64_t data_size = size_ - h_.data_offset_;

    std::vector<size_t> order(h_.tensors_.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t x, size_t y) { return h_.offsets_[x] < h_.offsets_[y]; });
    // Walking by offset: `reach` is the furthest end so far; `last_end` the end of the previous tensor with
    // data. A tensor past the end that starts right where the previous one ends (padded) means the file was
    // cut short; one anywhere else has a bad offset or size.
    const TensorView* reach_by = nullptr;
    uint64_t reach = 0, reach_begin = 0, last_end = 0;
    bool any = false;
    for (size_t i : order) {
      TensorView& t = h_.tensors_[i];
      const uint64_t begin = h_.offsets_[i], end = begin + t.nbytes;
      const std::string where = "tensor " + quoted(t.name);
      if (t.nbytes == 0) {
        if (begin > data_size)
          fail(where + ": data offset/size outside the file (empty tensor at offset " +
               std::to_string(begin) + ", the data section holds " + std::to_string(data_size) + " bytes)");
      } else {
        if (reach_by && begin < reach)
          fail("tensors " + quoted(reach_by->name) + " [" + std::to_string(reach_begin) + ", " +
               std::to_string(reach) + ") and " + quoted(t.name) + " [" + std::to_string(begin) + ", " +
               std::to_string(end) + ") overlap in the data section");
        if (end > data_size) {
          const uint64_t expected = any ? (last_end + a - 1) / a * a : 0;
          uint64_t abs_end;
          if (begin == expected && !__builtin_add_overflow(end, h_.data_offset_, &abs_end))
            fail("the file is truncated: tensor data of " + quoted(t.name) + " ends at byte " +
                 std::to_string(abs_end) + " past the end of the file (" + std::to_string(size_) + " bytes)");
          fail(where + ": data offset/size outside the file (offset " + std::to_string(begin) + " + " +
               std::to_string(t.nbytes) + " bytes, the data section at byte " +
               std::to_string(h_.data_offset_) + " holds " + std::to_string(data_size) + " bytes)");
        }
        if (end > reach) {
          reach = end;
          reach_begin = begin;
          reach_by = &t;
        }
        last_end = end;
        any = true;
      }
      t.data = base_ + h_.data_offset_ + begin;
    }
  }

  const std::byte* base_;
  size_t size_;
  size_t pos_ = 0;
  uint64_t tensor_count_ = 0, kv_count_ = 0;
  GgufHeader h_;
};

GgufHeader GgufHeader::parse(std::span<const std::byte> bytes, const std::string& source) {
  return GgufParser(bytes, source).run();
}

const GgufValue* GgufHeader::find_value(std::string_view key) const {
  auto it = metadata_index_.find(key);
  return it == metadata_index_.end() ? nullptr : &metadata_[it->second].second;
}

const TensorView* GgufHeader::find(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

namespace {

[[noreturn]] void wrong_type(const std::string& source, std::string_view key, const std::string& expected,
                             const GgufValue& v) {
  throw Error(source + ": metadata " + quoted(key) + ": expected " + expected + ", found " + found_type(v));
}

int64_t to_int64(const std::string& source, std::string_view key, GgufType t, uint64_t u) {
  if (u > uint64_t(INT64_MAX))
    throw Error(source + ": metadata " + quoted(key) + ": " + std::string(gguf_type_name(t)) + " value " +
                std::to_string(u) + " does not fit in int64");
  return int64_t(u);
}

}  // namespace

std::optional<int64_t> GgufHeader::get_int(std::string_view key) const {
  const GgufValue* v = find_value(key);
  if (!v) return std::nullopt;
  if (is_signed(v->type)) return std::get<int64_t>(v->data);
  if (is_unsigned(v->type)) return to_int64(source_, key, v->type, std::get<uint64_t>(v->data));
  wrong_type(source_, key, "an integer", *v);
}

std::optional<double> GgufHeader::get_float(std::string_view key) const {
  const GgufValue* v = find_value(key);
  if (!v) return std::nullopt;
  if (is_float(v->type)) return std::get<double>(v->data);
  if (is_signed(v->type)) return double(std::get<int64_t>(v->data));
  if (is_unsigned(v->type)) return double(std::get<uint64_t>(v->data));
  wrong_type(source_, key, "a number", *v);
}

std::optional<bool> GgufHeader::get_bool(std::string_view key) const {
  const GgufValue* v = find_value(key);
  if (!v) return std::nullopt;
  if (v->type == GgufType::BOOL) return std::get<uint64_t>(v->data) != 0;
  wrong_type(source_, key, "bool", *v);
}

std::optional<std::string> GgufHeader::get_string(std::string_view key) const {
  const GgufValue* v = find_value(key);
  if (!v) return std::nullopt;
  if (v->type == GgufType::STRING) return std::get<std::string>(v->data);
  wrong_type(source_, key, "string", *v);
}

std::optional<std::vector<int64_t>> GgufHeader::get_int_array(std::string_view key) const {
  const GgufValue* v = find_value(key);
  if (!v) return std::nullopt;
  const GgufArray* a = v->type == GgufType::ARRAY ? &std::get<GgufArray>(v->data) : nullptr;
  if (!a || !is_integer(a->type)) wrong_type(source_, key, "an array of integers", *v);
  if (is_signed(a->type)) return a->ints;
  std::vector<int64_t> out;
  out.reserve(a->uints.size());
  for (uint64_t u : a->uints) out.push_back(to_int64(source_, key, a->type, u));
  return out;
}

std::optional<std::vector<double>> GgufHeader::get_float_array(std::string_view key) const {
  const GgufValue* v = find_value(key);
  if (!v) return std::nullopt;
  const GgufArray* a = v->type == GgufType::ARRAY ? &std::get<GgufArray>(v->data) : nullptr;
  if (!a || !(is_float(a->type) || is_integer(a->type))) wrong_type(source_, key, "an array of numbers", *v);
  if (is_float(a->type)) return a->floats;
  if (is_signed(a->type)) return std::vector<double>(a->ints.begin(), a->ints.end());
  return std::vector<double>(a->uints.begin(), a->uints.end());
}

std::optional<std::vector<std::string>> GgufHeader::get_string_array(std::string_view key) const {
  const GgufValue* v = find_value(key);
  if (!v) return std::nullopt;
  const GgufArray* a = v->type == GgufType::ARRAY ? &std::get<GgufArray>(v->data) : nullptr;
  if (!a || a->type != GgufType::STRING) wrong_type(source_, key, "an array of strings", *v);
  return a->strings;
}

GgufFile::GgufFile(const std::string& path)
    : file_(path), header_(GgufHeader::parse({file_.data(), file_.size()}, path)) {}

}  // namespace krea2
