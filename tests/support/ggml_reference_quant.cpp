// Plain transcriptions of ggml's reference quantizers (see the header). Deliberately literal: one function
// per format, the loops and float32 expressions of the published algorithms. `volatile` pins a float32
// rounding where the compiler could otherwise contract a product and a sum into an FMA.
#include "support/ggml_reference_quant.h"

#include <immintrin.h>

#include <cfloat>
#include <cmath>
#include <cstring>
#include <stdexcept>

namespace krea2::test::ggml_ref {

namespace {

// The hardware conversion ggml uses on x86 (F16C, round to nearest even).
uint16_t fp16(float f) {
  return _cvtss_sh(f, 0);
}
float from_fp16(uint16_t h) {
  return _cvtsh_ss(h);
}
void store_fp16(uint8_t* p, float f) {
  const uint16_t h = fp16(f);
  std::memcpy(p, &h, 2);
}

// ggml's nearest_int: round half to even through the float32 adder.
int nearest_int(float fval) {
  float val = fval + 12582912.f;
  int i;
  std::memcpy(&i, &val, sizeof(int));
  return (i & 0x007fffff) - 0x00400000;
}

int trunc_biased(float x, float id, float bias, bool once_default, Rounding r) {
  const bool once = r == Rounding::kGgufPy ? once_default : r == Rounding::kOnce;
  if (once) return int(float(double(x) * double(id) + double(bias)));
  volatile float p = x * id;
  return int(p + bias);
}

void q8_0(const float* x, int64_t nb, uint8_t* y) {
  for (int64_t i = 0; i < nb; i++) {
    float amax = 0.0f;
    for (int j = 0; j < 32; j++) amax = std::max(amax, std::fabs(x[i * 32 + j]));
    const float d = amax / 127;
    const float id = d ? 1.0f / d : 0.0f;
    uint8_t* b = y + i * 34;
    store_fp16(b, d);
    for (int j = 0; j < 32; ++j) b[2 + j] = uint8_t(int8_t(std::round(x[i * 32 + j] * id)));
  }
}

void q4_0(const float* x, int64_t nb, uint8_t* y, Rounding r) {
  for (int64_t i = 0; i < nb; i++) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < 32; j++) {
      const float v = x[i * 32 + j];
      if (amax < std::fabs(v)) {
        amax = std::fabs(v);
        max = v;
      }
    }
    const float d = max / -8;
    const float id = d ? 1.0f / d : 0.0f;
    uint8_t* b = y + i * 18;
    store_fp16(b, d);
    for (int j = 0; j < 16; ++j) {
      const int xi0 = std::min(15, trunc_biased(x[i * 32 + j], id, 8.5f, true, r));
      const int xi1 = std::min(15, trunc_biased(x[i * 32 + 16 + j], id, 8.5f, true, r));
      b[2 + j] = uint8_t(xi0 | xi1 << 4);
    }
  }
}

void q4_1(const float* x, int64_t nb, uint8_t* y, Rounding r) {
  for (int64_t i = 0; i < nb; i++) {
    float min = FLT_MAX, max = -FLT_MAX;
    for (int j = 0; j < 32; j++) {
      const float v = x[i * 32 + j];
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const float d = (max - min) / 15;
    const float id = d ? 1.0f / d : 0.0f;
    uint8_t* b = y + i * 20;
    store_fp16(b, d);
    store_fp16(b + 2, min);
    for (int j = 0; j < 16; ++j) {
      const int xi0 = std::min(15, trunc_biased(x[i * 32 + j] - min, id, 0.5f, false, r));
      const int xi1 = std::min(15, trunc_biased(x[i * 32 + 16 + j] - min, id, 0.5f, false, r));
      b[4 + j] = uint8_t(xi0 | xi1 << 4);
    }
  }
}

void q5_0(const float* x, int64_t nb, uint8_t* y, Rounding r) {
  for (int64_t i = 0; i < nb; i++) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < 32; j++) {
      const float v = x[i * 32 + j];
      if (amax < std::fabs(v)) {
        amax = std::fabs(v);
        max = v;
      }
    }
    const float d = max / -16;
    const float id = d ? 1.0f / d : 0.0f;
    uint8_t* b = y + i * 22;
    store_fp16(b, d);
    uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
      const int xi0 = std::min(31, trunc_biased(x[i * 32 + j], id, 16.5f, true, r));
      const int xi1 = std::min(31, trunc_biased(x[i * 32 + 16 + j], id, 16.5f, true, r));
      b[6 + j] = uint8_t((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
      qh |= ((uint32_t(xi0) & 0x10u) >> 4) << (j + 0);
      qh |= ((uint32_t(xi1) & 0x10u) >> 4) << (j + 16);
    }
    std::memcpy(b + 2, &qh, 4);
  }
}

