// Tiled attention with an online softmax (flash-attention style), AVX2 + FMA, OpenMP over work items.
//
// Layout: instead of transposing K, each work item transposes its (small) query tile once into Q^T
// (head_dim x queries, pre-scaled by log2(e)/sqrt(head_dim)). Then both products,
//   scores^T (keys x queries) = K_tile (keys x head_dim) * Q^T   (A = K rows, broadcast; B = Q^T rows)
//   O (queries x head_dim)   += P (queries x keys) * V_tile      (A = P, broadcast from scores^T; B = V rows)
// run on the same register-blocked shape C(6 x 16) += A(6 x K) * B(K x 16) with 12 ymm accumulators. The
// query tile is reused over the whole segment, so its transpose is amortised, and there is no per-segment K
// panel (nor a barrier between building and using one), which keeps the per-segment cost small for thousands
// of tiny segments. The current V tile (and K tile, when several heads share it) is copied into a small
// contiguous buffer; see pack_values for why.
//
// Scores^T has queries in the vector lanes, so the online softmax is purely vertical: running max, running
// sum and rescale factor are per-lane vectors, no horizontal reductions. Scores are in log2 units (the scale
// is folded into Q^T), so probabilities are exp2(s - max), from a polynomial on AVX2.
//
// The steps of a key tile (scores, softmax, V packing, P * V) go through an AttentionTileKernels table
// (ops/attention_kernels.h), chosen once per call by active_isa(): the AVX2 one below, or the AVX-512 one
// (attention_avx512.cpp, same math and summation order, wider register blocks).
#include "ops/attention.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <utility>

#include "cpu/cpu_features.h"
#include "krea2/error.h"
#include "ops/attention_kernels.h"
#include "ops/simd.h"

