// K-quant encoders (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K): our own search for the least squared error.
//
// A super-block of 256 values has sub-blocks of 16 or 32, each with an integer scale code (and min code)
// relative to the super-block's fp16 d (and dmin). Two families:
//   affine (Q2_K, Q4_K, Q5_K): x ~ (d sc) L - dmin mn,  L in [0, nmax], sc and mn in [0, cmax]
//   signed (Q3_K, Q6_K):       x ~ (d sc) q,            q in [-nq, nq - 1], sc in [-cs, cs - 1]
// The search, per super-block:
//   1. Every sub-block gets its best real scale (and offset -m <= 0, the format cannot add): candidate level
//      sets L = round(k (x - min) / (max - min)) for k = nmax - 1 .. nmax + 1 in steps of 1/8 (signed: both
//      orientations, the largest |x| on the -nq or on the nq - 1 side), each with the least-squares scale
//      (and offset) for those levels, the error from running sums. The best is polished by alternating
//      re-rounding and least squares (Lloyd) while that helps. Like ggml's make_qkx2_quants / make_qx_quants,
//      with about twice the candidates, plain rather than |x|-weighted errors, and the polish.
//   2. d (dmin) = the largest sub-block scale (min) / the code range, rounded to fp16 (signed: d < 0 so the
//      largest scale takes the extra code -cs); codes = nearest integers of scale / d.
//   3. Re-fit with the quantized scales (ggml only re-rounds the levels): per sub-block the codes around the
//      nearest ones are tried with re-rounded levels (affine: scale +-1 x min +-2, the min code being the
//      coarser one; signed: scale +-1 and the negated code, which moves the extra level -nq to the other
//      side), keeping the best.
//   4. d (and dmin) are re-fitted by least squares over the super-block for the chosen codes and levels,
//      rounded to fp16, and step 3 repeats; an encoding replaces the current one only if its error is lower.
// Speeds are printed by test_quantize (KQuant.Speed): about 30-60 ns per element on one core, so a 12.9B
// model takes a few minutes on two. The inner loops are AVX2 (quantize_k_kernels.h).
#include <cmath>
#include <cstring>
#include <limits>

#include "tensor/convert.h"
#include "tensor/quantize_internal.h"
#include "tensor/quantize_k_kernels.h"

