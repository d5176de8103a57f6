// Q8_0, Q4_0, Q4_1, Q5_0, Q5_1: ggml's reference rules (see tensor/quantize.h), bit-identical to gguf-py.
// The one subtle point is where float32 rounds: Q4_0 / Q5_0 round x * id + 8.5 (16.5) once (std::fma; the
// product of two floats is exact in float64, which is how gguf-py gets the same value), Q4_1 / Q5_1 round
// (x - min) * id to float32 before adding 0.5, which the compiler must not contract (scaled_offset).
#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "tensor/convert.h"
#include "tensor/quantize_internal.h"

namespace krea2 {

namespace {

constexpr int kBlock = 32;

void put_half(uint8_t* p, float v) {
  const uint16_t h = f32_to_f16(v);
  std::memcpy(p, &h, 2);
}

// trunc(v) clamped to [0, hi]; NaN -> 0 (no undefined float-to-int conversion).
int trunc_clamped(float v, int hi) {
  if (v >= float(hi)) return hi;
  return v >= 0.0f ? int(v) : 0;
}

float inverse_or_zero(float d) {
  return d != 0.0f ? 1.0f / d : 0.0f;
}

// (x - min) * id rounded to float32 on its own: the volatile store keeps the compiler from contracting the
// product and the following + 0.5 into an FMA (GCC does so even through a float64 product, which it
// narrows to float32 first since that is exact).
float scaled_offset(float x, float min, float id) {
  volatile float p = (x - min) * id;
  return p;
}

// The value of largest magnitude, the first one on ties (+0 for an all-zero block).
float signed_absmax(const float* x) {
  float amax = 0.0f, max = 0.0f;
  for (int i = 0; i < kBlock; ++i)
    if (amax < std::fabs(x[i])) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
  return max;
}

void min_max(const float* x, float& min, float& max) {
  min = 3.402823466e38f;
  max = -3.402823466e38f;
  for (int i = 0; i < kBlock; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
  }
}

// Low nibbles hold elements 0..15, high nibbles 16..31.
void pack_nibbles(const int* q, uint8_t* qs) {
  for (int j = 0; j < 16; ++j) qs[j] = uint8_t((q[j] & 15) | (q[j + 16] & 15) << 4);
}

// Bit e of the little-endian u32 is bit 4 of q[e].
void pack_high_bits(const int* q, uint8_t* qh) {
  uint32_t h = 0;
  for (int e = 0; e < kBlock; ++e) h |= uint32_t((q[e] >> 4) & 1) << e;
  std::memcpy(qh, &h, 4);
}

// roundf (half away from zero) without the library call: v - trunc(v) is exact.
void q8_0(const float* x, uint8_t* b) {
  float amax = 0.0f;
  for (int i = 0; i < kBlock; ++i) amax = std::fabs(x[i]) > amax ? std::fabs(x[i]) : amax;
  const float d = amax / 127.0f, id = inverse_or_zero(d);
  put_half(b, d);
  // q = roundf(x id), half away from zero: trunc, plus sign(v) where |v - trunc(v)| >= 1/2 (exact). AVX2,
  // since the scalar form branches on random halves. Clamped first (NaN -> -128), never undefined.
  const __m256 vid = _mm256_set1_ps(id), half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f);
  const __m256 sign = _mm256_set1_ps(-0.0f);
  for (int i = 0; i < kBlock; i += 8) {
    const __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i), vid);
    const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256 away = _mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_sub_ps(v, t)), half, _CMP_GE_OQ);
    __m256 q = _mm256_add_ps(t, _mm256_and_ps(away, _mm256_or_ps(one, _mm256_and_ps(sign, v))));
    q = _mm256_min_ps(_mm256_max_ps(q, _mm256_set1_ps(-128.0f)), _mm256_set1_ps(127.0f));
    int32_t qi[8];
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(qi), _mm256_cvttps_epi32(q));
    for (int k = 0; k < 8; ++k) b[2 + i + k] = uint8_t(int8_t(qi[k]));
  }
}

// Q4_0 (levels 16, offset 8) and Q5_0 (32, 16).
void symmetric(const float* x, int levels, uint8_t* b) {
  const float max = signed_absmax(x);
  const float d = max / -float(levels / 2), id = inverse_or_zero(d);
  const float bias = float(levels / 2) + 0.5f;
  int q[kBlock];
  for (int i = 0; i < kBlock; ++i) q[i] = trunc_clamped(std::fma(x[i], id, bias), levels - 1);
  put_half(b, d);
  if (levels == 16) {
    pack_nibbles(q, b + 2);
  } else {
    pack_high_bits(q, b + 2);
    pack_nibbles(q, b + 6);
  }
}

// Q4_1 (levels 16) and Q5_1 (32).
void affine(const float* x, int levels, uint8_t* b) {
  float min, max;
  min_max(x, min, max);
  const float d = (max - min) / float(levels - 1), id = inverse_or_zero(d);
  int q[kBlock];
  for (int i = 0; i < kBlock; ++i) q[i] = trunc_clamped(scaled_offset(x[i], min, id) + 0.5f, levels - 1);
  put_half(b, d);
  put_half(b + 2, min);
  if (levels == 16) {
    pack_nibbles(q, b + 4);
  } else {
    pack_high_bits(q, b + 4);
    pack_nibbles(q, b + 8);
  }
}

}  // namespace

void quantize_legacy_blocks(DType t, const float* x, int64_t nblocks, uint8_t* out) {
  const int64_t bytes = dtype_block_bytes(t);
  for (int64_t i = 0; i < nblocks; ++i) {
    const float* xb = x + i * kBlock;
    uint8_t* b = out + i * bytes;
    switch (t) {
      case DType::Q8_0:
        q8_0(xb, b);
        break;
      case DType::Q4_0:
        symmetric(xb, 16, b);
        break;
      case DType::Q5_0:
        symmetric(xb, 32, b);
        break;
      case DType::Q4_1:
        affine(xb, 16, b);
        break;
      case DType::Q5_1:
        affine(xb, 32, b);
        break;
      default:
        return;
    }
  }
}

}  // namespace krea2