namespace krea2 {

namespace {

// Tile sizes. A work item owns up to kQueryTile queries of up to kMaxHeadsPerItem query heads of one GQA
// group and sweeps the segment's keys in tiles of kKeyTile. Per head: Q^T 128 x 48 floats (24 KiB) and the
// output accumulator 48 x 128 (24 KiB); the score tile is 96 x 48 (18 KiB). Everything stays in L2, and the
// operands of each microkernel sweep (one Q^T column block, one V column block, the score tile) in L1.
constexpr int kQueryTile = 48;  // multiple of 16 (lanes of Q^T) -- also of 6 and 12: no PV row tail
constexpr int kKeyTile = 96;
constexpr int kMaxHeadsPerItem = 4;
constexpr int kMr = 6;  // microkernel rows: 6 x 2 ymm accumulators + 2 B vectors + 1 broadcast = 15 registers

int round_up8(int x) {
  return (x + 7) & ~7;
}

// 2^x for x <= 0 (x = -inf gives 2^-126, which is harmless: it only ever scales terms that are already 0 or
// weighs a key against one with probability 1). Split x = n + f with n = round(x), |f| <= 1/2, then
// 2^f ~ degree-6 polynomial (coefficients: interpolation of 2^f at the 7 Chebyshev nodes of [-1/2, 1/2],
// solved in long double and rounded to float; measured max relative error 1.33 * 2^-24 in float Horner
// form) and 2^n is added into the exponent field. Clamping at -126 keeps the exponent field >= 0.
inline __m256 exp2_nonpositive(__m256 x) {
  x = _mm256_max_ps(x, _mm256_set1_ps(-126.0f));
  const __m256 n = _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256 f = _mm256_sub_ps(x, n);
  __m256 p = _mm256_set1_ps(0x1.444p-13f);
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(0x1.5f48cp-10f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(0x1.3b2a1cp-7f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(0x1.c6aeccp-5f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(0x1.ebfbep-3f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(0x1.62e43p-1f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f));
  const __m256i e = _mm256_slli_epi32(_mm256_cvtps_epi32(n), 23);
  return _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(p), e));
}

// Mask selecting the first `n` (0..8) lanes, for head_dim tails.
__m256i lane_mask(int n) {
  alignas(32) int32_t m[8];
  for (int i = 0; i < 8; ++i) m[i] = i < n ? -1 : 0;
  return _mm256_load_si256(reinterpret_cast<const __m256i*>(m));
}

// Calls f(integral_constant<0>) ... f(integral_constant<N - 1>). The microkernels index their accumulator
// arrays through this instead of `for` loops: GCC scalarises arrays into registers only when every index is a
// constant before loop unrolling runs; with plain loops it kept the 12 accumulators on the stack (a store per
// FMA).
#define KREA2_INLINE __attribute__((always_inline)) inline
template <typename F, int... I>
KREA2_INLINE void unroll_impl(F& f, std::integer_sequence<int, I...>) {
  (f(std::integral_constant<int, I>{}), ...);
}
template <int N, typename F>
KREA2_INLINE void unroll(F&& f) {
  unroll_impl(f, std::make_integer_sequence<int, N>{});
}

// st[r * ldst + c] = sum_d k[r * ldk + d] * qt[d * ldqt + c] for r < MR, c < 8 * NV.
template <int MR, int NV>
void qk_kernel(const float* k, int64_t ldk, const float* qt, int ldqt, int hd, float* st, int ldst) {
  __m256 acc[MR][NV];
  unroll<MR>([&](auto i) { unroll<NV>([&](auto j) { acc[i][j] = _mm256_setzero_ps(); }); });
  for (int d = 0; d < hd; ++d) {
    __m256 b[NV];
    unroll<NV>([&](auto j) { b[j] = _mm256_loadu_ps(qt + int64_t(d) * ldqt + 8 * j); });
    unroll<MR>([&](auto i) {
      const __m256 a = _mm256_broadcast_ss(k + i * ldk + d);
      unroll<NV>([&](auto j) { acc[i][j] = _mm256_fmadd_ps(a, b[j], acc[i][j]); });
    });
  }
  unroll<MR>(
      [&](auto i) { unroll<NV>([&](auto j) { _mm256_storeu_ps(st + i * ldst + 8 * j, acc[i][j]); }); });
}

// o[i * ldo + n] = alpha[i] * o[i * ldo + n] + sum_r p[r * ldp + i] * v[r * ldv + n] for i < MR, n < 8 * NV.
// The online-softmax rescale of the accumulator is fused into its load; on the first key tile (alpha == null)
// the accumulator starts at 0 instead, so it never needs clearing. v is a packed V block (see pack_values).
template <int MR, int NV>
void pv_kernel(const float* p, int ldp, int nk, const float* v, int ldv, const float* alpha, float* o,
               int ldo) {
  __m256 acc[MR][NV];
  if (alpha) {
    unroll<MR>([&](auto i) {
      const __m256 a = _mm256_broadcast_ss(alpha + i);
      unroll<NV>([&](auto j) { acc[i][j] = _mm256_mul_ps(a, _mm256_loadu_ps(o + i * ldo + 8 * j)); });
    });
  } else {
    unroll<MR>([&](auto i) { unroll<NV>([&](auto j) { acc[i][j] = _mm256_setzero_ps(); }); });
  }
  for (int r = 0; r < nk; ++r) {
    __m256 b[NV];
    unroll<NV>([&](auto j) { b[j] = _mm256_loadu_ps(v + r * ldv + 8 * j); });
    const float* pr = p + int64_t(r) * ldp;
    unroll<MR>([&](auto i) {
      const __m256 a = _mm256_broadcast_ss(pr + i);
      unroll<NV>([&](auto j) { acc[i][j] = _mm256_fmadd_ps(a, b[j], acc[i][j]); });
    });
  }
  unroll<MR>([&](auto i) { unroll<NV>([&](auto j) { _mm256_storeu_ps(o + i * ldo + 8 * j, acc[i][j]); }); });
}

// Copies a V tile (nk rows of hd values, row stride ldv) into column blocks of 16 (the last one 8 wide when
// ldo % 16 == 8), each block nk x width contiguous at dst + n0 * nk, zero-padded from hd to ldo. Read in
// place, the V rows of a column block sit at the caller's row stride -- for the main blocks 6 KiB, a multiple
// of the L1 set stride -- so the 96 rows of a block fell into 2 of the 64 L1 sets and were refetched from L2
// for every query block. Packed, a block is 6 KiB of consecutive lines. Also removes every head_dim tail from
// the kernel.
void pack_values(const float* v, int64_t ldv, int nk, int hd, int ldo, float* dst) {
  for (int n0 = 0; n0 < ldo; n0 += 16) {
    const int w = std::min(16, ldo - n0);
    float* blk = dst + int64_t(n0) * nk;
    if (n0 + w <= hd) {
      for (int r = 0; r < nk; ++r) {
        const float* src = v + r * ldv + n0;
        _mm256_storeu_ps(blk + r * w, _mm256_loadu_ps(src));
        if (w == 16) _mm256_storeu_ps(blk + r * w + 8, _mm256_loadu_ps(src + 8));
      }
    } else {
      for (int r = 0; r < nk; ++r)
        for (int c = 0; c < w; ++c) blk[r * w + c] = n0 + c < hd ? v[r * ldv + n0 + c] : 0.0f;
    }
  }
}

using QkFn = void (*)(const float*, int64_t, const float*, int, int, float*, int);
using PvFn = void (*)(const float*, int, int, const float*, int, const float*, float*, int);

template <int NV>
constexpr QkFn kQkKernels[kMr + 1] = {nullptr,          qk_kernel<1, NV>, qk_kernel<2, NV>, qk_kernel<3, NV>,
                                      qk_kernel<4, NV>, qk_kernel<5, NV>, qk_kernel<6, NV>};
template <int NV>
constexpr PvFn kPvKernels[kMr + 1] = {nullptr,          pv_kernel<1, NV>, pv_kernel<2, NV>, pv_kernel<3, NV>,
                                      pv_kernel<4, NV>, pv_kernel<5, NV>, pv_kernel<6, NV>};

QkFn qk_fn(int mr, int nv) {
  return nv == 2 ? kQkKernels<2>[mr] : kQkKernels<1>[mr];
}
PvFn pv_fn(int mr, int nv) {
  return nv == 2 ? kPvKernels<2>[mr] : kPvKernels<1>[mr];
}

// One online-softmax step on a tile of scores^T (nk key rows x ncols query lanes, log2 units): replaces the
// scores by exp2(s - m_new), updates the running max m and sum l per query, and writes the factor alpha =
// exp2(m_old - m_new) by which the output accumulator must be rescaled. With kMasked, rows whose valid[r] is
// 0 are excluded from the max and get probability 0. The caller guarantees at least one valid row, so m_new
// is finite and no -inf - -inf = NaN can arise.
template <bool kMasked>
void softmax_tile(float* st, int ldst, int nk, int ncols, const uint8_t* valid, float* m, float* l,
                  float* alpha) {
  const __m256 neg_inf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  for (int c = 0; c < ncols; c += 8) {
    float* col = st + c;
    __m256 mx0 = neg_inf, mx1 = neg_inf;  // two chains: vmaxps latency, not throughput, would bound one
    int r = 0;
    if constexpr (!kMasked) {
      for (; r + 1 < nk; r += 2) {
        mx0 = _mm256_max_ps(mx0, _mm256_loadu_ps(col + int64_t(r) * ldst));
        mx1 = _mm256_max_ps(mx1, _mm256_loadu_ps(col + int64_t(r + 1) * ldst));
      }
    }
    for (; r < nk; ++r)
      if (!kMasked || valid[r]) mx0 = _mm256_max_ps(mx0, _mm256_loadu_ps(col + int64_t(r) * ldst));
    const __m256 m_old = _mm256_loadu_ps(m + c);
    const __m256 m_new = _mm256_max_ps(m_old, _mm256_max_ps(mx0, mx1));
    const __m256 a = exp2_nonpositive(_mm256_sub_ps(m_old, m_new));
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    r = 0;
    if constexpr (!kMasked) {
      for (; r + 1 < nk; r += 2) {
        float* p0 = col + int64_t(r) * ldst;
        float* p1 = p0 + ldst;
        const __m256 e0 = exp2_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(p0), m_new));
        const __m256 e1 = exp2_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(p1), m_new));
        _mm256_storeu_ps(p0, e0);
        _mm256_storeu_ps(p1, e1);
        s0 = _mm256_add_ps(s0, e0);
        s1 = _mm256_add_ps(s1, e1);
      }
    }
    for (; r < nk; ++r) {
      float* p0 = col + int64_t(r) * ldst;
      if (!kMasked || valid[r]) {
        const __m256 e0 = exp2_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(p0), m_new));
        _mm256_storeu_ps(p0, e0);
        s0 = _mm256_add_ps(s0, e0);
      } else {
        _mm256_storeu_ps(p0, _mm256_setzero_ps());
      }
    }
    _mm256_storeu_ps(l + c, _mm256_fmadd_ps(_mm256_loadu_ps(l + c), a, _mm256_add_ps(s0, s1)));
    _mm256_storeu_ps(m + c, m_new);
    _mm256_storeu_ps(alpha + c, a);
  }
}

