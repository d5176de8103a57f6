// AVX2 + FMA + F16C row decoders (see decode_avx2.h).
//
// Exactness shapes every kernel: each value is formed by the same float32 operations as the scalar
// reference (quant_blocks_reference.cpp), in the same grouping. The products the reference forms first
// (d * sc, dmin * mn, d * small integer) are exact in float32, so where the reference then does x * q - y or
// d * q + m, one FMA gives the same bits: its product is the reference's exact product, and it rounds once
// where the reference rounds once. Q6_K's (d sc) q and Q3_K's (d s) q keep the reference's two multiplies
// (the second one rounds; d (sc q) would round the same exact value once and give the same bits, but the
// reference's grouping needs no argument). The integers (q - 8, q - 16, q - 32, ...) are formed in int32
// lanes, as the reference forms them, and converted exactly. Only NaN payloads may differ from the reference,
// and only where two different NaNs meet in one operation (d and m or dmin both NaN): x86 then returns one of
// them by instruction operand order, which the compiler picks, for the reference as much as for us.
//
// The bit layouts are walked so that each byte of the block is widened to an int32 lane once and every
// field in it is extracted with shifts and masks in that lane (shuffles are the scarce port). Loads are
// unaligned (rows come from an mmap) and never reach past the row; stores are unaligned.
#include "tensor/decode_avx2.h"

#include <immintrin.h>

#include <cstring>
#include <type_traits>
#include <utility>

#include "tensor/convert.h"
#include "tensor/quant_blocks.h"

namespace krea2 {
namespace {

// f(integral_constant<int, 0>), ..., f(integral_constant<int, N - 1>): block offsets and bit positions
// become compile-time constants (shift immediates, constant addresses).
template <int N, typename F>
inline void unroll(F&& f) {
  [&]<int... I>(std::integer_sequence<int, I...>) {
    (f(std::integral_constant<int, I>{}), ...);
  }
  (std::make_integer_sequence<int, N>{});
}

// A stored fp16 scale as float32. F16C quiets a signalling NaN where the scalar f16_to_f32 keeps it, but a
// scale only ever enters a multiply or an FMA, which quiets it anyway (same payload).
inline float load_half(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h)));
}

inline __m128i load16(const uint8_t* p) {
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
}

// 8 bytes at p, each zero- (or sign-) extended to an int32 lane.
inline __m256i load8_u8(const uint8_t* p) {
  return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}
inline __m256i load8_i8(const uint8_t* p) {
  return _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}

inline __m256 to_f32(__m256i v) {
  return _mm256_cvtepi32_ps(v);
}
inline __m256i and32(__m256i v, int mask) {
  return _mm256_and_si256(v, _mm256_set1_epi32(mask));
}
inline __m256i sub32(__m256i v, int k) {
  return _mm256_sub_epi32(v, _mm256_set1_epi32(k));
}
inline void store8(float* out, __m256 v) {
  _mm256_storeu_ps(out, v);
}

// Bits [from, from + width) of each lane moved to [to, to + width); every other bit cleared.
template <int From, int Width, int To>
inline __m256i field(__m256i v) {
  constexpr int kMask = ((1 << Width) - 1) << To;
  if constexpr (From > To) return and32(_mm256_srli_epi32(v, From - To), kMask);
  if constexpr (From < To) return and32(_mm256_slli_epi32(v, To - From), kMask);
  return and32(v, kMask);
}

// scale[g] * float(ints[g]) for 16 int8 or uint8 values, into out[16]: the per-sub-block products.
inline void scale16(__m128i ints, bool is_signed, float scale, float* out) {
  const __m128i hi = _mm_srli_si128(ints, 8);
  const __m256i a = is_signed ? _mm256_cvtepi8_epi32(ints) : _mm256_cvtepu8_epi32(ints);
  const __m256i b = is_signed ? _mm256_cvtepi8_epi32(hi) : _mm256_cvtepu8_epi32(hi);
  const __m256 s = _mm256_set1_ps(scale);
  store8(out, _mm256_mul_ps(s, to_f32(a)));
  store8(out + 8, _mm256_mul_ps(s, to_f32(b)));
}

