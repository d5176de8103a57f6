#include "vae/vae_flops.h"

namespace krea2 {

VaeFlops vae_decode_flops_parts(const VaeConfig& c, int64_t h, int64_t w) {
  VaeFlops f;
  const std::vector<int64_t> d = c.decoder_channels();
  const int64_t L = c.levels(), R = c.num_res_blocks;
  auto conv = [](double pixels, int64_t in, int64_t out, int64_t k) {
    return 2.0 * pixels * double(in * out * k * k);
  };
  auto resnet = [&](double P, int64_t a, int64_t b) {
    f.conv3x3 += conv(P, a, b, 3) + conv(P, b, b, 3);
    if (a != b) f.conv1x1 += conv(P, a, b, 1);
  };
  double P = double(h) * double(w);
  f.conv1x1 += conv(P, c.z_dim, c.z_dim, 1);
  f.conv3x3 += conv(P, c.z_dim, d[0], 3);
  resnet(P, d[0], d[0]);
  f.attention_proj += conv(P, d[0], 3 * d[0], 1) + conv(P, d[0], d[0], 1);
  f.attention += 4.0 * P * P * double(d[0]);  // q k^T and p v, each 2 P^2 C
  resnet(P, d[0], d[0]);
  for (int64_t i = 0; i < L; ++i) {
    const int64_t in = i == 0 ? d[0] : d[size_t(i)] / 2, out = d[size_t(i + 1)];
    for (int64_t j = 0; j <= R; ++j) resnet(P, j == 0 ? in : out, out);
    if (i + 1 < L) {
      P *= 4;
      f.upsample += conv(P, out, out / 2, 3);
    }
  }
  f.conv3x3 += conv(P, d[size_t(L)], 3, 3);
  return f;
}

double vae_decode_flops(const VaeConfig& config, int64_t h, int64_t w) {
  return vae_decode_flops_parts(config, h, w).total();
}

}  // namespace krea2