// The AVX2 tile kernels (AttentionTileKernels).
void scores_avx2(const float* kp, int64_t ldk, int nk, const float* qt, int ldqt, int hd, float* st) {
  for (int r0 = 0; r0 < nk; r0 += kMr) {
    const int mr = std::min(kMr, nk - r0);
    for (int c0 = 0; c0 < ldqt; c0 += 16) {
      const int nv = ldqt - c0 >= 16 ? 2 : 1;
      if (mr == kMr && nv == 2)
        qk_kernel<kMr, 2>(kp + r0 * ldk, ldk, qt + c0, ldqt, hd, st + r0 * ldqt + c0, ldqt);
      else
        qk_fn(mr, nv)(kp + r0 * ldk, ldk, qt + c0, ldqt, hd, st + r0 * ldqt + c0, ldqt);
    }
  }
}

void softmax_avx2(float* st, int ldqt, int nk, const uint8_t* valid, float* m, float* l, float* alpha) {
  if (valid)
    softmax_tile<true>(st, ldqt, nk, ldqt, valid, m, l, alpha);
  else
    softmax_tile<false>(st, ldqt, nk, ldqt, nullptr, m, l, alpha);
}

// V column blocks outermost so each stays in L1 across the query blocks.
void pv_avx2(const float* p, int ldqt, int nk, int mq, const float* vpack, int ldo, const float* alpha,
             float* o) {
  for (int n0 = 0; n0 < ldo; n0 += 16) {
    const int w = std::min(16, ldo - n0);
    const float* vb = vpack + int64_t(n0) * nk;
    for (int i0 = 0; i0 < mq; i0 += kMr) {
      const int mr = std::min(kMr, mq - i0);
      const float* al = alpha ? alpha + i0 : nullptr;
      if (mr == kMr && w == 16)
        pv_kernel<kMr, 2>(p + i0, ldqt, nk, vb, w, al, o + i0 * ldo + n0, ldo);
      else
        pv_fn(mr, w / 8)(p + i0, ldqt, nk, vb, w, al, o + i0 * ldo + n0, ldo);
    }
  }
}

