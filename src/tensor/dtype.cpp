#include <cmath>
#include <cstring>
#include <sstream>

#include "krea2/error.h"
#include "krea2/tensor.h"
#include "tensor/convert.h"
#include "tensor/quant_blocks.h"

namespace krea2 {

namespace {
struct DTypeInfo {
  DType type;
  std::string_view name;
  int64_t block_elements;
  int64_t block_bytes;
};
constexpr DTypeInfo kDTypes[] = {
    {DType::F64, "F64", 1, 8},         {DType::F32, "F32", 1, 4},         {DType::F16, "F16", 1, 2},
    {DType::BF16, "BF16", 1, 2},       {DType::I64, "I64", 1, 8},         {DType::I32, "I32", 1, 4},
    {DType::I16, "I16", 1, 2},         {DType::I8, "I8", 1, 1},           {DType::U8, "U8", 1, 1},
    {DType::BOOL, "BOOL", 1, 1},       {DType::F8_E4M3, "F8_E4M3", 1, 1}, {DType::F8_E5M2, "F8_E5M2", 1, 1},
    {DType::Q4_0, "Q4_0", 32, 18},     {DType::Q4_1, "Q4_1", 32, 20},     {DType::Q5_0, "Q5_0", 32, 22},
    {DType::Q5_1, "Q5_1", 32, 24},     {DType::Q8_0, "Q8_0", 32, 34},     {DType::Q2_K, "Q2_K", 256, 84},
    {DType::Q3_K, "Q3_K", 256, 110},   {DType::Q4_K, "Q4_K", 256, 144},   {DType::Q5_K, "Q5_K", 256, 176},
    {DType::Q6_K, "Q6_K", 256, 210},
};

const DTypeInfo* info(DType t) {
  for (const auto& d : kDTypes)
    if (d.type == t) return &d;
  return nullptr;
}
}  // namespace

size_t dtype_size(DType t) {
  const DTypeInfo* d = info(t);
  return d && d->block_elements == 1 ? size_t(d->block_bytes) : 0;
}

bool dtype_is_block(DType t) {
  const DTypeInfo* d = info(t);
  return d && d->block_elements > 1;
}

int64_t dtype_block_elements(DType t) {
  const DTypeInfo* d = info(t);
  return d ? d->block_elements : 1;
}

int64_t dtype_block_bytes(DType t) {
  const DTypeInfo* d = info(t);
  return d ? d->block_bytes : 0;
}

int64_t dtype_row_bytes(DType t, int64_t n) {
  const DTypeInfo* d = info(t);
  if (!d || n < 0 || n % d->block_elements != 0) return -1;
  return n / d->block_elements * d->block_bytes;
}

bool dtype_is_safetensors(DType t) {
  return !dtype_is_block(t);
}

std::string_view dtype_name(DType t) {
  const DTypeInfo* d = info(t);
  return d ? d->name : "?";
}

std::optional<DType> dtype_from_name(std::string_view name) {
  for (const auto& d : kDTypes)
    if (d.name == name) return d.type;
  return std::nullopt;
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << "(";
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  if (s.size() == 1) os << ",";
  os << ")";
  return os.str();
}

float f16_to_f32(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: value = mant * 2^-24
      float f = std::ldexp(float(mant), -24);
      std::memcpy(&bits, &f, 4);
      bits |= sign;
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t f32_to_f16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint16_t sign = uint16_t((x >> 16) & 0x8000u);
  uint32_t absx = x & 0x7fffffffu;
  if (absx > 0x7f800000u) return sign | 0x7e00u;   // NaN
  if (absx >= 0x477ff000u) return sign | 0x7c00u;  // overflow (incl. inf) after rounding
  if (absx < 0x38800000u) {                        // subnormal or zero in f16: round(|f| * 2^24)
    float a;
    std::memcpy(&a, &absx, 4);
    return sign | uint16_t(std::nearbyint(a * 16777216.0f));
  }
  uint32_t mant = absx & 0x7fffffu;
  uint32_t exp = (absx >> 23) - 112;
  uint32_t h = (exp << 10) | (mant >> 13);
  uint32_t rest = mant & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u)))
    ++h;  // round to nearest even (carry may bump exponent)
  return sign | uint16_t(h);
}

Tensor to_float_tensor(const TensorView& v) {
  Tensor t(v.shape);
  size_t n = size_t(v.numel());
  const std::byte* p = v.data;
  auto read = [&](auto tag) {
    using T = decltype(tag);
    for (size_t i = 0; i < n; ++i) {
      T x;
      std::memcpy(&x, p + i * sizeof(T), sizeof(T));
      t.data[i] = float(x);
    }
  };
  switch (v.dtype) {
    case DType::F32:
    case DType::F16:
    case DType::BF16:
    case DType::F64: {
      // The mapping may not be aligned for the element type: go through memcpy'd chunks.
      widen_to_f32(v.dtype, p, t.data.data(), n);
      break;
    }
    case DType::I64:
      read(int64_t{});
      break;
    case DType::I32:
      read(int32_t{});
      break;
    case DType::I16:
      read(int16_t{});
      break;
    case DType::I8:
      read(int8_t{});
      break;
    case DType::U8:
      read(uint8_t{});
      break;
    case DType::BOOL:
      for (size_t i = 0; i < n; ++i) t.data[i] = uint8_t(p[i]) ? 1.0f : 0.0f;
      break;
    default:  // fp8 and the block formats (blocks are contiguous: decode the whole tensor as one row)
      decode_row_reference(v.dtype, p, int64_t(n), t.data.data());
      break;
  }
  return t;
}

}  // namespace krea2