namespace krea2 {

namespace {

constexpr int kQK = 256;
constexpr double kInf = std::numeric_limits<double>::infinity();

// The fp16 value nearest to v, saturated to the largest finite half: a stored scale stays finite.
float to_half(float v) {
  if (!(std::fabs(v) <= 65504.0f)) v = v != v ? 0.0f : std::copysign(65504.0f, v);
  return f16_to_f32(f32_to_f16(v));
}

void put_half(uint8_t* p, float v) {
  const uint16_t h = f32_to_f16(v);
  std::memcpy(p, &h, 2);
}

// round(v) clamped to [lo, hi]; NaN -> lo.
int round_clamped(float v, int lo, int hi) {
  v = v > float(hi) ? float(hi) : v;
  v = v >= float(lo) ? v : float(lo);
  return int(std::nearbyint(v));
}

// ---------------------------------------------------------------------------------------------------------
// Affine family: x ~ S L - M.

struct AffineFormat {
  int sub, nmax, cmax;  // sub-block size, largest level, largest scale / min code
};

struct AffineFit {
  float s = 0, m = 0;
};

kquant::Grid affine_grid(float S, float M, int nmax) {
  return S > 0 ? kquant::Grid{1.0f / S, M / S, 0.0f, float(nmax)} : kquant::Grid{0.0f, 0.0f, 0.0f, 0.0f};
}

// Least-squares s >= 0 and c <= 0 of x ~ s L + c for the levels with sums t (x moments sx, sxx); returns
// the squared error.
double affine_lsq(int n, double sx, double sxx, const kquant::LevelSums& t, double& s, double& c) {
  const double l = t.l, ll = t.ll, xl = t.xl;
  const double D = n * ll - l * l;
  if (D > 0) {
    s = (n * xl - sx * l) / D;
    c = (ll * sx - l * xl) / D;
    if (c > 0) {
      c = 0;
      s = xl / ll;
    }
  } else if (ll > 0) {  // every level equal and nonzero
    c = 0;
    s = xl / ll;
  } else {  // every level zero
    s = 0;
    c = sx < 0 ? sx / n : 0.0;
  }
  if (s < 0) s = 0;
  return sxx - 2 * s * xl - 2 * c * sx + s * s * ll + 2 * s * c * l + c * c * n;
}

AffineFit fit_affine(const float* x, int n, int nmax) {
  float lo = x[0], hi = x[0];
  double sx = 0, sxx = 0;
  for (int i = 0; i < n; ++i) {
    lo = x[i] < lo ? x[i] : lo;
    hi = x[i] > hi ? x[i] : hi;
    sx += x[i];
    sxx += double(x[i]) * x[i];
  }
  lo = lo < 0.0f ? lo : 0.0f;
  if (!(hi > lo)) return {0.0f, -lo};  // a constant block <= 0
  double best = kInf, best_s = 0, best_c = lo;
  for (int k = -8; k <= 8; ++k) {
    const float iscale = (float(nmax) + 0.125f * float(k)) / (hi - lo);
    double s, c;
    const double err =
        affine_lsq(n, sx, sxx, kquant::level_sums(x, n, {iscale, -iscale * lo, 0.0f, float(nmax)}), s, c);
    if (err < best) {
      best = err;
      best_s = s;
      best_c = c;
    }
  }
  for (int it = 0; it < 3 && best_s > 0; ++it) {
    double s, c;
    const double err = affine_lsq(
        n, sx, sxx, kquant::level_sums(x, n, affine_grid(float(best_s), float(-best_c), nmax)), s, c);
    if (!(err < best)) break;
    best = err;
    best_s = s;
    best_c = c;
  }
  return {float(best_s), float(-best_c)};
}

struct AffineBlock {
  float d = 0, dmin = 0;
  int sc[16] = {}, mn[16] = {};
  double err = kInf;
};

int nearest_code(float v, float unit, int cmax) {
  return unit > 0 ? round_clamped(v / unit, 0, cmax) : 0;
}

float affine_sub_error(const float* x, const AffineFormat& f, float S, float M) {
  return kquant::grid_error(x, f.sub, affine_grid(S, M, f.nmax), S, -M);
}

// Step 3: codes for every sub-block at b.d, b.dmin, and the total error.
void affine_codes(const float* x, const AffineFormat& f, const AffineFit* fits, AffineBlock& b) {
  const int nsub = kQK / f.sub;
  b.err = 0;
  for (int j = 0; j < nsub; ++j) {
    const float* xs = x + j * f.sub;
    const int c0 = nearest_code(fits[j].s, b.d, f.cmax), m0 = nearest_code(fits[j].m, b.dmin, f.cmax);
    int bc = c0, bm = m0;
    float best = affine_sub_error(xs, f, b.d * float(c0), b.dmin * float(m0));
    auto consider = [&](int c, int m) {
      if (c < 0 || c > f.cmax || m < 0 || m > f.cmax) return;
      const float e = affine_sub_error(xs, f, b.d * float(c), b.dmin * float(m));
      if (e < best) {
        best = e;
        bc = c;
        bm = m;
      }
    };
    for (int dc = -1; dc <= 1; ++dc)
      for (int dm = -2; dm <= 2; ++dm)
        if ((dc || dm) && (b.d > 0 || !dc) && (b.dmin > 0 || !dm)) consider(c0 + dc, m0 + dm);
    b.sc[j] = bc;
    b.mn[j] = bm;
    b.err += best;
  }
}

void affine_levels(const float* x, const AffineFormat& f, const AffineBlock& b, int* L) {
  for (int j = 0; j < kQK / f.sub; ++j)
    kquant::grid_levels(x + j * f.sub, f.sub,
                        affine_grid(b.d * float(b.sc[j]), b.dmin * float(b.mn[j]), f.nmax), L + j * f.sub);
}

// Step 4: least-squares d, dmin for the codes and levels of b (false if degenerate).
bool affine_refit(const float* x, const AffineFormat& f, const AffineBlock& b, float& d, float& dmin) {
  int L[kQK];
  affine_levels(x, f, b, L);
  double saa = 0, sab = 0, sbb = 0, sxa = 0, sxb = 0;
  for (int j = 0; j < kQK / f.sub; ++j) {
    double sl = 0, sll = 0, sxl = 0, sxj = 0;
    for (int i = j * f.sub; i < (j + 1) * f.sub; ++i) {
      sl += L[i];
      sll += double(L[i]) * L[i];
      sxl += double(x[i]) * L[i];
      sxj += x[i];
    }
    const double c = b.sc[j], m = b.mn[j];
    saa += c * c * sll;
    sab += c * m * sl;
    sbb += m * m * f.sub;
    sxa += c * sxl;
    sxb += m * sxj;
  }
  // x ~ d a - dmin m: d saa - dmin sab = sxa, d sab - dmin sbb = sxb.
  double dd, dm;
  if (sbb == 0) {
    if (saa == 0) return false;
    dd = sxa / saa;
    dm = 0;
  } else if (saa == 0) {
    dd = 0;
    dm = -sxb / sbb;
  } else {
    const double det = sab * sab - saa * sbb;
    if (det == 0) return false;
    dd = (sab * sxb - sxa * sbb) / det;
    dm = (saa * sxb - sab * sxa) / det;
  }
  d = to_half(float(dd));
  dmin = to_half(float(dm));
  return d >= 0 && dmin >= 0;
}

AffineBlock encode_affine(const float* x, const AffineFormat& f, int* L) {
  const int nsub = kQK / f.sub;
  AffineFit fits[16];
  float max_s = 0, max_m = 0;
  for (int j = 0; j < nsub; ++j) {
    fits[j] = fit_affine(x + j * f.sub, f.sub, f.nmax);
    max_s = fits[j].s > max_s ? fits[j].s : max_s;
    max_m = fits[j].m > max_m ? fits[j].m : max_m;
  }
  AffineBlock best;
  best.d = to_half(max_s / float(f.cmax));
  best.dmin = to_half(max_m / float(f.cmax));
  affine_codes(x, f, fits, best);
  for (int it = 0; it < 2; ++it) {
    AffineBlock next = best;
    if (!affine_refit(x, f, best, next.d, next.dmin)) break;
    affine_codes(x, f, fits, next);
    if (!(next.err < best.err)) break;
    best = next;
  }
  affine_levels(x, f, best, L);
  return best;
}

// The 12-byte table of 6-bit (scale, min) pairs of Q4_K / Q5_K.
void pack_k4_scales(const int* sc, const int* mn, uint8_t* s) {
  std::memset(s, 0, 12);
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      s[j] = uint8_t(sc[j]);
      s[j + 4] = uint8_t(mn[j]);
    } else {
      s[j + 4] = uint8_t((sc[j] & 15) | (mn[j] & 15) << 4);
      s[j - 4] |= uint8_t((sc[j] >> 4) << 6);
      s[j] |= uint8_t((mn[j] >> 4) << 6);
    }
  }
}