constexpr AttentionTileKernels kTileKernelsAvx2 = {
    "avx2 qk 6x16 pv 6x16", 8, scores_avx2, softmax_avx2, pack_values, pv_avx2,
};

// The one dispatch point.
const AttentionTileKernels& tile_kernels() {
  return active_isa() >= Isa::kAvx512 ? kAttentionTileKernelsAvx512 : kTileKernelsAvx2;
}

struct AlignedFree {
  void operator()(float* p) const { std::free(p); }
};

// Per-thread scratch: Q^T, the output accumulator and the softmax state for up to kMaxHeadsPerItem heads,
// plus one score tile and the packed K and V tiles. O(tile) memory (~0.3 MiB at head_dim 128), independent
// of the segment length.
struct Scratch {
  explicit Scratch(int hd) {
    ldo = round_up8(hd);
    qt_stride = int64_t(hd) * kQueryTile;
    o_stride = int64_t(kQueryTile) * ldo;
    const int64_t total = kMaxHeadsPerItem * (qt_stride + o_stride + 3 * kQueryTile) +
                          int64_t(kKeyTile) * (kQueryTile + ldo + hd);
    const size_t bytes = (size_t(total) * sizeof(float) + 63) & ~size_t(63);
    mem.reset(static_cast<float*>(std::aligned_alloc(64, bytes)));
    if (!mem) throw Error("attention: out of memory for scratch");
    float* p = mem.get();
    qt = p, p += kMaxHeadsPerItem * qt_stride;
    o = p, p += kMaxHeadsPerItem * o_stride;
    m = p, p += kMaxHeadsPerItem * kQueryTile;
    l = p, p += kMaxHeadsPerItem * kQueryTile;
    alpha = p, p += kMaxHeadsPerItem * kQueryTile;
    st = p, p += kKeyTile * kQueryTile;
    vpack = p, p += int64_t(kKeyTile) * ldo;
    kpack = p;
  }
  std::unique_ptr<float, AlignedFree> mem;
  int ldo = 0;
  int64_t qt_stride = 0, o_stride = 0;
  float *qt = nullptr, *o = nullptr, *m = nullptr, *l = nullptr, *alpha = nullptr, *st = nullptr;
  float* vpack = nullptr;  // the current V tile, packed
  float* kpack = nullptr;
  uint8_t valid[kKeyTile];
};

