// Latent geometry: the pipeline's 2x2 packing of VAE latents into transformer tokens, and the position ids it
// builds for them.
#include <algorithm>
#include <string>

#include "krea2/error.h"
#include "krea2/sampler.h"

namespace krea2 {

void check_latent_size(const LatentSize& size) {
  if (size.height <= 0 || size.width <= 0 || size.height % kPatch || size.width % kPatch) {
    throw Error("latent size " + std::to_string(size.height) + "x" + std::to_string(size.width) +
                " must be positive multiples of 2 (pixel sizes multiples of 16)");
  }
}

LatentSize latent_size_from_pixels(int64_t height, int64_t width) {
  const int64_t unit = kVaeScale * kPatch;
  if (height <= 0 || width <= 0 || height % unit || width % unit) {
    throw Error("image size " + std::to_string(height) + "x" + std::to_string(width) +
                " must be positive multiples of 16 pixels (8x VAE downsampling, then 2x2 packing)");
  }
  return {height / kVaeScale, width / kVaeScale};
}

// upstream: latents.view(B, C, h/2, 2, w/2, 2).permute(0, 2, 4, 1, 3, 5).reshape(B, h/2 * w/2, C * 4)
Tensor pack_latents(const Tensor& latents) {
  if (latents.shape.size() != 4) {
    throw Error("latents must be (B, C, h, w), got " + shape_str(latents.shape));
  }
  const int64_t b = latents.dim(0), c = latents.dim(1), h = latents.dim(2), w = latents.dim(3);
  check_latent_size({h, w});
  const int64_t th = h / kPatch, tw = w / kPatch;
  Tensor out({b, th * tw, c * 4});
  float* dst = out.ptr();
  for (int64_t n = 0; n < b; ++n) {
    for (int64_t ty = 0; ty < th; ++ty) {
      for (int64_t tx = 0; tx < tw; ++tx) {
        for (int64_t ch = 0; ch < c; ++ch) {
          for (int64_t py = 0; py < 2; ++py) {
            const float* src = latents.ptr() + ((n * c + ch) * h + ty * 2 + py) * w + tx * 2;
            *dst++ = src[0];
            *dst++ = src[1];
          }
        }
      }
    }
  }
  return out;
}

Tensor unpack_latents(const Tensor& packed, const LatentSize& size) {
  check_latent_size(size);
  if (packed.shape.size() != 3 || packed.dim(1) != size.tokens() || packed.dim(2) % 4) {
    throw Error("packed latents " + shape_str(packed.shape) + " do not fit a " + std::to_string(size.height) +
                "x" + std::to_string(size.width) + " latent: expected (B, " + std::to_string(size.tokens()) +
                ", 4C)");
  }
  const int64_t b = packed.dim(0), c = packed.dim(2) / 4, h = size.height, w = size.width;
  const int64_t th = h / kPatch, tw = w / kPatch;
  Tensor out({b, c, h, w});
  const float* src = packed.ptr();
  for (int64_t n = 0; n < b; ++n) {
    for (int64_t ty = 0; ty < th; ++ty) {
      for (int64_t tx = 0; tx < tw; ++tx) {
        for (int64_t ch = 0; ch < c; ++ch) {
          for (int64_t py = 0; py < 2; ++py) {
            float* dst = out.ptr() + ((n * c + ch) * h + ty * 2 + py) * w + tx * 2;
            dst[0] = *src++;
            dst[1] = *src++;
          }
        }
      }
    }
  }
  return out;
}

Tensor make_image_position_ids(const LatentSize& size) {
  check_latent_size(size);
  const int64_t th = size.height / kPatch, tw = size.width / kPatch;
  Tensor out({th * tw, 3});
  float* p = out.ptr();
  for (int64_t y = 0; y < th; ++y) {
    for (int64_t x = 0; x < tw; ++x) {
      *p++ = 0.0f;
      *p++ = static_cast<float>(y);
      *p++ = static_cast<float>(x);
    }
  }
  return out;
}

Tensor make_position_ids(int64_t text_len, const LatentSize& size) {
  if (text_len < 0) throw Error("negative text length");
  Tensor image = make_image_position_ids(size);
  Tensor out({text_len + image.dim(0), 3});  // text rows stay (0, 0, 0)
  std::copy(image.data.begin(), image.data.end(), out.data.begin() + text_len * 3);
  return out;
}

}  // namespace krea2
