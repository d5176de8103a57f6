// The attention's AVX-512 tile kernels (AttentionTileKernels, reached only through
// kAttentionTileKernelsAvx512 when active_isa() is avx512). Same math and summation order as the AVX2 tile
// kernels in attention.cpp -- each score is one FMA chain over d, the softmax max / sum use the same two
// chains of rows, each output one FMA chain over keys, and exp2 is the same polynomial -- so the results
// are bit-identical to the AVX2 path; only the register blocks differ:
//   scores^T (keys x queries): 8 x 48 (8 x 3 zmm accumulators), the query lanes padded to 16;
//   O (queries x head_dim):   12 x 32 (12 x 2 zmm), V packed in column blocks of 32.
// Both use 24 of the 32 zmm registers for accumulators.
//
// The file is compiled for AVX-512 by the target pragma below (whether or not the build adds -mavx512*).
// Everything here has internal linkage and only <immintrin.h>, <cstdint> and <utility> (for a class template)
// are included, so no AVX-512 copy of a shared inline function (std::min, ...) can be picked by the linker
// for the AVX2 code.
// GCC 12 warns about the intentionally undefined source operand inside its own AVX-512 intrinsics (GCC bug
// 105593, fixed in 13); the warnings point into immintrin.h, so they are silenced around its inclusion too.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <cstdint>
#include <utility>  // std::integer_sequence (class templates only)

#include "ops/attention_kernels.h"

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq")

namespace krea2 {
namespace {

constexpr int kQkRows = 8;   // keys per QK block
constexpr int kQkVecs = 3;   // zmm of query lanes per QK block (48 = kQueryTile)
constexpr int kPvRows = 12;  // queries per PV block
constexpr int kPvCols = 32;  // V column block (2 zmm)

#define KREA2_INLINE __attribute__((always_inline)) inline

KREA2_INLINE int min_int(int a, int b) {
  return a < b ? a : b;
}

// Compile-time unrolling so GCC keeps the accumulator arrays in registers (see unroll in attention.cpp;
// redefined here so that its instantiations are compiled for AVX-512).
template <typename F, int... I>
KREA2_INLINE void unroll_impl(F& f, std::integer_sequence<int, I...>) {
  (f(std::integral_constant<int, I>{}), ...);
}
template <int N, typename F>
KREA2_INLINE void unroll(F&& f) {
  unroll_impl(f, std::make_integer_sequence<int, N>{});
}

// The AVX2 kernel's exp2_nonpositive on 16 lanes: same clamp, rounding, coefficients and Horner order.
KREA2_INLINE __m512 exp2_nonpositive(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-126.0f));
  const __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_sub_ps(x, n);
  __m512 p = _mm512_set1_ps(0x1.444p-13f);
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0x1.5f48cp-10f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0x1.3b2a1cp-7f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0x1.c6aeccp-5f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0x1.ebfbep-3f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0x1.62e43p-1f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
  const __m512i e = _mm512_slli_epi32(_mm512_cvtps_epi32(n), 23);
  return _mm512_castsi512_ps(_mm512_add_epi32(_mm512_castps_si512(p), e));
}

KREA2_INLINE __mmask16 first_lanes(int n) {  // n in 0..16
  return __mmask16((1u << n) - 1u);
}

// st[r * ldst + c] = sum_d k[r * ldk + d] * qt[d * ldqt + c] for r < MR, c < 16 * NV.
template <int MR, int NV>
void qk_kernel(const float* k, int64_t ldk, const float* qt, int ldqt, int hd, float* st, int ldst) {
  __m512 acc[MR][NV];
  unroll<MR>([&](auto i) { unroll<NV>([&](auto j) { acc[i][j] = _mm512_setzero_ps(); }); });
  for (int d = 0; d < hd; ++d) {
    __m512 b[NV];
    unroll<NV>([&](auto j) { b[j] = _mm512_loadu_ps(qt + int64_t(d) * ldqt + 16 * j); });
    unroll<MR>([&](auto i) {
      const __m512 a = _mm512_set1_ps(k[i * ldk + d]);
      unroll<NV>([&](auto j) { acc[i][j] = _mm512_fmadd_ps(a, b[j], acc[i][j]); });
    });
  }
  unroll<MR>(
      [&](auto i) { unroll<NV>([&](auto j) { _mm512_storeu_ps(st + i * ldst + 16 * j, acc[i][j]); }); });
}