void q5_1(const float* x, int64_t nb, uint8_t* y, Rounding r) {
  for (int64_t i = 0; i < nb; i++) {
    float min = FLT_MAX, max = -FLT_MAX;
    for (int j = 0; j < 32; j++) {
      const float v = x[i * 32 + j];
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const float d = (max - min) / 31;
    const float id = d ? 1.0f / d : 0.0f;
    uint8_t* b = y + i * 24;
    store_fp16(b, d);
    store_fp16(b + 2, min);
    uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
      const int xi0 = std::min(31, trunc_biased(x[i * 32 + j] - min, id, 0.5f, false, r));
      const int xi1 = std::min(31, trunc_biased(x[i * 32 + 16 + j] - min, id, 0.5f, false, r));
      b[8 + j] = uint8_t((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
      qh |= ((uint32_t(xi0) & 0x10u) >> 4) << (j + 0);
      qh |= ((uint32_t(xi1) & 0x10u) >> 4) << (j + 16);
    }
    std::memcpy(b + 4, &qh, 4);
  }
}

// ---- K formats -----------------------------------------------------------------------------------------

constexpr float GROUP_MAX_EPS = 1e-15f;

// make_qx_quants: symmetric levels L in [0, 2 nmax) (value L - nmax), the scale from an |x|-search of
// iscale = -(nmax + 0.1 is) / max, weights x^2 (rmse_type 1).
float make_qx_quants(int n, int nmax, const float* x, int8_t* L, int rmse_type) {
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i) {
    float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < GROUP_MAX_EPS) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.f;
  }
  float iscale = -nmax / max;
  auto weight = [&](float v) { return rmse_type == 1 ? v * v : rmse_type == 2 ? 1.0f : std::fabs(v); };
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    int l = nearest_int(iscale * x[i]);
    l = std::max(-nmax, std::min(nmax - 1, l));
    L[i] = int8_t(l + nmax);
    float w = weight(x[i]);
    sumlx += w * x[i] * l;
    suml2 += w * l * l;
  }
  float scale = suml2 ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(nmax + 0.1f * is) / max;
    sumlx = suml2 = 0;
    for (int i = 0; i < n; ++i) {
      int l = nearest_int(iscale * x[i]);
      l = std::max(-nmax, std::min(nmax - 1, l));
      float w = weight(x[i]);
      sumlx += w * x[i] * l;
      suml2 += w * l * l;
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i) {
        int l = nearest_int(iscale * x[i]);
        L[i] = int8_t(nmax + std::max(-nmax, std::min(nmax - 1, l)));
      }
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

// make_q3_quants with do_rmse: start from iscale = -nmax / max, then coordinate passes moving one level at a
// time while the x^2-weighted fit improves.
float make_q3_quants(int n, int nmax, const float* x, int8_t* L) {
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i) {
    float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < GROUP_MAX_EPS) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.f;
  }
  float iscale = -nmax / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    int l = nearest_int(iscale * x[i]);
    l = std::max(-nmax, std::min(nmax - 1, l));
    L[i] = int8_t(l);
    float w = x[i] * x[i];
    sumlx += w * x[i] * l;
    suml2 += w * l * l;
  }
  for (int itry = 0; itry < 5; ++itry) {
    int n_changed = 0;
    for (int i = 0; i < n; ++i) {
      float w = x[i] * x[i];
      float slx = sumlx - w * x[i] * L[i];
      if (slx > 0) {
        float sl2 = suml2 - w * L[i] * L[i];
        int new_l = nearest_int(x[i] * sl2 / slx);
        new_l = std::max(-nmax, std::min(nmax - 1, new_l));
        if (new_l != L[i]) {
          slx += w * x[i] * new_l;
          sl2 += w * new_l * new_l;
          if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
            L[i] = int8_t(new_l);
            sumlx = slx;
            suml2 = sl2;
            ++n_changed;
          }
        }
      }
    }
    if (!n_changed) break;
  }
  for (int i = 0; i < n; ++i) L[i] = int8_t(L[i] + nmax);
  return sumlx / suml2;
}

