// Scalar reference decoders, written from the layout table in quant_blocks.h (gguf-py's dequantize is the
// ground truth: see tests/fixtures/quant/README.md).
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

#include "tensor/convert.h"
#include "tensor/quant_blocks.h"

namespace krea2 {

namespace {

float half_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32(h);
}

// The 6-bit (scale, min) pair j of the 12-byte packed table of Q4_K / Q5_K.
void k_scale_min(const uint8_t* s, int j, int& sc, int& mn) {
  if (j < 4) {
    sc = s[j] & 63;
    mn = s[j + 4] & 63;
  } else {
    sc = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
    mn = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

void decode_legacy(DType t, const uint8_t* b, float* out) {
  const float d = half_at(b);
  switch (t) {
    case DType::Q4_0:
      for (int e = 0; e < 32; ++e) {
        const int q = e < 16 ? b[2 + e] & 15 : b[2 + e - 16] >> 4;
        out[e] = d * float(q - 8);
      }
      return;
    case DType::Q4_1: {
      const float m = half_at(b + 2);
      for (int e = 0; e < 32; ++e) {
        const int q = e < 16 ? b[4 + e] & 15 : b[4 + e - 16] >> 4;
        out[e] = d * float(q) + m;
      }
      return;
    }
    case DType::Q5_0: {
      uint32_t qh;
      std::memcpy(&qh, b + 2, 4);
      for (int e = 0; e < 32; ++e) {
        const int lo = e < 16 ? b[6 + e] & 15 : b[6 + e - 16] >> 4;
        const int q = lo | int((qh >> e) & 1) << 4;
        out[e] = d * float(q - 16);
      }
      return;
    }
    case DType::Q5_1: {
      const float m = half_at(b + 2);
      uint32_t qh;
      std::memcpy(&qh, b + 4, 4);
      for (int e = 0; e < 32; ++e) {
        const int lo = e < 16 ? b[8 + e] & 15 : b[8 + e - 16] >> 4;
        const int q = lo | int((qh >> e) & 1) << 4;
        out[e] = d * float(q) + m;
      }
      return;
    }
    case DType::Q8_0:
      for (int e = 0; e < 32; ++e) out[e] = d * float(int8_t(b[2 + e]));
      return;
    default:
      break;
  }
}

void decode_k(DType t, const uint8_t* b, float* out) {
  switch (t) {
    case DType::Q2_K: {
      const uint8_t* scales = b;
      const uint8_t* qs = b + 16;
      const float d = half_at(b + 80), dmin = half_at(b + 82);
      for (int e = 0; e < 256; ++e) {
        const int n = e / 128, j = (e % 128) / 32, l = e % 32;
        const int q = (qs[32 * n + l] >> (2 * j)) & 3;
        const int s = scales[e / 16];
        out[e] = (d * float(s & 15)) * float(q) - dmin * float(s >> 4);
      }
      return;
    }
    case DType::Q3_K: {
      const uint8_t* hmask = b;
      const uint8_t* qs = b + 32;
      const uint8_t* sc = b + 96;
      const float d = half_at(b + 108);
      for (int e = 0; e < 256; ++e) {
        const int n = e / 128, j = (e % 128) / 32, l = e % 32;
        const int low = (qs[32 * n + l] >> (2 * j)) & 3;
        const int h = (hmask[l] >> (4 * n + j)) & 1;
        const int q = low - 4 * (1 - h);
        const int i = e / 16;
        const int lo = i < 8 ? sc[i] & 15 : sc[i - 8] >> 4;
        const int hi = (sc[8 + i % 4] >> (2 * (i / 4))) & 3;
        const int s = (lo | hi << 4) - 32;
        out[e] = (d * float(s)) * float(q);
      }
      return;
    }
    case DType::Q4_K:
    case DType::Q5_K: {
      const float d = half_at(b), dmin = half_at(b + 2);
      const uint8_t* scales = b + 4;
      const bool five = t == DType::Q5_K;
      const uint8_t* qh = b + 16;
      const uint8_t* qs = five ? b + 48 : b + 16;
      for (int e = 0; e < 256; ++e) {
        int sc, mn;
        k_scale_min(scales, e / 32, sc, mn);
        const int c = e / 64, h = (e % 64) / 32, l = e % 32;
        int q = (qs[32 * c + l] >> (4 * h)) & 15;
        if (five) q |= ((qh[e % 32] >> (e / 32)) & 1) << 4;
        out[e] = (d * float(sc)) * float(q) - dmin * float(mn);
      }
      return;
    }
    case DType::Q6_K: {
      const uint8_t* ql = b;
      const uint8_t* qh = b + 128;
      const auto* scales = reinterpret_cast<const int8_t*>(b + 192);
      const float d = half_at(b + 208);
      for (int e = 0; e < 256; ++e) {
        const int n = e / 128, r = e % 128;
        const int low = (ql[64 * n + r % 64] >> (4 * (r / 64))) & 15;
        const int high = (qh[32 * n + r % 32] >> (2 * (r / 32))) & 3;
        const int q = (low | high << 4) - 32;
        out[e] = (d * float(scales[e / 16])) * float(q);
      }
      return;
    }
    default:
      break;
  }
}

}  // namespace

float f8_e4m3_to_f32(uint8_t code) {
  const int s = code >> 7, e = (code >> 3) & 15, m = code & 7;
  if (e == 15 && m == 7) return std::numeric_limits<float>::quiet_NaN();
  const float mag = e == 0 ? std::ldexp(float(m), -9) : std::ldexp(1.0f + float(m) / 8.0f, e - 7);
  return s ? -mag : mag;
}

float f8_e5m2_to_f32(uint8_t code) {
  return f16_to_f32(uint16_t(uint16_t(code) << 8));
}

void decode_block_reference(DType t, const uint8_t* block, float* out) {
  switch (t) {
    case DType::Q4_0:
    case DType::Q4_1:
    case DType::Q5_0:
    case DType::Q5_1:
    case DType::Q8_0:
      return decode_legacy(t, block, out);
    case DType::Q2_K:
    case DType::Q3_K:
    case DType::Q4_K:
    case DType::Q5_K:
    case DType::Q6_K:
      return decode_k(t, block, out);
    default:
      throw std::invalid_argument("decode_block_reference: " + std::string(dtype_name(t)) +
                                  " is not a block format");
  }
}

bool dtype_is_decodable(DType t) {
  switch (t) {
    case DType::F64:
    case DType::F32:
    case DType::F16:
    case DType::BF16:
    case DType::F8_E4M3:
    case DType::F8_E5M2:
    case DType::I8:
    case DType::U8:
      return true;
    default:
      return dtype_is_block(t);
  }
}

void decode_row_reference(DType t, const void* row, int64_t n, float* out) {
  const auto* p = static_cast<const uint8_t*>(row);
  if (dtype_is_block(t)) {
    const int64_t be = dtype_block_elements(t), bb = dtype_block_bytes(t);
    if (n % be != 0)
      throw std::invalid_argument("decode_row_reference: " + std::to_string(n) + " elements of " +
                                  std::string(dtype_name(t)) + " is not a whole number of blocks");
    for (int64_t i = 0; i < n / be; ++i) decode_block_reference(t, p + i * bb, out + i * be);
    return;
  }
  switch (t) {
    case DType::F8_E4M3:
      for (int64_t i = 0; i < n; ++i) out[i] = f8_e4m3_to_f32(p[i]);
      return;
    case DType::F8_E5M2:
      for (int64_t i = 0; i < n; ++i) out[i] = f8_e5m2_to_f32(p[i]);
      return;
    case DType::I8:
      for (int64_t i = 0; i < n; ++i) out[i] = float(int8_t(p[i]));
      return;
    case DType::U8:
      for (int64_t i = 0; i < n; ++i) out[i] = float(p[i]);
      return;
    case DType::F64:
    case DType::F32:
    case DType::F16:
    case DType::BF16:
      widen_to_f32(t, row, out, size_t(n));
      return;
    default:
      throw std::invalid_argument("decode_row_reference: cannot decode " + std::string(dtype_name(t)));
  }
}

}  // namespace krea2