// o[i * ldo + n] = alpha[i] * o[i * ldo + n] + sum_r p[r * ldp + i] * v[r * ldv + n] for i < MR and the
// 16 * NV columns n, of which the last vector is restricted to the lanes of `last` (8-wide column tails).
// alpha == null: the accumulator starts at 0.
template <int MR, int NV>
void pv_kernel(const float* p, int ldp, int nk, const float* v, int ldv, const float* alpha, float* o,
               int ldo, __mmask16 last) {
  __m512 acc[MR][NV];
  if (alpha) {
    unroll<MR>([&](auto i) {
      const __m512 a = _mm512_set1_ps(alpha[i]);
      unroll<NV>([&](auto j) {
        const __mmask16 mk = j == NV - 1 ? last : __mmask16(0xFFFF);
        acc[i][j] = _mm512_mul_ps(a, _mm512_maskz_loadu_ps(mk, o + i * ldo + 16 * j));
      });
    });
  } else {
    unroll<MR>([&](auto i) { unroll<NV>([&](auto j) { acc[i][j] = _mm512_setzero_ps(); }); });
  }
  for (int r = 0; r < nk; ++r) {
    __m512 b[NV];
    unroll<NV>([&](auto j) {
      const __mmask16 mk = j == NV - 1 ? last : __mmask16(0xFFFF);
      b[j] = _mm512_maskz_loadu_ps(mk, v + r * ldv + 16 * j);
    });
    const float* pr = p + int64_t(r) * ldp;
    unroll<MR>([&](auto i) {
      const __m512 a = _mm512_set1_ps(pr[i]);
      unroll<NV>([&](auto j) { acc[i][j] = _mm512_fmadd_ps(a, b[j], acc[i][j]); });
    });
  }
  unroll<MR>([&](auto i) {
    unroll<NV>([&](auto j) {
      const __mmask16 mk = j == NV - 1 ? last : __mmask16(0xFFFF);
      _mm512_mask_storeu_ps(o + i * ldo + 16 * j, mk, acc[i][j]);
    });
  });
}

using QkFn = void (*)(const float*, int64_t, const float*, int, int, float*, int);
using PvFn = void (*)(const float*, int, int, const float*, int, const float*, float*, int, __mmask16);

// Tables indexed [rows - 1][vectors - 1].
template <int NV, int... I>
struct QkTable {
  static constexpr QkFn fns[] = {qk_kernel<I + 1, NV>...};
};
template <int NV, int... I>
struct PvTable {
  static constexpr PvFn fns[] = {pv_kernel<I + 1, NV>...};
};
template <int NV, int... I>
constexpr const QkFn* qk_table(std::integer_sequence<int, I...>) {
  return QkTable<NV, I...>::fns;
}
template <int NV, int... I>
constexpr const PvFn* pv_table(std::integer_sequence<int, I...>) {
  return PvTable<NV, I...>::fns;
}

QkFn qk_fn(int mr, int nv) {
  constexpr auto rows = std::make_integer_sequence<int, kQkRows>{};
  static constexpr const QkFn* t[kQkVecs] = {qk_table<1>(rows), qk_table<2>(rows), qk_table<3>(rows)};
  return t[nv - 1][mr - 1];
}
PvFn pv_fn(int mr, int nv) {
  constexpr auto rows = std::make_integer_sequence<int, kPvRows>{};
  static constexpr const PvFn* t[2] = {pv_table<1>(rows), pv_table<2>(rows)};
  return t[nv - 1][mr - 1];
}

void scores(const float* k, int64_t ldk, int nk, const float* qt, int ldqt, int hd, float* st) {
  for (int r0 = 0; r0 < nk; r0 += kQkRows) {
    const int mr = min_int(kQkRows, nk - r0);
    for (int c0 = 0; c0 < ldqt; c0 += 16 * kQkVecs) {
      const int nv = min_int(kQkVecs, (ldqt - c0) / 16);
      if (mr == kQkRows && nv == kQkVecs)
        qk_kernel<kQkRows, kQkVecs>(k + r0 * ldk, ldk, qt + c0, ldqt, hd, st + r0 * ldqt + c0, ldqt);
      else
        qk_fn(mr, nv)(k + r0 * ldk, ldk, qt + c0, ldqt, hd, st + r0 * ldqt + c0, ldqt);
    }
  }
}