// ---- element types ----

void f32_row(const uint8_t* p, int64_t n, float* out) {
  std::memcpy(out, p, size_t(n) * 4);
}

// The reference (widen_to_f32) converts whole groups of 8 with F16C and the rest with the scalar
// f16_to_f32, which differ on signalling NaNs (F16C quiets them): the same split keeps even those identical.
void f16_row(const uint8_t* p, int64_t n, float* out) {
  int64_t i = 0;
  for (; i + 32 <= n; i += 32)
    unroll<4>([&](auto k) { store8(out + i + 8 * k, _mm256_cvtph_ps(load16(p + 2 * (i + 8 * k)))); });
  for (; i + 8 <= n; i += 8) store8(out + i, _mm256_cvtph_ps(load16(p + 2 * i)));
  for (; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, p + 2 * i, 2);
    out[i] = f16_to_f32(h);
  }
}

void bf16_row(const uint8_t* p, int64_t n, float* out) {
  const auto widen8 = [](const uint8_t* q) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(load16(q)), 16));
  };
  int64_t i = 0;
  for (; i + 32 <= n; i += 32)
    unroll<4>([&](auto k) { store8(out + i + 8 * k, widen8(p + 2 * (i + 8 * k))); });
  for (; i + 8 <= n; i += 8) store8(out + i, widen8(p + 2 * i));
  for (; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, p + 2 * i, 2);
    out[i] = bf16_to_f32(h);
  }
}

// Runs decode16(codes, out) on each whole group of 16 one-byte codes, and on a zero-padded copy of the last
// n % 16, so that nothing past the row is read or written and the tail takes the same path as the body.
template <typename F>
inline void each16(const uint8_t* p, int64_t n, float* out, F decode16) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) decode16(p + i, out + i);
  if (i < n) {
    uint8_t codes[16] = {};
    float tmp[16];
    std::memcpy(codes, p + i, size_t(n - i));
    decode16(codes, tmp);
    std::memcpy(out + i, tmp, size_t(n - i) * 4);
  }
}

// e4m3fn -> the fp16 with the same sign, exponent field and mantissa (S 0 EEEE MMM 0000000), which is the
// value times 2^-8 for normals and subnormals alike; F16C widens it and an exact multiply by 256 restores
// it. The two NaN codes (S 1111 111) become the reference's quiet_NaN (positive, 0x7FC00000 = fp16 0x7E00).
void e4m3_row(const uint8_t* p, int64_t n, float* out) {
  each16(p, n, out, [](const uint8_t* codes, float* o) {
    const __m256i c = _mm256_cvtepu8_epi16(load16(codes));
    const __m256i sign = _mm256_and_si256(_mm256_slli_epi16(c, 8), _mm256_set1_epi16(int16_t(0x8000)));
    const __m256i mag = _mm256_and_si256(_mm256_slli_epi16(c, 7), _mm256_set1_epi16(0x3F80));
    const __m256i nan =
        _mm256_cmpeq_epi16(_mm256_and_si256(c, _mm256_set1_epi16(0x7F)), _mm256_set1_epi16(0x7F));
    const __m256i h = _mm256_blendv_epi8(_mm256_or_si256(sign, mag), _mm256_set1_epi16(0x7E00), nan);
    const __m256 k256 = _mm256_set1_ps(256.0f);
    store8(o, _mm256_mul_ps(_mm256_cvtph_ps(_mm256_castsi256_si128(h)), k256));
    store8(o + 8, _mm256_mul_ps(_mm256_cvtph_ps(_mm256_extracti128_si256(h, 1)), k256));
  });
}

