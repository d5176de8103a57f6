// GGUF (llama.cpp / ggml) reader: versions 2 and 3, little-endian. Layout: magic "GGUF", u32 version, u64
// tensor count, u64 metadata count, metadata (key, u32 value type, value), tensor infos (name, u32 n_dims,
// n_dims x u64 dims in ggml order, u32 ggml type, u64 offset), padding to the alignment, then the data
// section. The header is untrusted: every count, length, dimension and offset is checked against the bytes
// that hold it before anything is allocated or read, and every error is a krea2::Error starting with the
// source ("PATH: ").
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "io/mapped_file.h"
#include "krea2/tensor.h"

namespace krea2 {

inline constexpr uint32_t kGgufDefaultAlignment = 32;
inline constexpr uint32_t kGgufMaxDims = 4;         // GGML_MAX_DIMS
inline constexpr size_t kGgufMaxNameBytes = 65535;  // keys and tensor names (the spec's key limit)
inline constexpr int kGgufMaxArrayDepth = 8;        // arrays of arrays, nested at most this deep

// Metadata value types, by their id in the file.
enum class GgufType : uint32_t {
  U8 = 0,
  I8 = 1,
  U16 = 2,
  I16 = 3,
  U32 = 4,
  I32 = 5,
  F32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  U64 = 10,
  I64 = 11,
  F64 = 12,
};
std::string_view gguf_type_name(GgufType t);  // "u8", "string", "array", ...; "?" for an invalid id

// An array value: its element type and its elements, held in the one vector that the type selects (so a
// million-element u8 array costs 8 MB, not a million variants).
struct GgufArray {
  GgufType type = GgufType::U8;
  std::vector<uint64_t> uints;       // U8, U16, U32, U64, BOOL (0 / 1)
  std::vector<int64_t> ints;         // I8, I16, I32, I64
  std::vector<double> floats;        // F32 (exact in a double), F64
  std::vector<std::string> strings;  // STRING
  std::vector<GgufArray> arrays;     // ARRAY: nested arrays, each with its own element type

  size_t size() const;
  bool operator==(const GgufArray&) const = default;

  static GgufArray of_i32(const std::vector<int32_t>& v);
  static GgufArray of_u32(const std::vector<uint32_t>& v);
  static GgufArray of_f32(const std::vector<float>& v);
  static GgufArray of_strings(std::vector<std::string> v);
};

// One metadata value of any of the 13 types. Unsigned integers and bool are held as uint64_t, signed as
// int64_t, floats as double, strings as std::string, arrays as GgufArray.
struct GgufValue {
  GgufType type = GgufType::U8;
  std::variant<uint64_t, int64_t, double, std::string, GgufArray> data;

  bool operator==(const GgufValue&) const = default;

  static GgufValue u8(uint8_t v) { return {GgufType::U8, uint64_t(v)}; }
  static GgufValue i8(int8_t v) { return {GgufType::I8, int64_t(v)}; }
  static GgufValue u16(uint16_t v) { return {GgufType::U16, uint64_t(v)}; }
  static GgufValue i16(int16_t v) { return {GgufType::I16, int64_t(v)}; }
  static GgufValue u32(uint32_t v) { return {GgufType::U32, uint64_t(v)}; }
  static GgufValue i32(int32_t v) { return {GgufType::I32, int64_t(v)}; }
  static GgufValue f32(float v) { return {GgufType::F32, double(v)}; }
  static GgufValue boolean(bool v) { return {GgufType::BOOL, uint64_t(v)}; }
  static GgufValue string(std::string v) { return {GgufType::STRING, std::move(v)}; }
  static GgufValue array(GgufArray v) { return {GgufType::ARRAY, std::move(v)}; }
  static GgufValue u64(uint64_t v) { return {GgufType::U64, v}; }
  static GgufValue i64(int64_t v) { return {GgufType::I64, v}; }
  static GgufValue f64(double v) { return {GgufType::F64, v}; }
};

using GgufEntry = std::pair<std::string, GgufValue>;

// ggml tensor type ids. Supported: F32 0, F16 1, Q4_0 2, Q4_1 3, Q5_0 6, Q5_1 7, Q8_0 8, Q2_K..Q6_K 10..14,
// BF16 30, each the DType of the same name.
std::optional<DType> dtype_from_ggml_type(uint32_t id);  // nullopt: unsupported or unknown
std::optional<uint32_t> ggml_type_from_dtype(DType t);   // nullopt: no GGUF type for it
std::string_view ggml_type_name(uint32_t id);            // "Q4_K", "IQ2_XXS", ...; "" if unknown

// A parsed GGUF header: metadata, tensor views into the parsed bytes (which must outlive it) and the layout.
class GgufHeader {
 public:
  // Parses and validates `bytes` (a whole file); `source` (the path) starts every error message.
  static GgufHeader parse(std::span<const std::byte> bytes, const std::string& source);