struct Args {
  const float* q;
  int64_t ldq;
  const float* k;
  int64_t ldk;
  const float* v;
  int64_t ldv;
  float* out;
  int64_t ldout;
  int hd;
  int group;  // query heads per kv head
  const uint8_t* key_valid;
  const AttentionTileKernels* kernels;
};

// dst[d * ldd + i] = scale * src[i * lds + d] for d < 8, i < 8, where source rows i >= rows are read as 0
// (the zero padding of the query lanes). 8 x 8 in-register transpose: the scalar version cost as much as all
// the arithmetic of a tiny segment.
inline void transpose8x8_scaled(const float* src, int64_t lds, int rows, __m256 scale, float* dst, int ldd) {
  __m256 r[8];
  for (int i = 0; i < 8; ++i)
    r[i] = i < rows ? _mm256_mul_ps(_mm256_loadu_ps(src + i * lds), scale) : _mm256_setzero_ps();
  transpose8x8(r);
  for (int d = 0; d < 8; ++d) _mm256_storeu_ps(dst + d * ldd, r[d]);
}

// Q^T of one head: qt[d * ldqt + i] = scale * q[i * ldq + d] for i < mq, zero for mq <= i < ldqt.
void transpose_queries(const float* q, int64_t ldq, int mq, int hd, float scale, float* qt, int ldqt) {
  const __m256 vscale = _mm256_set1_ps(scale);
  const int hd8 = hd & ~7;
  for (int i0 = 0; i0 < ldqt; i0 += 8) {
    const int rows = std::max(0, std::min(8, mq - i0));
    for (int d0 = 0; d0 < hd8; d0 += 8)
      transpose8x8_scaled(q + i0 * ldq + d0, ldq, rows, vscale, qt + int64_t(d0) * ldqt + i0, ldqt);
    for (int d = hd8; d < hd; ++d)
      for (int i = 0; i < 8; ++i)
        qt[int64_t(d) * ldqt + i0 + i] = i < rows ? q[(i0 + i) * ldq + d] * scale : 0.0f;
  }
}

// Causal masking: scores of keys after a query are set to this (log2 units) on the tiles that cross the
// diagonal. Finite on purpose: a query lane whose every key of a tile is masked keeps a finite running max
// (no -inf - -inf), its dummy probabilities are scaled by exp2(kMaskedScore - s) = 2^-126 (nothing) once a
// real key comes, and a lane whose running max is still this at the end saw no key at all and gets zeros.
constexpr float kMaskedScore = -1e30f;

