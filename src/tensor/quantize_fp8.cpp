// fp8 encoders (e4m3fn, e5m2) and ComfyUI's per-tensor scaled fp8.
#include <cmath>
#include <cstring>
#include <string>

#include "krea2/error.h"
#include "tensor/quantize.h"

namespace krea2 {

namespace {

// A float8 format with `mbits` mantissa bits and exponent bias `bias`: magnitude code of |x| (finite, >= 0),
// rounded to nearest even, saturated to max_code.
uint8_t encode_magnitude(float a, int mbits, int bias, uint8_t max_code) {
  const int min_normal_exp = 1 - bias;
  if (a < std::ldexp(1.0f, min_normal_exp)) {
    // Subnormal range: the code is the count of 2^(min_normal_exp - mbits) steps, scaled exactly by a power
    // of two (a code of 2^mbits is the smallest normal, which is right).
    return uint8_t(std::nearbyint(std::ldexp(a, mbits - min_normal_exp)));
  }
  uint32_t bits;
  std::memcpy(&bits, &a, 4);
  const int drop = 23 - mbits;
  // Round the float32 mantissa to mbits, ties to even; a carry moves to the exponent, as it should.
  const uint32_t rounded = bits + ((1u << (drop - 1)) - 1) + ((bits >> drop) & 1);
  const int64_t code = int64_t(rounded >> drop) - (int64_t(127 - bias) << mbits);
  return code > max_code ? max_code : uint8_t(code);
}

}  // namespace

uint8_t f32_to_f8_e4m3(float x) {
  const uint8_t sign = std::signbit(x) ? 0x80 : 0;
  if (std::isnan(x)) return 0x7F | sign;
  const float a = std::fabs(x);
  if (a >= 464.0f) return 0x7E | sign;  // beyond the rounding range of 448 (and infinity): saturate
  return encode_magnitude(a, 3, 7, 0x7E) | sign;
}

uint8_t f32_to_f8_e5m2(float x) {
  const uint8_t sign = std::signbit(x) ? 0x80 : 0;
  if (std::isnan(x)) return 0x7F | sign;
  const float a = std::fabs(x);
  if (std::isinf(a)) return 0x7C | sign;
  if (a >= 61440.0f) return 0x7B | sign;  // beyond the rounding range of 57344: saturate
  return encode_magnitude(a, 2, 15, 0x7B) | sign;
}

float quantize_fp8_scaled(DType t, const float* w, int64_t n, uint8_t* codes) {
  if (t != DType::F8_E4M3 && t != DType::F8_E5M2)
    throw Error("quantize_fp8_scaled: " + std::string(dtype_name(t)) + " is not an fp8 type");
  const bool e4m3 = t == DType::F8_E4M3;
  float amax = 0.0f;
  for (int64_t i = 0; i < n; ++i) amax = std::fmax(amax, std::fabs(w[i]));
  const float scale = amax > 0.0f ? amax / (e4m3 ? 448.0f : 57344.0f) : 1.0f;
  for (int64_t i = 0; i < n; ++i) {
    const float v = w[i] / scale;
    codes[i] = e4m3 ? f32_to_f8_e4m3(v) : f32_to_f8_e5m2(v);
  }
  return scale;
}

}  // namespace krea2