// e5m2 is the upper byte of an fp16. F16C sets the quiet bit of the two signalling-NaN codes (S 11111 01),
// which the reference keeps; those codes never occur in real weights, so they are patched after the fact.
void e5m2_row(const uint8_t* p, int64_t n, float* out) {
  each16(p, n, out, [](const uint8_t* codes, float* o) {
    const __m128i c = load16(codes), zero = _mm_setzero_si128();
    store8(o, _mm256_cvtph_ps(_mm_unpacklo_epi8(zero, c)));
    store8(o + 8, _mm256_cvtph_ps(_mm_unpackhi_epi8(zero, c)));
    const __m128i snan = _mm_cmpeq_epi8(_mm_and_si128(c, _mm_set1_epi8(0x7F)), _mm_set1_epi8(0x7D));
    if (int bits = _mm_movemask_epi8(snan); bits != 0) [[unlikely]] {
      for (int k = 0; k < 16; ++k)
        if (bits >> k & 1) o[k] = f8_e5m2_to_f32(codes[k]);
    }
  });
}

template <bool kSigned>
void int8_row(const uint8_t* p, int64_t n, float* out) {
  each16(p, n, out, [](const uint8_t* codes, float* o) {
    store8(o, to_f32(kSigned ? load8_i8(codes) : load8_u8(codes)));
    store8(o + 8, to_f32(kSigned ? load8_i8(codes + 8) : load8_u8(codes + 8)));
  });
}

// ---- 32-element blocks ----

// The 16 bytes of 4-bit quants of a Q4_x / Q5_x block as int32 lanes in element order: low nibbles are
// elements 0..15, high nibbles 16..31.
inline void nibbles32(const uint8_t* qs, __m256i q[4]) {
  const __m128i v = load16(qs), m = _mm_set1_epi8(15);
  const __m128i lo = _mm_and_si128(v, m), hi = _mm_and_si128(_mm_srli_epi16(v, 4), m);
  q[0] = _mm256_cvtepu8_epi32(lo);
  q[1] = _mm256_cvtepu8_epi32(_mm_srli_si128(lo, 8));
  q[2] = _mm256_cvtepu8_epi32(hi);
  q[3] = _mm256_cvtepu8_epi32(_mm_srli_si128(hi, 8));
}

// Q5_x: bit e of qh, as 16, or'ed into element e's quant; k is the group of 8 elements.
inline __m256i with_high_bit(__m256i q, __m256i qh, int k) {
  const __m256i e = _mm256_add_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(8 * k));
  return _mm256_or_si256(q, _mm256_slli_epi32(and32(_mm256_srlv_epi32(qh, e), 1), 4));
}

// Q4_0 (kFive false) and Q5_0: w = d (q - offset).
template <bool kFive>
void q_0_row(const uint8_t* p, int64_t n, float* out) {
  constexpr int kBytes = kFive ? 22 : 18, kQs = kFive ? 6 : 2, kOffset = kFive ? 16 : 8;
  for (int64_t b = 0; b < n / 32; ++b, p += kBytes, out += 32) {
    const __m256 d = _mm256_set1_ps(load_half(p));
    uint32_t qh = 0;
    if constexpr (kFive) std::memcpy(&qh, p + 2, 4);
    __m256i q[4];
    nibbles32(p + kQs, q);
    unroll<4>([&](auto k) {
      __m256i v = q[k];
      if constexpr (kFive) v = with_high_bit(v, _mm256_set1_epi32(int(qh)), k);
      store8(out + 8 * k, _mm256_mul_ps(d, to_f32(sub32(v, kOffset))));
    });
  }
}

