#include "ops/rope_half.h"

#include <cmath>

namespace krea2 {

namespace {

// transformers' default rope: inv_freq = 1.0 / (base ** (arange(0, dim, 2).float() / dim)) in float32.
float inv_frequency(int64_t k, int64_t head_dim, double theta) {
  const float exponent = float(2 * k) / float(head_dim);
  return 1.0f / float(std::pow(theta, double(exponent)));
}

}  // namespace

HalfRopeTable make_half_rope_table(const int32_t* positions, int64_t rows, int64_t head_dim, double theta) {
  HalfRopeTable t;
  t.rows = rows;
  t.half = head_dim / 2;
  t.cos.resize(size_t(rows * t.half));
  t.sin.resize(size_t(rows * t.half));
  std::vector<float> inv(static_cast<size_t>(t.half));
  for (int64_t k = 0; k < t.half; ++k) inv[size_t(k)] = inv_frequency(k, head_dim, theta);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k = 0; k < t.half; ++k) {
      const float angle = float(positions[r]) * inv[size_t(k)];
      t.cos[size_t(r * t.half + k)] = float(std::cos(double(angle)));
      t.sin[size_t(r * t.half + k)] = float(std::sin(double(angle)));
    }
  return t;
}

void head_norm_rope_half(float* x, int64_t rows, int64_t ldx, int64_t heads, int64_t head_dim,
                         const float* weight, float eps, const HalfRopeTable& table) {
  const int64_t half = head_dim / 2;
#pragma omp parallel for schedule(static) if (rows * heads * head_dim > 8192)
  for (int64_t r = 0; r < rows; ++r) {
    const float* c = table.cos.data() + r * half;
    const float* s = table.sin.data() + r * half;
    for (int64_t h = 0; h < heads; ++h) {
      float* xh = x + r * ldx + h * head_dim;
      float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
      for (int64_t i = 0; i < head_dim; ++i) ss += xh[i] * xh[i];
      const float inv = 1.0f / std::sqrt(ss / float(head_dim) + eps);
#pragma omp simd
      for (int64_t i = 0; i < head_dim; ++i) xh[i] = weight[i] * (xh[i] * inv);
#pragma omp simd
      for (int64_t k = 0; k < half; ++k) {
        const float a = xh[k], b = xh[k + half];
        xh[k] = a * c[k] - b * s[k];
        xh[k + half] = b * c[k] + a * s[k];
      }
    }
  }
}

void head_norm_rope_half_reference(float* x, int64_t rows, int64_t ldx, int64_t heads, int64_t head_dim,
                                   const float* weight, float eps, const int32_t* positions, double theta) {
  const int64_t half = head_dim / 2;
  std::vector<double> y(static_cast<size_t>(head_dim));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t h = 0; h < heads; ++h) {
      float* xh = x + r * ldx + h * head_dim;
      double ss = 0;
      for (int64_t i = 0; i < head_dim; ++i) ss += double(xh[i]) * xh[i];
      const double inv = 1.0 / std::sqrt(ss / double(head_dim) + double(eps));
      for (int64_t i = 0; i < head_dim; ++i) y[size_t(i)] = double(weight[i]) * xh[i] * inv;
      for (int64_t k = 0; k < half; ++k) {
        const double angle = double(float(positions[r]) * inv_frequency(k, head_dim, theta));
        const double c = std::cos(angle), s = std::sin(angle);
        xh[k] = float(y[size_t(k)] * c - y[size_t(k + half)] * s);
        xh[k + half] = float(y[size_t(k + half)] * c + y[size_t(k)] * s);
      }
    }
}

}  // namespace krea2