// st[r * ldqt + i] = kMaskedScore where key k0 + r comes after query q0 + i.
void mask_future_keys(float* st, int ldqt, int nk, int64_t k0, int64_t q0) {
  for (int r = 0; r < nk; ++r) {
    // Key k0 + r comes after query q0 + i for the lanes i < k0 + r - q0.
    const int64_t masked_lanes = std::clamp<int64_t>(k0 + r - q0, 0, ldqt);
    std::fill_n(st + int64_t(r) * ldqt, masked_lanes, kMaskedScore);
  }
}

// Heads [h0, h1) (all state held at once, <= kMaxHeadsPerItem) for queries [q0, q0 + mq) of the segment of
// `len` rows starting at global row `base`; with `causal`, query q0 + i sees keys 0 .. q0 + i only.
void run_heads(const Args& a, Scratch& s, int64_t base, int64_t len, bool causal, int64_t q0, int mq, int h0,
               int h1) {
  const int hd = a.hd;
  const AttentionTileKernels& kr = *a.kernels;
  // Query lanes, padded with zero queries (their results are dropped).
  const int ldqt = (mq + kr.lanes - 1) / kr.lanes * kr.lanes;
  const int ldo = s.ldo;
  const int nh = h1 - h0;
  // Scores in log2 units: exp(x / sqrt(hd)) = exp2(x * log2(e) / sqrt(hd)).
  const float scale = float(1.4426950408889634 / std::sqrt(double(hd)));
  for (int t = 0; t < nh; ++t) {
    transpose_queries(a.q + (base + q0) * a.ldq + int64_t(h0 + t) * hd, a.ldq, mq, hd, scale,
                      s.qt + t * s.qt_stride, ldqt);
    std::fill_n(s.m + t * kQueryTile, ldqt, -std::numeric_limits<float>::infinity());
    std::fill_n(s.l + t * kQueryTile, ldqt, 0.0f);
  }
  const __m256i tail_mask = lane_mask(hd % 8 == 0 ? 8 : hd % 8);
  bool first = true;  // no key tile processed yet: the output accumulators hold garbage, not 0
  const int64_t key_end = causal ? std::min<int64_t>(len, q0 + mq) : len;
  for (int64_t k0 = 0; k0 < key_end; k0 += kKeyTile) {
    const int nk = int(std::min<int64_t>(kKeyTile, key_end - k0));
    const bool crosses_diagonal = causal && k0 + nk - 1 > q0;
    bool masked = false;
    if (a.key_valid) {
      int count = 0;
      for (int r = 0; r < nk; ++r) count += (s.valid[r] = a.key_valid[base + k0 + r] != 0);
      if (count == 0) continue;  // nothing to attend to here; skipping keeps the running max finite
      masked = count < nk;
    }
    int packed_kvh = -1;  // kv head whose V tile is in s.vpack (heads of a block share it)
    for (int t = 0; t < nh; ++t) {
      const int kvh = (h0 + t) / a.group;
      // K tile: read in place by a single head; packed (contiguous rows) when several heads share it, which
      // measured ~3 % faster at the main-block shape (K rows 6 KiB apart span many pages and L1 sets).
      const float* kp = a.k + (base + k0) * a.ldk + int64_t(kvh) * hd;
      int64_t ldk = a.ldk;
      if (nh > 1) {
        if (kvh != packed_kvh)
          for (int r = 0; r < nk; ++r)
            std::memcpy(s.kpack + r * hd, kp + r * a.ldk, sizeof(float) * size_t(hd));
        kp = s.kpack;
        ldk = hd;
      }
      const float* qt = s.qt + t * s.qt_stride;
      // scores^T = K_tile * Q^T.
      kr.scores(kp, ldk, nk, qt, ldqt, hd, s.st);
      if (crosses_diagonal) mask_future_keys(s.st, ldqt, nk, k0, q0);
      float* m = s.m + t * kQueryTile;
      float* l = s.l + t * kQueryTile;
      float* alpha = s.alpha + t * kQueryTile;
      const float* rescale = first ? nullptr : alpha;
      kr.softmax(s.st, ldqt, nk, masked ? s.valid : nullptr, m, l, alpha);
      // O = alpha * O + P * V_tile.
      if (kvh != packed_kvh) {
        kr.pack_values(a.v + (base + k0) * a.ldv + int64_t(kvh) * hd, a.ldv, nk, hd, ldo, s.vpack);
        packed_kvh = kvh;
      }
      kr.pv(s.st, ldqt, nk, mq, s.vpack, ldo, rescale, s.o + t * s.o_stride);
    }
    first = false;
  }
  // out = O / l. A query that saw no valid key (l == 0; its accumulator was never written) gets exact zeros.
  for (int t = 0; t < nh; ++t) {
    const float* o = s.o + t * s.o_stride;
    const float* l = s.l + t * kQueryTile;
    float* orow = a.out + (base + q0) * a.ldout + int64_t(h0 + t) * hd;
    const float* m = s.m + t * kQueryTile;
    for (int i = 0; i < mq; ++i, orow += a.ldout) {
      if (!(l[i] > 0.0f) || (causal && m[i] <= 0.5f * kMaskedScore)) {
        std::fill_n(orow, hd, 0.0f);
        continue;
      }
      const __m256 inv = _mm256_set1_ps(1.0f / l[i]);
      const float* oi = o + i * ldo;
      int d = 0;
      for (; d + 8 <= hd; d += 8) _mm256_storeu_ps(orow + d, _mm256_mul_ps(_mm256_loadu_ps(oi + d), inv));
      if (d < hd) _mm256_maskstore_ps(orow + d, tail_mask, _mm256_mul_ps(_mm256_loadu_ps(oi + d), inv));
    }
  }
}

