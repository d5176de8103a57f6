// ComfyUI int8 convrot: the block Hadamard rotation and the per-row int8 quantization of a rotated weight.
#include <cmath>
#include <string>
#include <vector>

#include "krea2/error.h"
#include "tensor/quantize.h"

namespace krea2 {

namespace {

// k with G = 4^k, or -1.
int log4_exact(int64_t G) {
  int k = 0;
  for (int64_t g = 1; g < G; g *= 4) ++k;
  return G >= 1 && (int64_t(1) << (2 * k)) == G ? k : -1;
}

}  // namespace

void hadamard_rotate(float* x, int64_t n, int64_t G) {
  const int k = log4_exact(G);
  if (k < 0 || n % G != 0)
    throw Error("hadamard_rotate: group " + std::to_string(G) + " must be a power of 4 dividing " +
                std::to_string(n));
  // kron(H4, ..., H4): H4 along each base-4 digit of the index within the group. With s = a + b + c + d,
  // (a, b, c, d) H4 = (s - 2d, s - 2c, s - 2b, s - 2a).
  const float norm = std::ldexp(1.0f, -k);  // 1 / sqrt(G), exact
  for (int64_t g0 = 0; g0 < n; g0 += G) {
    float* v = x + g0;
    for (int64_t stride = 1; stride < G; stride *= 4)
      for (int64_t base = 0; base < G; base += 4 * stride)
        for (int64_t j = base; j < base + stride; ++j) {
          const float a = v[j], b = v[j + stride], c = v[j + 2 * stride], d = v[j + 3 * stride];
          const float s = (a + b) + (c + d);
          v[j] = s - 2 * d;
          v[j + stride] = s - 2 * c;
          v[j + 2 * stride] = s - 2 * b;
          v[j + 3 * stride] = s - 2 * a;
        }
    for (int64_t i = 0; i < G; ++i) v[i] *= norm;
  }
}

float quantize_int8_convrot_row(const float* w, int64_t n, int64_t G, int8_t* q) {
  std::vector<float> r(w, w + n);
  hadamard_rotate(r.data(), n, G);
  float amax = 0.0f;
  for (float v : r) amax = std::fmax(amax, std::fabs(v));
  const float s = amax / 127.0f;
  for (int64_t i = 0; i < n; ++i) {
    float v = s > 0.0f ? std::nearbyint(r[i] / s) : 0.0f;
    v = v > 127.0f ? 127.0f : v;
    q[i] = int8_t(v >= -128.0f ? int(v) : -128);  // NaN -> -128, never undefined
  }
  return s;
}

}  // namespace krea2
