// image_to_rgb8: VaeImageProcessor.postprocess for output_type "pil".
#include <algorithm>
#include <cmath>

#include "krea2/error.h"
#include "krea2/vae.h"

namespace krea2 {

std::vector<uint8_t> image_to_rgb8(const Tensor& image) {
  const Shape& s = image.shape;
  if (s.size() != 4 || s[1] != 3)
    throw Error("image_to_rgb8: image must be (B, 3, H, W), found " + shape_str(s));
  const int64_t B = s[0], H = s[2], W = s[3], P = H * W;
  std::vector<uint8_t> out(size_t(B * P * 3));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < 3; ++c) {
      const float* src = image.ptr() + (b * 3 + c) * P;
      for (int64_t p = 0; p < P; ++p) {
        // torch: (x * 0.5) then + 0.5, each rounded (this build does not contract to FMA: -std=c++20);
        // numpy: round(y * 255) half to even (nearbyint in the default rounding mode).
        const float half = src[p] * 0.5f;
        float y = std::clamp(half + 0.5f, 0.0f, 1.0f);
        if (std::isnan(y)) y = 0.0f;  // keep the cast defined
        out[size_t((b * P + p) * 3 + c)] = uint8_t(std::nearbyint(y * 255.0f));
      }
    }
  return out;
}

}  // namespace krea2