// Q4_1 and Q5_1: w = d q + m (d q exact: one FMA rounds where the reference's add does).
template <bool kFive>
void q_1_row(const uint8_t* p, int64_t n, float* out) {
  constexpr int kBytes = kFive ? 24 : 20, kQs = kFive ? 8 : 4;
  for (int64_t b = 0; b < n / 32; ++b, p += kBytes, out += 32) {
    const __m256 d = _mm256_set1_ps(load_half(p)), m = _mm256_set1_ps(load_half(p + 2));
    uint32_t qh = 0;
    if constexpr (kFive) std::memcpy(&qh, p + 4, 4);
    __m256i q[4];
    nibbles32(p + kQs, q);
    unroll<4>([&](auto k) {
      __m256i v = q[k];
      if constexpr (kFive) v = with_high_bit(v, _mm256_set1_epi32(int(qh)), k);
      store8(out + 8 * k, _mm256_fmadd_ps(d, to_f32(v), m));
    });
  }
}

void q8_0_row(const uint8_t* p, int64_t n, float* out) {
  for (int64_t b = 0; b < n / 32; ++b, p += 34, out += 32) {
    const __m256 d = _mm256_set1_ps(load_half(p));
    unroll<4>([&](auto k) { store8(out + 8 * k, _mm256_mul_ps(d, to_f32(load8_i8(p + 2 + 8 * k)))); });
  }
}

// ---- 256-element K-quant blocks ----
// Element e = 128 n + 32 j + l (Q2_K / Q3_K / Q6_K) or 64 c + 32 h + l (Q4_K / Q5_K); the kernels loop over
// those indices with l in groups of 8 lanes, so each (sub-block) scale is broadcast from a small table.

// w = (d (s & 15)) q - dmin (s >> 4), s = scales[e / 16], q = qs[32 n + l] >> 2 j & 3.
void q2_k_row(const uint8_t* p, int64_t n, float* out) {
  alignas(32) float a[16], b[16];
  for (int64_t blk = 0; blk < n / 256; ++blk, p += 84, out += 256) {
    const __m128i s = load16(p), m = _mm_set1_epi8(15);
    scale16(_mm_and_si128(s, m), false, load_half(p + 80), a);
    scale16(_mm_and_si128(_mm_srli_epi16(s, 4), m), false, load_half(p + 82), b);
    const uint8_t* qs = p + 16;
    unroll<2>([&](auto nn) {
      unroll<2>([&](auto half) {  // l in [16 half, 16 half + 16): sub-block 8 n + 2 j + half
        const __m256i x0 = load8_u8(qs + 32 * nn + 16 * half), x1 = load8_u8(qs + 32 * nn + 16 * half + 8);
        unroll<4>([&](auto j) {
          constexpr int kJ = decltype(j)::value, g = 8 * decltype(nn)::value + 2 * kJ + decltype(half)::value;
          const __m256 sa = _mm256_broadcast_ss(&a[g]), sb = _mm256_broadcast_ss(&b[g]);
          float* o = out + 128 * nn + 32 * kJ + 16 * half;
          store8(o, _mm256_fmsub_ps(sa, to_f32(field<2 * kJ, 2, 0>(x0)), sb));
          store8(o + 8, _mm256_fmsub_ps(sa, to_f32(field<2 * kJ, 2, 0>(x1)), sb));
        });
      });
    });
  }
}