// softmax_tile of attention.cpp on 16 query lanes at a time (ncols == ldqt, a multiple of 16).
template <bool kMasked>
void softmax_tile(float* st, int ldst, int nk, const uint8_t* valid, float* m, float* l, float* alpha) {
  const __m512 neg_inf = _mm512_set1_ps(-__builtin_inff());
  for (int c = 0; c < ldst; c += 16) {
    float* col = st + c;
    __m512 mx0 = neg_inf, mx1 = neg_inf;
    int r = 0;
    if constexpr (!kMasked) {
      for (; r + 1 < nk; r += 2) {
        mx0 = _mm512_max_ps(mx0, _mm512_loadu_ps(col + int64_t(r) * ldst));
        mx1 = _mm512_max_ps(mx1, _mm512_loadu_ps(col + int64_t(r + 1) * ldst));
      }
    }
    for (; r < nk; ++r)
      if (!kMasked || valid[r]) mx0 = _mm512_max_ps(mx0, _mm512_loadu_ps(col + int64_t(r) * ldst));
    const __m512 m_old = _mm512_loadu_ps(m + c);
    const __m512 m_new = _mm512_max_ps(m_old, _mm512_max_ps(mx0, mx1));
    const __m512 a = exp2_nonpositive(_mm512_sub_ps(m_old, m_new));
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    r = 0;
    if constexpr (!kMasked) {
      for (; r + 1 < nk; r += 2) {
        float* p0 = col + int64_t(r) * ldst;
        float* p1 = p0 + ldst;
        const __m512 e0 = exp2_nonpositive(_mm512_sub_ps(_mm512_loadu_ps(p0), m_new));
        const __m512 e1 = exp2_nonpositive(_mm512_sub_ps(_mm512_loadu_ps(p1), m_new));
        _mm512_storeu_ps(p0, e0);
        _mm512_storeu_ps(p1, e1);
        s0 = _mm512_add_ps(s0, e0);
        s1 = _mm512_add_ps(s1, e1);
      }
    }
    for (; r < nk; ++r) {
      float* p0 = col + int64_t(r) * ldst;
      if (!kMasked || valid[r]) {
        const __m512 e0 = exp2_nonpositive(_mm512_sub_ps(_mm512_loadu_ps(p0), m_new));
        _mm512_storeu_ps(p0, e0);
        s0 = _mm512_add_ps(s0, e0);
      } else {
        _mm512_storeu_ps(p0, _mm512_setzero_ps());
      }
    }
    _mm512_storeu_ps(l + c, _mm512_fmadd_ps(_mm512_loadu_ps(l + c), a, _mm512_add_ps(s0, s1)));
    _mm512_storeu_ps(m + c, m_new);
    _mm512_storeu_ps(alpha + c, a);
  }
}

void softmax(float* st, int ldqt, int nk, const uint8_t* valid, float* m, float* l, float* alpha) {
  if (valid)
    softmax_tile<true>(st, ldqt, nk, valid, m, l, alpha);
  else
    softmax_tile<false>(st, ldqt, nk, nullptr, m, l, alpha);
}

// Column blocks of kPvCols (the last one ldo % 32 wide when that is not 0), each nk x width contiguous at
// dst + n0 * nk, as pack_values in attention.cpp does with 16 (see there for why V is packed). The masked
// loads read only the hd - n0 real columns and give the zero padding.
void pack_values(const float* v, int64_t ldv, int nk, int hd, int ldo, float* dst) {
  for (int n0 = 0; n0 < ldo; n0 += kPvCols) {
    const int w = min_int(kPvCols, ldo - n0);
    const int real = hd - n0 < w ? hd - n0 : w;
    const __mmask16 ld0 = first_lanes(min_int(real, 16)), ld1 = first_lanes(real > 16 ? real - 16 : 0);
    const __mmask16 st0 = first_lanes(min_int(w, 16)), st1 = first_lanes(w > 16 ? w - 16 : 0);
    float* blk = dst + int64_t(n0) * nk;
    for (int r = 0; r < nk; ++r) {
      const float* src = v + r * ldv + n0;
      _mm512_mask_storeu_ps(blk + r * w, st0, _mm512_maskz_loadu_ps(ld0, src));
      if (w > 16) _mm512_mask_storeu_ps(blk + r * w + 16, st1, _mm512_maskz_loadu_ps(ld1, src + 16));
    }
  }
}

void pv(const float* p, int ldqt, int nk, int mq, const float* vpack, int ldo, const float* alpha, float* o) {
  for (int n0 = 0; n0 < ldo; n0 += kPvCols) {
    const int w = min_int(kPvCols, ldo - n0);  // a multiple of 8
    const int nv = (w + 15) / 16;
    const __mmask16 last = w % 16 == 0 ? __mmask16(0xFFFF) : first_lanes(8);
    const float* vb = vpack + int64_t(n0) * nk;
    for (int i0 = 0; i0 < mq; i0 += kPvRows) {
      const int mr = min_int(kPvRows, mq - i0);
      const float* al = alpha ? alpha + i0 : nullptr;
      if (mr == kPvRows && nv == 2)
        pv_kernel<kPvRows, 2>(p + i0, ldqt, nk, vb, w, al, o + i0 * ldo + n0, ldo, last);
      else
        pv_fn(mr, nv)(p + i0, ldqt, nk, vb, w, al, o + i0 * ldo + n0, ldo, last);
    }
  }
}

}  // namespace

constexpr AttentionTileKernels kAttentionTileKernelsAvx512 = {
    "avx512 qk 8x48 pv 12x32", 16, scores, softmax, pack_values, pv,
};

}  // namespace krea2

#pragma GCC pop_options
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
