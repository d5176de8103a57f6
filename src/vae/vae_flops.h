// The decoder's analytic FLOPs (2 per multiply-add) per kind of work, for krea2 bench's stage table.
#pragma once
#include <cstdint>

#include "krea2/vae.h"

namespace krea2 {

struct VaeFlops {
  double conv3x3 = 0;         // conv_in, the resnets' convs, conv_out
  double upsample = 0;        // the upsamplers' convs (on the x2 map)
  double conv1x1 = 0;         // post_quant_conv, conv_shortcut
  double attention_proj = 0;  // to_qkv, proj
  double attention = 0;       // q k^T and p v
  double convs() const { return conv3x3 + upsample + conv1x1 + attention_proj; }
  double total() const { return convs() + attention; }
};

// One image of latent size h x w.
VaeFlops vae_decode_flops_parts(const VaeConfig& config, int64_t h, int64_t w);

}  // namespace krea2