// w = (d s) q with s the 6-bit scale of e / 16 minus 32 and q = (qs bits | hmask bit << 2) - 4.
void q3_k_row(const uint8_t* p, int64_t n, float* out) {
  alignas(32) float a[16];
  for (int64_t blk = 0; blk < n / 256; ++blk, p += 110, out += 256) {
    // Scale i: low 4 bits from byte i (i < 8) or the high nibble of byte i - 8; high 2 bits from byte
    // 8 + i % 4 at bit 2 (i / 4), i.e. dword lane i / 4 of the last 4 bytes shifted by 2 (i / 4).
    uint64_t lo8;
    uint32_t hi4;
    std::memcpy(&lo8, p + 96, 8);
    std::memcpy(&hi4, p + 104, 4);
    const __m128i v = _mm_cvtsi64_si128(int64_t(lo8)), m = _mm_set1_epi8(15);
    const __m128i lo = _mm_unpacklo_epi64(_mm_and_si128(v, m), _mm_and_si128(_mm_srli_epi16(v, 4), m));
    const __m128i hi =
        _mm_and_si128(_mm_srlv_epi32(_mm_set1_epi32(int(hi4)), _mm_setr_epi32(0, 2, 4, 6)), _mm_set1_epi8(3));
    const __m128i sc = _mm_sub_epi8(_mm_or_si128(lo, _mm_slli_epi16(hi, 4)), _mm_set1_epi8(32));
    scale16(sc, true, load_half(p + 108), a);
    const uint8_t* hmask = p;
    const uint8_t* qs = p + 32;
    unroll<2>([&](auto half) {
      const __m256i h0 = load8_u8(hmask + 16 * half), h1 = load8_u8(hmask + 16 * half + 8);
      unroll<2>([&](auto nn) {
        const __m256i x0 = load8_u8(qs + 32 * nn + 16 * half), x1 = load8_u8(qs + 32 * nn + 16 * half + 8);
        unroll<4>([&](auto j) {
          constexpr int kN = decltype(nn)::value, kJ = decltype(j)::value;
          const __m256 sa = _mm256_broadcast_ss(&a[8 * kN + 2 * kJ + decltype(half)::value]);
          const auto quant = [](__m256i x, __m256i h) {
            return to_f32(sub32(_mm256_or_si256(field<2 * kJ, 2, 0>(x), field<4 * kN + kJ, 1, 2>(h)), 4));
          };
          float* o = out + 128 * kN + 32 * kJ + 16 * half;
          store8(o, _mm256_mul_ps(sa, quant(x0, h0)));
          store8(o + 8, _mm256_mul_ps(sa, quant(x1, h1)));
        });
      });
    });
  }
}

// The 8 (scale, min) pairs of Q4_K / Q5_K as d sc and dmin mn. The 12 bytes as three little-endian words:
// pairs 0..3 are the low 6 bits of words 0 and 1; pairs 4..7 take their low 4 bits from the nibbles of
// word 2 and their top 2 bits from bits 6..7 of the bytes of words 0 and 1.
inline void k_scales(const uint8_t* p, float* a, float* b) {
  uint32_t w[3];
  std::memcpy(w, p + 4, 12);
  const uint32_t sc03 = w[0] & 0x3F3F3F3Fu, mn03 = w[1] & 0x3F3F3F3Fu;
  const uint32_t sc47 = (w[2] & 0x0F0F0F0Fu) | ((w[0] >> 2) & 0x30303030u);
  const uint32_t mn47 = ((w[2] >> 4) & 0x0F0F0F0Fu) | ((w[1] >> 2) & 0x30303030u);
  const __m128i v = _mm_setr_epi32(int(sc03), int(sc47), int(mn03), int(mn47));
  const __m256 d = _mm256_set1_ps(load_half(p)), dmin = _mm256_set1_ps(load_half(p + 2));
  store8(a, _mm256_mul_ps(d, to_f32(_mm256_cvtepu8_epi32(v))));
  store8(b, _mm256_mul_ps(dmin, to_f32(_mm256_cvtepu8_epi32(_mm_srli_si128(v, 8)))));
}