void write_q2_k(const float* x, uint8_t* out) {
  int L[kQK];
  const AffineBlock b = encode_affine(x, {16, 3, 15}, L);
  for (int j = 0; j < 16; ++j) out[j] = uint8_t(b.sc[j] | b.mn[j] << 4);
  uint8_t* qs = out + 16;
  for (int n = 0; n < 2; ++n)
    for (int l = 0; l < 32; ++l) {
      const int* q = L + 128 * n + l;
      qs[32 * n + l] = uint8_t(q[0] | q[32] << 2 | q[64] << 4 | q[96] << 6);
    }
  put_half(out + 80, b.d);
  put_half(out + 82, b.dmin);
}

void write_q45_k(const float* x, bool five, uint8_t* out) {
  int L[kQK];
  const AffineBlock b = encode_affine(x, {32, five ? 31 : 15, 63}, L);
  put_half(out, b.d);
  put_half(out + 2, b.dmin);
  pack_k4_scales(b.sc, b.mn, out + 4);
  uint8_t* qh = out + 16;
  uint8_t* qs = five ? out + 48 : out + 16;
  if (five) std::memset(qh, 0, 32);
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) {
      const int lo = L[64 * c + l], hi = L[64 * c + 32 + l];
      qs[32 * c + l] = uint8_t((lo & 15) | (hi & 15) << 4);
      if (five) qh[l] |= uint8_t((lo >> 4) << (2 * c) | (hi >> 4) << (2 * c + 1));
    }
}