struct Item {
  int32_t segment;
  int32_t h0, h1;
  int32_t q0;  // first query of the tile, relative to the segment
};

void validate(const AttentionShape& shape, const std::vector<Segment>& segments) {
  if (shape.num_heads < 1 || shape.num_kv_heads < 1 || shape.head_dim < 1 ||
      shape.num_heads % shape.num_kv_heads != 0)
    throw Error("attention: bad shape (heads " + std::to_string(shape.num_heads) + ", kv heads " +
                std::to_string(shape.num_kv_heads) + ", head dim " + std::to_string(shape.head_dim) + ")");
  for (const Segment& s : segments)
    if (s.begin < 0 || s.length < 0 || s.length > std::numeric_limits<int32_t>::max())
      throw Error("attention: bad segment (begin " + std::to_string(s.begin) + ", length " +
                  std::to_string(s.length) + ")");
}

}  // namespace

void attention(const float* q, int64_t ldq, const float* k, int64_t ldk, const float* v, int64_t ldv,
               float* out, int64_t ldo, const AttentionShape& shape, const std::vector<Segment>& segments,
               const uint8_t* key_valid) {
  validate(shape, segments);
  const int group = shape.num_heads / shape.num_kv_heads;
  // Head blocks: the query heads of one kv head, split into ceil(group / kMaxHeadsPerItem) blocks of equal
  // size (the last may be smaller), so a block shares every K/V tile it loads.
  const int blocks_per_group = (group + kMaxHeadsPerItem - 1) / kMaxHeadsPerItem;
  const int block = (group + blocks_per_group - 1) / blocks_per_group;

  // Work items: a segment that fits one query tile and one key tile is a single item over all heads (heads
  // are then processed one after another, so per-head state never accumulates); longer segments are split
  // into (head block, query tile) items, query tiles innermost so the threads share the same K/V in L3.
  std::vector<Item> items;
  for (size_t si = 0; si < segments.size(); ++si) {
    const int64_t len = segments[si].length;
    if (len == 0) continue;
    if (len <= kQueryTile && len <= kKeyTile) {
      items.push_back({int32_t(si), 0, shape.num_heads, 0});
      continue;
    }
    for (int g = 0; g < shape.num_kv_heads; ++g)
      for (int h0 = g * group; h0 < (g + 1) * group; h0 += block)
        for (int64_t q0 = 0; q0 < len; q0 += kQueryTile)
          items.push_back({int32_t(si), h0, std::min(h0 + block, (g + 1) * group), int32_t(q0)});
  }
  if (items.empty()) return;

  const Args args{q, ldq, k, ldk, v, ldv, out, ldo, shape.head_dim, group, key_valid, &tile_kernels()};
  const int64_t n_items = int64_t(items.size());
  // Scratch is allocated up front: an allocation failure must throw here, not inside the parallel region.
  std::vector<Scratch> scratches;
  const int threads = int(std::min<int64_t>(omp_get_max_threads(), n_items));
  for (int i = 0; i < threads; ++i) scratches.emplace_back(shape.head_dim);
#pragma omp parallel num_threads(threads)
  {
    Scratch& scratch = scratches[size_t(omp_get_thread_num())];
#pragma omp for schedule(dynamic, 1)
    for (int64_t it = 0; it < n_items; ++it) {
      const Item& item = items[size_t(it)];
      const Segment& seg = segments[size_t(item.segment)];
      const int mq = int(std::min<int64_t>(kQueryTile, seg.length - item.q0));
      if (seg.length <= kKeyTile) {
        // One key tile: nothing to carry between tiles, so run each head on its own.
        for (int h = item.h0; h < item.h1; ++h)
          run_heads(args, scratch, seg.begin, seg.length, seg.causal, item.q0, mq, h, h + 1);
      } else {
        run_heads(args, scratch, seg.begin, seg.length, seg.causal, item.q0, mq, item.h0, item.h1);
      }
    }
  }
}