// make_qkx2_quants: x ~ scale L + min (min <= 0), L in [0, nmax]; nstep + 1 candidate iscales
// (rmin + rdelta is + nmax) / (max - min), each with the weighted least-squares (scale, min); error squared
// or absolute (use_mad). Returns scale, *the_min = -min.
float make_qkx2_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* the_min,
                       uint8_t* Laux, float rmin, float rdelta, int nstep, bool use_mad) {
  float min = x[0], max = x[0];
  float sum_w = weights[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    float w = weights[i];
    sum_w += w;
    sum_x += w * x[i];
  }
  if (min > 0) min = 0;
  if (max == min) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    *the_min = -min;
    return 0.f;
  }
  float iscale = nmax / (max - min);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    int l = nearest_int(iscale * (x[i] - min));
    L[i] = uint8_t(std::max(0, std::min(nmax, l)));
    float diff = scale * L[i] + min - x[i];
    diff = use_mad ? std::fabs(diff) : diff * diff;
    best_error += weights[i] * diff;
  }
  if (nstep < 1) {
    *the_min = -min;
    return scale;
  }
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * is + nmax) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      int l = nearest_int(iscale * (x[i] - min));
      l = std::max(0, std::min(nmax, l));
      Laux[i] = uint8_t(l);
      float w = weights[i];
      sum_l += w * l;
      sum_l2 += w * l * l;
      sum_xl += w * l * x[i];
    }
    float D = sum_w * sum_l2 - sum_l * sum_l;
    if (D > 0) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
      if (this_min > 0) {
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      float cur_error = 0;
      for (int i = 0; i < n; ++i) {
        float diff = this_scale * Laux[i] + this_min - x[i];
        diff = use_mad ? std::fabs(diff) : diff * diff;
        cur_error += weights[i] * diff;
      }
      if (cur_error < best_error) {
        for (int i = 0; i < n; ++i) L[i] = Laux[i];
        best_error = cur_error;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *the_min = -min;
  return scale;
}

void get_scale_min_k4(int j, const uint8_t* q, uint8_t* d, uint8_t* m) {
  if (j < 4) {
    *d = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *d = uint8_t((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *m = uint8_t((q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4));
  }
}

void q2_k(const float* x, int64_t nb, uint8_t* out) {
  uint8_t L[256], Laux[16];
  float weights[16], mins[16], scales[16];
  const float q4scale = 15.f;
  for (int64_t i = 0; i < nb; i++, x += 256) {
    uint8_t* y = out + i * 84;
    uint8_t* ysc = y;
    uint8_t* qs = y + 16;
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 16; ++j) {
      for (int l = 0; l < 16; ++l) weights[l] = std::fabs(x[16 * j + l]);
      scales[j] =
          make_qkx2_quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux, -0.5f, 0.1f, 15, true);
      if (scales[j] > max_scale) max_scale = scales[j];
      if (mins[j] > max_min) max_min = mins[j];
    }
    if (max_scale > 0) {
      float iscale = q4scale / max_scale;
      for (int j = 0; j < 16; ++j) ysc[j] = uint8_t(nearest_int(iscale * scales[j]));
      store_fp16(y + 80, max_scale / q4scale);
    } else {
      for (int j = 0; j < 16; ++j) ysc[j] = 0;
      store_fp16(y + 80, 0.f);
    }
    if (max_min > 0) {
      float iscale = q4scale / max_min;
      for (int j = 0; j < 16; ++j) ysc[j] |= uint8_t(nearest_int(iscale * mins[j]) << 4);
      store_fp16(y + 82, max_min / q4scale);
    } else {
      store_fp16(y + 82, 0.f);
    }
    uint16_t dh, dmh;
    std::memcpy(&dh, y + 80, 2);
    std::memcpy(&dmh, y + 82, 2);
    for (int j = 0; j < 16; ++j) {
      const float d = from_fp16(dh) * (ysc[j] & 0xF);
      if (!d) continue;
      const float dm = from_fp16(dmh) * (ysc[j] >> 4);
      for (int ii = 0; ii < 16; ++ii) {
        int l = nearest_int((x[16 * j + ii] + dm) / d);
        L[16 * j + ii] = uint8_t(std::max(0, std::min(3, l)));
      }
    }
    for (int j = 0; j < 256; j += 128)
      for (int l = 0; l < 32; ++l)
        qs[j / 4 + l] =
            uint8_t(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
  }
}

void q3_k(const float* x, int64_t nb, uint8_t* out) {
  int8_t L[256];
  float scales[16];
  for (int64_t i = 0; i < nb; i++, x += 256) {
    uint8_t* y = out + i * 110;
    uint8_t* hmask = y;
    uint8_t* qs = y + 32;
    uint8_t* ysc = y + 96;
    float max_scale = 0, amax = 0;
    for (int j = 0; j < 16; ++j) {
      scales[j] = make_q3_quants(16, 4, x + 16 * j, L + 16 * j);
      float scale = std::fabs(scales[j]);
      if (scale > amax) {
        amax = scale;
        max_scale = scales[j];
      }
    }
    std::memset(ysc, 0, 12);
    if (max_scale) {
      float iscale = -32.f / max_scale;
      for (int j = 0; j < 16; ++j) {
        int8_t l = int8_t(nearest_int(iscale * scales[j]));
        l = int8_t(std::max(-32, std::min(31, int(l))) + 32);
        if (j < 8)
          ysc[j] = uint8_t(l & 0xF);
        else
          ysc[j - 8] |= uint8_t((l & 0xF) << 4);
        l = int8_t(l >> 4);
        ysc[j % 4 + 8] |= uint8_t(l << (2 * (j / 4)));
      }
      store_fp16(y + 108, 1 / iscale);
    } else {
      store_fp16(y + 108, 0.f);
    }
    uint16_t dh;
    std::memcpy(&dh, y + 108, 2);
    for (int j = 0; j < 16; ++j) {
      int sc = j < 8 ? ysc[j] & 0xF : ysc[j - 8] >> 4;
      sc = (sc | (((ysc[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
      float d = from_fp16(dh) * sc;
      if (!d) continue;
      for (int ii = 0; ii < 16; ++ii) {
        int l = nearest_int(x[16 * j + ii] / d);
        L[16 * j + ii] = int8_t(std::max(-4, std::min(3, l)) + 4);
      }
    }
    std::memset(hmask, 0, 32);
    int m = 0;
    uint8_t hm = 1;
    for (int j = 0; j < 256; ++j) {
      if (L[j] > 3) {
        hmask[m] |= hm;
        L[j] = int8_t(L[j] - 4);
      }
      if (++m == 32) {
        m = 0;
        hm = uint8_t(hm << 1);
      }
    }
    for (int j = 0; j < 256; j += 128)
      for (int l = 0; l < 32; ++l)
        qs[j / 4 + l] =
            uint8_t(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
  }
}

// Q4_K (nmax 15) and Q5_K (31): sub-blocks of 32 weighted by av_x + |x|.
void q45_k(const float* x, int64_t nb, uint8_t* out, bool five) {
  const int nmax = five ? 31 : 15;
  uint8_t L[256], Laux[32];
  float weights[32], mins[8], scales[8];
  for (int64_t i = 0; i < nb; i++, x += 256) {
    uint8_t* y = out + i * (five ? 176 : 144);
    uint8_t* ysc = y + 4;
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; ++j) {
      float sum_x2 = 0;
      for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
      float av_x = std::sqrt(sum_x2 / 32);
      for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(x[32 * j + l]);
      scales[j] = five ? make_qkx2_quants(32, 31, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, -0.5f,
                                          0.1f, 15, false)
                       : make_qkx2_quants(32, 15, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, -1.f, 0.1f,
                                          20, false);
      if (scales[j] > max_scale) max_scale = scales[j];
      if (mins[j] > max_min) max_min = mins[j];
    }
    float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    std::memset(ysc, 0, 12);
    for (int j = 0; j < 8; ++j) {
      uint8_t ls = uint8_t(std::min(63, nearest_int(inv_scale * scales[j])));
      uint8_t lm = uint8_t(std::min(63, nearest_int(inv_min * mins[j])));
      if (j < 4) {
        ysc[j] = ls;
        ysc[j + 4] = lm;
      } else {
        ysc[j + 4] = uint8_t((ls & 0xF) | ((lm & 0xF) << 4));
        ysc[j - 4] |= uint8_t((ls >> 4) << 6);
        ysc[j - 0] |= uint8_t((lm >> 4) << 6);
      }
    }
    store_fp16(y, max_scale / 63.f);
    store_fp16(y + 2, max_min / 63.f);
    uint16_t dh, dmh;
    std::memcpy(&dh, y, 2);
    std::memcpy(&dmh, y + 2, 2);
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, m;
      get_scale_min_k4(j, ysc, &sc, &m);
      const float d = from_fp16(dh) * sc;
      if (!d) continue;
      const float dm = from_fp16(dmh) * m;
      for (int ii = 0; ii < 32; ++ii) {
        int l = nearest_int((x[32 * j + ii] + dm) / d);
        L[32 * j + ii] = uint8_t(std::max(0, std::min(nmax, l)));
      }
    }
    if (!five) {
      uint8_t* q = y + 16;
      for (int j = 0; j < 256; j += 64, q += 32)
        for (int l = 0; l < 32; ++l) q[l] = uint8_t(L[j + l] | (L[j + l + 32] << 4));
    } else {
      uint8_t* qh = y + 16;
      uint8_t* ql = y + 48;
      std::memset(qh, 0, 32);
      uint8_t m1 = 1, m2 = 2;
      for (int n = 0; n < 256; n += 64, ql += 32) {
        for (int j = 0; j < 32; ++j) {
          int l1 = L[n + j];
          if (l1 > 15) {
            l1 -= 16;
            qh[j] |= m1;
          }
          int l2 = L[n + j + 32];
          if (l2 > 15) {
            l2 -= 16;
            qh[j] |= m2;
          }
          ql[j] = uint8_t(l1 | (l2 << 4));
        }
        m1 = uint8_t(m1 << 2);
        m2 = uint8_t(m2 << 2);
      }
    }
  }
}

void q6_k(const float* x, int64_t nb, uint8_t* out) {
  int8_t L[256];
  float scales[16];
  for (int64_t i = 0; i < nb; i++, x += 256) {
    uint8_t* y = out + i * 210;
    uint8_t* ql = y;
    uint8_t* qh = y + 128;
    int8_t* ysc = reinterpret_cast<int8_t*>(y + 192);
    float max_scale = 0, max_abs_scale = 0;
    for (int ib = 0; ib < 16; ++ib) {
      const float scale = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib, 1);
      scales[ib] = scale;
      const float abs_scale = std::fabs(scale);
      if (abs_scale > max_abs_scale) {
        max_abs_scale = abs_scale;
        max_scale = scale;
      }
    }
    if (max_abs_scale < GROUP_MAX_EPS) {
      std::memset(y, 0, 210);
      continue;
    }
    float iscale = -128.f / max_scale;
    store_fp16(y + 208, 1 / iscale);
    for (int ib = 0; ib < 16; ++ib) ysc[ib] = int8_t(std::min(127, nearest_int(iscale * scales[ib])));
    uint16_t dh;
    std::memcpy(&dh, y + 208, 2);
    for (int j = 0; j < 16; ++j) {
      float d = from_fp16(dh) * ysc[j];
      if (!d) continue;
      for (int ii = 0; ii < 16; ++ii) {
        int l = nearest_int(x[16 * j + ii] / d);
        l = std::max(-32, std::min(31, l));
        L[16 * j + ii] = int8_t(l + 32);
      }
    }
    for (int j = 0; j < 256; j += 128, ql += 64, qh += 32) {
      for (int l = 0; l < 32; ++l) {
        const uint8_t q1 = L[j + l + 0] & 0xF;
        const uint8_t q2 = L[j + l + 32] & 0xF;
        const uint8_t q3 = L[j + l + 64] & 0xF;
        const uint8_t q4 = L[j + l + 96] & 0xF;
        ql[l + 0] = uint8_t(q1 | (q3 << 4));
        ql[l + 32] = uint8_t(q2 | (q4 << 4));
        qh[l] = uint8_t((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) |
                        ((L[j + l + 96] >> 4) << 6));
      }
    }
  }
}

}  // namespace

void quantize(DType t, const float* x, int64_t n, uint8_t* out, Rounding rounding) {
  const int64_t be = dtype_block_elements(t);
  if (be <= 1 || n % be != 0) throw std::invalid_argument("ggml_ref::quantize: bad type or length");
  const int64_t nb = n / be;
  switch (t) {
    case DType::Q8_0:
      return q8_0(x, nb, out);
    case DType::Q4_0:
      return q4_0(x, nb, out, rounding);
    case DType::Q4_1:
      return q4_1(x, nb, out, rounding);
    case DType::Q5_0:
      return q5_0(x, nb, out, rounding);
    case DType::Q5_1:
      return q5_1(x, nb, out, rounding);
    case DType::Q2_K:
      return q2_k(x, nb, out);
    case DType::Q3_K:
      return q3_k(x, nb, out);
    case DType::Q4_K:
      return q45_k(x, nb, out, false);
    case DType::Q5_K:
      return q45_k(x, nb, out, true);
    case DType::Q6_K:
      return q6_k(x, nb, out);
    default:
      throw std::invalid_argument("ggml_ref::quantize: bad type");
  }
}

}  // namespace krea2::test::ggml_ref