// ---------------------------------------------------------------------------------------------------------
// Signed family: x ~ S q.

struct SignedFormat {
  int nq, cs;  // q in [-nq, nq - 1], scale codes in [-cs, cs - 1]
};
constexpr int kSignedSub = 16;

kquant::Grid signed_grid(float S, int nq) {
  return S != 0 ? kquant::Grid{1.0f / S, 0.0f, float(-nq), float(nq - 1)}
                : kquant::Grid{0.0f, 0.0f, 0.0f, 0.0f};
}

// The best real scale of one sub-block (0 if it is all zeros).
float fit_signed(const float* x, int nq) {
  float amax = 0, max = 0;
  double xx = 0;
  for (int i = 0; i < kSignedSub; ++i) {
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
    xx += double(x[i]) * x[i];
  }
  if (!(amax > 0)) return 0.0f;
  double best = kInf, best_s = 0;
  auto consider = [&](float s) {
    const kquant::LevelSums t = kquant::level_sums(x, kSignedSub, signed_grid(s, nq));
    if (t.ll <= 0) return false;
    const double err = xx - double(t.xl) * t.xl / t.ll;
    if (!(err < best)) return false;
    best = err;
    best_s = double(t.xl) / t.ll;
    return true;
  };
  for (int k = -8; k <= 8; ++k) {
    // The largest |x| near -nq, or near nq - 1.
    consider(max / -(float(nq) + 0.125f * float(k)));
    consider(max / (float(nq - 1) + 0.125f * float(k)));
  }
  for (int it = 0; it < 3 && best_s != 0; ++it)
    if (!consider(float(best_s))) break;
  return float(best_s);
}

struct SignedBlock {
  float d = 0;
  int sc[16] = {};
  double err = kInf;
};

float signed_sub_error(const float* x, int nq, float S) {
  return kquant::grid_error(x, kSignedSub, signed_grid(S, nq), S, 0.0f);
}

void signed_codes(const float* x, const SignedFormat& f, const float* fits, SignedBlock& b) {
  b.err = 0;
  for (int j = 0; j < 16; ++j) {
    const float* xs = x + j * kSignedSub;
    const int c0 = b.d != 0 ? round_clamped(fits[j] / b.d, -f.cs, f.cs - 1) : 0;
    int bc = c0;
    float best = signed_sub_error(xs, f.nq, b.d * float(c0));
    for (int c : {c0 - 1, c0 + 1, -c0}) {
      if (c < -f.cs || c > f.cs - 1 || c == c0 || b.d == 0) continue;
      const float e = signed_sub_error(xs, f.nq, b.d * float(c));
      if (e < best) {
        best = e;
        bc = c;
      }
    }
    b.sc[j] = bc;
    b.err += best;
  }
}