  const std::string& source() const { return source_; }
  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }      // general.alignment, else 32
  uint64_t data_offset() const { return data_offset_; }  // absolute file offset of the data section
  // In file order; keys are unique.
  const std::vector<GgufEntry>& metadata() const { return metadata_; }
  const GgufValue* find_value(std::string_view key) const;  // nullptr if absent
  // In file order. Shapes in torch order (ggml dims reversed: ne[0], the row length, is the last torch dim).
  const std::vector<TensorView>& tensors() const { return tensors_; }
  const TensorView* find(std::string_view name) const;  // nullptr if absent
  // Offset of tensor i's data relative to the data section, as the file states it.
  uint64_t tensor_offset(size_t i) const { return offsets_.at(i); }

  // Typed accessors: nullopt if the key is absent; a krea2::Error naming the key and the expected vs found
  // type if it holds another type.
  std::optional<int64_t> get_int(std::string_view key) const;   // any integer type (a u64 must fit in int64)
  std::optional<double> get_float(std::string_view key) const;  // f32, f64 or any integer type
  std::optional<bool> get_bool(std::string_view key) const;
  std::optional<std::string> get_string(std::string_view key) const;
  std::optional<std::vector<int64_t>> get_int_array(std::string_view key) const;   // elements of any int type
  std::optional<std::vector<double>> get_float_array(std::string_view key) const;  // floats or integers
  std::optional<std::vector<std::string>> get_string_array(std::string_view key) const;

 private:
  GgufHeader() = default;
  friend class GgufParser;

  std::string source_;
  uint32_t version_ = 3;
  uint32_t alignment_ = kGgufDefaultAlignment;
  uint64_t data_offset_ = 0;
  std::vector<GgufEntry> metadata_;
  std::map<std::string, size_t, std::less<>> metadata_index_;
  std::vector<TensorView> tensors_;
  std::vector<uint64_t> offsets_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
};

inline GgufHeader parse_gguf(std::span<const std::byte> bytes, const std::string& source) {
  return GgufHeader::parse(bytes, source);
}

// A GGUF file, memory-mapped and parsed; the tensor views point into the mapping.
class GgufFile {
 public:
  // Throws krea2::Error naming the path (and the tensor or key at fault) on any defect.
  explicit GgufFile(const std::string& path);

  const std::string& path() const { return file_.path(); }
  uint32_t version() const { return header_.version(); }
  uint32_t alignment() const { return header_.alignment(); }
  const std::vector<TensorView>& tensors() const { return header_.tensors(); }
  const TensorView* find(std::string_view name) const { return header_.find(name); }
  const std::vector<GgufEntry>& metadata() const { return header_.metadata(); }
  // Typed metadata accessors and the layout.
  const GgufHeader& header() const { return header_; }

  std::optional<int64_t> get_int(std::string_view key) const { return header_.get_int(key); }
  std::optional<double> get_float(std::string_view key) const { return header_.get_float(key); }
  std::optional<std::string> get_string(std::string_view key) const { return header_.get_string(key); }
  std::optional<std::vector<int64_t>> get_int_array(std::string_view key) const {
    return header_.get_int_array(key);
  }

 private:
  MappedFile file_;
  GgufHeader header_;
};

}  // namespace krea2
