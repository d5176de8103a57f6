// Element types, non-owning tensor views (e.g. into an mmap'd file) and a small owning float32 tensor.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace krea2 {

// Storage types. The first group are the safetensors element types (F8_E4M3 = torch float8_e4m3fn, F8_E5M2 =
// float8_e5m2); the second are ggml's block formats (GGUF files): a row of n elements is n / block_elements
// blocks of block_bytes each (layouts in tensor/quant_blocks.h).
enum class DType : uint8_t {
  F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL, F8_E4M3, F8_E5M2,
  Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K,
};

// Bytes per element of an element type; 0 for a block format (use dtype_row_bytes).
size_t dtype_size(DType t);
bool dtype_is_block(DType t);
int64_t dtype_block_elements(DType t);  // 1 for element types, 32 or 256 for block formats
int64_t dtype_block_bytes(DType t);     // dtype_size for element types
// Bytes of n consecutive elements (one row); -1 if n is negative or not a multiple of the block.
int64_t dtype_row_bytes(DType t, int64_t n);
// The safetensors / ggml spelling: "F32", "BF16", "F8_E4M3", "Q4_K", ...
std::string_view dtype_name(DType t);
std::optional<DType> dtype_from_name(std::string_view name);
// Types a safetensors file may declare (the element types; block formats exist only in GGUF).
bool dtype_is_safetensors(DType t);

using Shape = std::vector<int64_t>;
int64_t shape_numel(const Shape& s);
std::string shape_str(const Shape& s);  // "(2, 3, 4)"

// A view of tensor bytes owned by someone else (a mapped file, a weight arena).
struct TensorView {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;
  const std::byte* data = nullptr;
  size_t nbytes = 0;
  int64_t numel() const { return shape_numel(shape); }
};

// Owning float32 tensor, row-major.
struct Tensor {
  Shape shape;
  std::vector<float> data;

  Tensor() = default;
  explicit Tensor(Shape s) : shape(std::move(s)), data(static_cast<size_t>(shape_numel(shape)), 0.0f) {}
  Tensor(Shape s, std::vector<float> d) : shape(std::move(s)), data(std::move(d)) {}
  int64_t numel() const { return static_cast<int64_t>(data.size()); }
  int64_t dim(size_t i) const { return shape.at(i); }
  float* ptr() { return data.data(); }
  const float* ptr() const { return data.data(); }
};

// Converts any numeric view to float32 (BOOL -> 0/1, integers exactly up to 2^24, fp8 and block formats
// decoded).
Tensor to_float_tensor(const TensorView& v);

}  // namespace krea2