const char* attention_kernels_name() {
  return tile_kernels().name;
}

void attention_reference(const float* q, int64_t ldq, const float* k, int64_t ldk, const float* v,
                         int64_t ldv, float* out, int64_t ldo, const AttentionShape& shape,
                         const std::vector<Segment>& segments, const uint8_t* key_valid) {
  validate(shape, segments);
  const int hd = shape.head_dim;
  const int group = shape.num_heads / shape.num_kv_heads;
  const double scale = 1.0 / std::sqrt(double(hd));
  std::vector<double> w;
  std::vector<double> acc(static_cast<size_t>(hd));
  for (const Segment& seg : segments) {
    w.assign(size_t(seg.length), 0.0);
    for (int h = 0; h < shape.num_heads; ++h) {
      const int64_t qc = int64_t(h) * hd, kc = int64_t(h / group) * hd;
      for (int64_t i = seg.begin; i < seg.begin + seg.length; ++i) {
        double mx = -std::numeric_limits<double>::infinity();
        const int64_t keys = seg.causal ? i - seg.begin + 1 : seg.length;
        for (int64_t j = 0; j < keys; ++j) {
          const int64_t row = seg.begin + j;
          if (key_valid && !key_valid[row]) continue;
          double dot = 0;
          for (int d = 0; d < hd; ++d) dot += double(q[i * ldq + qc + d]) * double(k[row * ldk + kc + d]);
          w[size_t(j)] = dot * scale;
          mx = std::max(mx, w[size_t(j)]);
        }
        float* o = out + i * ldo + qc;
        if (mx == -std::numeric_limits<double>::infinity()) {  // no valid key in the segment
          std::fill_n(o, hd, 0.0f);
          continue;
        }
        double sum = 0;
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int64_t j = 0; j < keys; ++j) {
          const int64_t row = seg.begin + j;
          if (key_valid && !key_valid[row]) continue;
          const double p = std::exp(w[size_t(j)] - mx);
          sum += p;
          for (int d = 0; d < hd; ++d) acc[size_t(d)] += p * double(v[row * ldv + kc + d]);
        }
        for (int d = 0; d < hd; ++d) o[d] = float(acc[size_t(d)] / sum);
      }
    }
  }
}

}  // namespace krea2