void signed_levels(const float* x, const SignedFormat& f, const SignedBlock& b, int* q) {
  for (int j = 0; j < 16; ++j)
    kquant::grid_levels(x + j * kSignedSub, kSignedSub, signed_grid(b.d * float(b.sc[j]), f.nq),
                        q + j * kSignedSub);
}

SignedBlock encode_signed(const float* x, const SignedFormat& f, int* q) {
  float fits[16], max_s = 0, amax_s = 0;
  for (int j = 0; j < 16; ++j) {
    fits[j] = fit_signed(x + j * kSignedSub, f.nq);
    if (std::fabs(fits[j]) > amax_s) {
      amax_s = std::fabs(fits[j]);
      max_s = fits[j];
    }
  }
  SignedBlock best;
  best.d = to_half(-max_s / float(f.cs));
  signed_codes(x, f, fits, best);
  for (int it = 0; it < 2; ++it) {
    signed_levels(x, f, best, q);
    double saa = 0, sxa = 0;
    for (int e = 0; e < kQK; ++e) {
      const double a = double(best.sc[e / kSignedSub]) * q[e];
      saa += a * a;
      sxa += x[e] * a;
    }
    if (saa == 0) break;
    SignedBlock next = best;
    next.d = to_half(float(sxa / saa));
    signed_codes(x, f, fits, next);
    if (!(next.err < best.err)) break;
    best = next;
  }
  signed_levels(x, f, best, q);
  return best;
}

void write_q3_k(const float* x, uint8_t* out) {
  int q[kQK];
  const SignedBlock b = encode_signed(x, {4, 32}, q);
  uint8_t* hmask = out;
  uint8_t* qs = out + 32;
  uint8_t* sc = out + 96;
  std::memset(out, 0, 108);
  for (int e = 0; e < kQK; ++e) {
    const int L = q[e] + 4;  // 0..7
    const int n = e / 128, j = (e % 128) / 32, l = e % 32;
    qs[32 * n + l] |= uint8_t((L & 3) << (2 * j));
    hmask[l] |= uint8_t((L >> 2) << (4 * n + j));
  }
  for (int i = 0; i < 16; ++i) {
    const int c = b.sc[i] + 32;  // 0..63
    sc[i % 8] |= uint8_t((c & 15) << (i < 8 ? 0 : 4));
    sc[8 + i % 4] |= uint8_t((c >> 4) << (2 * (i / 4)));
  }
  put_half(out + 108, b.d);
}

void write_q6_k(const float* x, uint8_t* out) {
  int q[kQK];
  const SignedBlock b = encode_signed(x, {32, 128}, q);
  uint8_t* ql = out;
  uint8_t* qh = out + 128;
  std::memset(out, 0, 192);
  for (int e = 0; e < kQK; ++e) {
    const int L = q[e] + 32;  // 0..63
    const int n = e / 128, r = e % 128;
    ql[64 * n + r % 64] |= uint8_t((L & 15) << (4 * (r / 64)));
    qh[32 * n + r % 32] |= uint8_t((L >> 4) << (2 * (r / 32)));
  }
  for (int i = 0; i < 16; ++i) out[192 + i] = uint8_t(int8_t(b.sc[i]));
  put_half(out + 208, b.d);
}

}  // namespace

void quantize_k_blocks(DType t, const float* x, int64_t nblocks, uint8_t* out) {
  const int64_t bytes = dtype_block_bytes(t);
  for (int64_t i = 0; i < nblocks; ++i) {
    const float* xb = x + i * kQK;
    uint8_t* b = out + i * bytes;
    switch (t) {
      case DType::Q2_K:
        write_q2_k(xb, b);
        break;
      case DType::Q4_K:
        write_q45_k(xb, false, b);
        break;
      case DType::Q5_K:
        write_q45_k(xb, true, b);
        break;
      case DType::Q3_K:
        write_q3_k(xb, b);
        break;
      case DType::Q6_K:
        write_q6_k(xb, b);
        break;
      default:
        return;
    }
  }
}

}  // namespace krea2