// Q4_K and Q5_K: w = (d sc) q - dmin mn over sub-block e / 32 = 2 c + h; q = qs[32 c + l] >> 4 h & 15,
// plus (Q5_K) bit e / 32 of qh[l] as 16.
template <bool kFive>
void q45_k_row(const uint8_t* p, int64_t n, float* out) {
  constexpr int kBytes = kFive ? 176 : 144;
  alignas(32) float a[8], b[8];
  for (int64_t blk = 0; blk < n / 256; ++blk, p += kBytes, out += 256) {
    k_scales(p, a, b);
    const uint8_t* qs = p + (kFive ? 48 : 16);
    __m256i qh[4];
    if constexpr (kFive) unroll<4>([&](auto k) { qh[k] = load8_u8(p + 16 + 8 * k); });
    unroll<4>([&](auto c) {
      const __m256 sa0 = _mm256_broadcast_ss(&a[2 * c]), sb0 = _mm256_broadcast_ss(&b[2 * c]);
      const __m256 sa1 = _mm256_broadcast_ss(&a[2 * c + 1]), sb1 = _mm256_broadcast_ss(&b[2 * c + 1]);
      unroll<4>([&](auto k) {
        const __m256i x = load8_u8(qs + 32 * c + 8 * k);
        __m256i q0 = and32(x, 15), q1 = _mm256_srli_epi32(x, 4);
        if constexpr (kFive) {
          constexpr int kC = decltype(c)::value;
          q0 = _mm256_or_si256(q0, field<2 * kC, 1, 4>(qh[k]));
          q1 = _mm256_or_si256(q1, field<2 * kC + 1, 1, 4>(qh[k]));
        }
        store8(out + 64 * c + 8 * k, _mm256_fmsub_ps(sa0, to_f32(q0), sb0));
        store8(out + 64 * c + 32 + 8 * k, _mm256_fmsub_ps(sa1, to_f32(q1), sb1));
      });
    });
  }
}

// w = (d scales[e / 16]) q, q = (ql nibble | qh 2 bits << 4) - 32. With r = e % 128 = 32 m + l: the nibble
// is the low (m < 2) or high (m >= 2) half of ql[64 n + 32 (m % 2) + l], the 2 bits are qh[32 n + l] >> 2 m.
void q6_k_row(const uint8_t* p, int64_t n, float* out) {
  alignas(32) float a[16];
  for (int64_t blk = 0; blk < n / 256; ++blk, p += 210, out += 256) {
    scale16(load16(p + 192), true, load_half(p + 208), a);
    unroll<2>([&](auto nn) {
      unroll<4>([&](auto k) {
        const __m256i xa = load8_u8(p + 64 * nn + 8 * k), xb = load8_u8(p + 64 * nn + 32 + 8 * k);
        const __m256i hq = load8_u8(p + 128 + 32 * nn + 8 * k);
        unroll<4>([&](auto m) {
          constexpr int kM = decltype(m)::value;
          const __m256i x = kM % 2 ? xb : xa;
          const __m256i low = kM < 2 ? and32(x, 15) : _mm256_srli_epi32(x, 4);
          const __m256i q = sub32(_mm256_or_si256(low, field<2 * kM, 2, 4>(hq)), 32);
          const __m256 sa = _mm256_broadcast_ss(&a[8 * nn + 2 * kM + decltype(k)::value / 2]);
          store8(out + 128 * nn + 32 * kM + 8 * k, _mm256_mul_ps(sa, to_f32(q)));
        });
      });
    });
  }
}

}  // namespace

DecodeRowKernel decode_row_kernel_avx2(DType t) {
  switch (t) {
    case DType::F32:
      return f32_row;
    case DType::F16:
      return f16_row;
    case DType::BF16:
      return bf16_row;
    case DType::F8_E4M3:
      return e4m3_row;
    case DType::F8_E5M2:
      return e5m2_row;
    case DType::I8:
      return int8_row<true>;
    case DType::U8:
      return int8_row<false>;
    case DType::Q4_0:
      return q_0_row<false>;
    case DType::Q5_0:
      return q_0_row<true>;
    case DType::Q4_1:
      return q_1_row<false>;
    case DType::Q5_1:
      return q_1_row<true>;
    case DType::Q8_0:
      return q8_0_row;
    case DType::Q2_K:
      return q2_k_row;
    case DType::Q3_K:
      return q3_k_row;
    case DType::Q4_K:
      return q45_k_row<false>;
    case DType::Q5_K:
      return q45_k_row<true>;
    case DType::Q6_K:
      return q6_k_row;
    default:
      return nullptr;  // F64 and the integer types the reference handles (or rejects)
  }
}

}  // namespace krea2
