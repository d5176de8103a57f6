#include "tensor/hadamard_decode.h"

#include <cstddef>
#include <vector>

namespace krea2 {

namespace {

// One group times H_G in integers: one 4-point butterfly per base-4 digit of the index.
void hadamard_int(const int8_t* q, int64_t G, int32_t* out) {
  for (int64_t i = 0; i < G; ++i) out[i] = q[i];
  for (int64_t stride = 1; stride < G; stride *= 4) {
    for (int64_t base = 0; base < G; base += 4 * stride) {
      for (int64_t j = base; j < base + stride; ++j) {
        const int32_t a = out[j], b = out[j + stride], c = out[j + 2 * stride], d = out[j + 3 * stride];
        const int32_t s = a + b + c + d;
        out[j] = s - 2 * d;
        out[j + stride] = s - 2 * c;
        out[j + 2 * stride] = s - 2 * b;
        out[j + 3 * stride] = s - 2 * a;
      }
    }
  }
}

}  // namespace

void decode_hadamard_i8_reference(const int8_t* q, int64_t G, int64_t groups, float factor, float* out) {
  std::vector<int32_t> t(static_cast<std::size_t>(G));
  for (int64_t g = 0; g < groups; ++g) {
    hadamard_int(q + g * G, G, t.data());
    for (int64_t i = 0; i < G; ++i) out[g * G + i] = float(t[std::size_t(i)]) * factor;
  }
}

// The one dispatch point (AVX2 is the build floor; wider instruction sets add a kernel file and pick here).
void decode_hadamard_i8(const int8_t* q, int64_t G, int64_t groups, float factor, float* out) {
  decode_hadamard_i8_avx2(q, G, groups, factor, out);
}

}  // namespace krea2
