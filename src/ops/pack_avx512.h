// Packing helpers of the AVX-512 GEMM variants: the 16x16 in-register transpose of 32-bit words, lane masks
// and (with AVX512_BF16) rows as words of bf16 pairs. Include only from files compiled for AVX-512
// (*_avx512*.cpp, *_amx.cpp): everything here has internal linkage, so no AVX-512 copy of a function can
// reach code of a lower level.
#pragma once
// GCC 12's AVX-512 intrinsics start from a self-initialised "undefined" vector and warn about it wherever
// they are inlined (GCC bug 105593); the warning is about the header, not about our code.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <cstdint>

#include "krea2/tensor.h"

#if !defined(__AVX512F__) || !defined(__AVX512BW__)
#error "ops/pack_avx512.h is for files compiled with -mavx512f -mavx512bw"
#endif

namespace krea2 {
namespace {

// In-register 16x16 transpose of 32-bit elements (float shuffles move the bits unchanged, so it serves
// int8 words too): on return r[j] holds column j of the input rows r[0..16).
inline void transpose16x16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  // Within each 128-bit lane L, s[4g + c] now holds rows 4g..4g+3 of column 4L + c.
  __m512 s[16];
  for (int g = 0; g < 16; g += 4) {
    s[g + 0] = _mm512_shuffle_ps(t[g], t[g + 2], 0x44);
    s[g + 1] = _mm512_shuffle_ps(t[g], t[g + 2], 0xEE);
    s[g + 2] = _mm512_shuffle_ps(t[g + 1], t[g + 3], 0x44);
    s[g + 3] = _mm512_shuffle_ps(t[g + 1], t[g + 3], 0xEE);
  }
  // Gather lane L of the four row groups: column 4L + c.
  for (int c = 0; c < 4; ++c) {
    const __m512 u0 = _mm512_shuffle_f32x4(s[c], s[4 + c], 0x44);
    const __m512 u1 = _mm512_shuffle_f32x4(s[c], s[4 + c], 0xEE);
    const __m512 u2 = _mm512_shuffle_f32x4(s[8 + c], s[12 + c], 0x44);
    const __m512 u3 = _mm512_shuffle_f32x4(s[8 + c], s[12 + c], 0xEE);
    r[c] = _mm512_shuffle_f32x4(u0, u2, 0x88);
    r[4 + c] = _mm512_shuffle_f32x4(u0, u2, 0xDD);
    r[8 + c] = _mm512_shuffle_f32x4(u1, u3, 0x88);
    r[12 + c] = _mm512_shuffle_f32x4(u1, u3, 0xDD);
  }
}

// The same on integer words (int8 codes in fours): the casts move no bits.
inline void transpose16x16(__m512i r[16]) {
  __m512 f[16];
  for (int i = 0; i < 16; ++i) f[i] = _mm512_castsi512_ps(r[i]);
  transpose16x16(f);
  for (int i = 0; i < 16; ++i) r[i] = _mm512_castps_si512(f[i]);
}

// First n lanes of 16 / 32 and first n bytes of 64 (none for n <= 0).
inline __mmask16 first_lanes16(int64_t n) {
  return n >= 16 ? __mmask16(0xFFFF) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1);
}
inline __mmask32 first_lanes32(int64_t n) {
  return n >= 32 ? __mmask32(0xFFFFFFFFu) : n <= 0 ? __mmask32(0) : __mmask32((1u << n) - 1);
}
inline __mmask64 first_bytes64(int64_t n) {
  return n >= 64 ? ~__mmask64(0) : n <= 0 ? __mmask64(0) : (__mmask64(1) << n) - 1;
}

#if defined(__AVX512BF16__)
// Two registers of 16 floats (depths 0..15 and 16..31) as 16 words of bf16 pairs, rounded to nearest even.
inline __m512 round_to_pairs(__m512 lo, __m512 hi) {
  // cvtne2ps(a, b) puts b's conversions in the lower 16 halves: depth 2w in the lower half of word w.
  return (__m512)_mm512_cvtne2ps_pbh(hi, lo);
}

// Up to 32 consecutive values of a row as 16 words of bf16 pairs (depths past `depth` zero; unaligned:
// weights come from an mmap). Masked lanes are never read, so a load at the end of a row cannot fault.
template <DType kType>
inline __m512 load32_as_pairs(const unsigned char* p, int64_t depth) {
  if constexpr (kType == DType::F32) {
    const __m512 lo = _mm512_maskz_loadu_ps(first_lanes16(depth), p);
    const __m512 hi = _mm512_maskz_loadu_ps(first_lanes16(depth - 16), p + 64);
    return round_to_pairs(lo, hi);
  } else {
    const __m512i h = _mm512_maskz_loadu_epi16(first_lanes32(depth), p);
    if constexpr (kType == DType::BF16) return _mm512_castsi512_ps(h);
    // F16 -> float32 is exact, so the value is rounded to bf16 once.
    return round_to_pairs(_mm512_cvtph_ps(_mm512_castsi512_si256(h)),
                          _mm512_cvtph_ps(_mm512_extracti64x4_epi64(h, 1)));
  }
}

// W^T rows [k0, k0 + kc) x columns [n0, n0 + nc) (= weight rows n0.., K elements each) as panels of kNR
// columns in depth-pair steps, the B layout of vdpbf16ps and tdpbf16ps: step s of a panel holds kNR words,
// word j the pair (2s, 2s + 1) of column j; columns past nc are zero. Each panel is ceil(kc / 2) steps and
// then `extra_words` long. With `whole_blocks`, every block of 16 steps is written in full (steps past kc
// zero), for kernels that load whole tile rows.
template <DType kType, int64_t kNR>
void pack_b_pairs(const unsigned char* w, int64_t K, int64_t n0, int64_t nc, int64_t k0, int64_t kc,
                  float* out, int64_t extra_words, bool whole_blocks) {
  constexpr int64_t es = kType == DType::F32 ? 4 : 2;
  const int64_t panel_words = (kc + 1) / 2 * kNR + extra_words;
  for (int64_t q = 0; q < nc; q += kNR, out += panel_words) {
    for (int64_t g = 0; g < kNR; g += 16) {
      const int64_t cols = nc - q - g;  // valid weight rows of this group of 16 (may be <= 0)
      const unsigned char* src = w + ((n0 + q + g) * K + k0) * es;
      for (int64_t k = 0; k < kc; k += 32) {
        const int64_t depth = kc - k < 32 ? kc - k : 32;
        __m512 r[16];
        for (int64_t j = 0; j < 16; ++j)
          r[j] = j < cols ? load32_as_pairs<kType>(src + (j * K + k) * es, depth) : _mm512_setzero_ps();
        transpose16x16(r);
        const int64_t steps = whole_blocks ? 16 : (depth + 1) / 2;
        for (int64_t j = 0; j < steps; ++j) _mm512_store_ps(out + (k / 2 + j) * kNR + g, r[j]);
      }
    }
  }
}
#endif

}  // namespace
}  // namespace krea2
