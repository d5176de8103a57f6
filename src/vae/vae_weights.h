// The VAE decoder's parameters as a plain struct, the one visitor that walks them (load, random init,
// counting), and what a Vae holds. Conv weights live in owned float32 arenas in conv2d's layout (only the
// live slice of each 3-D kernel); biases and gammas are float32 vectors.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "krea2/vae.h"
#include "ops/conv2d.h"
#include "vae/vae_names.h"

namespace krea2 {

struct VaeConv {
  int64_t in = 0, out = 0, kernel = 3;
  const float* weight = nullptr;  // (out, kernel^2 * in), tap-major depth (ops/conv2d.h)
  std::vector<float> bias;
  PackedConv2d packed;  // the weight packed for conv2d once it is in place (pack_vae_convs); empty before
  Conv2dWeights view() const { return {in, out, kernel, weight, bias.data()}; }
};

struct VaeResnet {
  std::vector<float> norm1, norm2;  // gammas (in), (out)
  VaeConv conv1, conv2;
  VaeConv shortcut;  // 1x1, only when in != out
  bool has_shortcut() const { return shortcut.weight != nullptr; }
};

struct VaeAttention {
  std::vector<float> norm;  // gamma (C)
  VaeConv to_qkv, proj;     // 1x1, C -> 3C and C -> C
};

struct VaeUpBlock {
  std::vector<VaeResnet> resnets;  // num_res_blocks + 1
  VaeConv upsample;                // 3x3, C -> C / 2 after nearest x2; all levels but the last
};

struct VaeWeights {
  VaeConv post_quant_conv;  // 1x1, z -> z
  VaeConv conv_in;
  VaeResnet mid0, mid1;
  VaeAttention mid_attention;
  std::vector<VaeUpBlock> up_blocks;
  std::vector<float> norm_out;
  VaeConv conv_out;
};

// One parameter as the visitor presents it: its module and name inside the module (diffusers spelling, for
// vae_param_name), the shape stored in the checkpoints, and where it goes. A conv weight's stored shape is
// (out, in, taps, k, k) for the causal 3-D convs (5-D; one frame uses temporal tap `live_tap`) or
// (out, in, k, k) (4-D: the upsamplers' Conv2d, the attention's 1x1 convs).
struct VaeParamSlot {
  VaeModule module;
  std::string local;
  Shape shape;
  VaeConv* conv = nullptr;               // a conv weight (conv->in / out / kernel set by the visitor)
  int64_t live_tap = 0;                  // 5-D weights: the temporal tap read
  std::vector<float>* vector = nullptr;  // a bias or gamma (any shape, flattened)
};

// Calls f(VaeParamSlot&) for every live decoder parameter the config implies (post_quant_conv first). Sizes
// the up block vectors first.
template <class F>
void visit_vae_weights(VaeWeights& w, const VaeConfig& c, F&& f) {
  auto conv = [&](VaeModule m, const std::string& name, VaeConv& cv, int64_t in, int64_t out, int64_t k,
                  bool causal) {
    cv.in = in, cv.out = out, cv.kernel = k;
    VaeParamSlot s;
    s.module = m;
    s.local = name.empty() ? "weight" : name + ".weight";
    s.shape = causal ? Shape{out, in, k == 3 ? 3 : 1, k, k} : Shape{out, in, k, k};
    s.conv = &cv;
    s.live_tap = causal && k == 3 ? 2 : 0;  // the last tap: the only one that meets data for one frame
    f(s);
    VaeParamSlot b;
    b.module = m;
    b.local = name.empty() ? "bias" : name + ".bias";
    b.shape = {out};
    b.vector = &cv.bias;
    f(b);
  };
  auto gamma = [&](VaeModule m, const std::string& name, std::vector<float>& v, Shape shape) {
    VaeParamSlot s;
    s.module = m;
    s.local = name;
    s.shape = std::move(shape);
    s.vector = &v;
    f(s);
  };
  auto resnet = [&](VaeModule m, VaeResnet& r, int64_t in, int64_t out) {
    gamma(m, "norm1.gamma", r.norm1, {in, 1, 1, 1});
    conv(m, "conv1", r.conv1, in, out, 3, true);
    gamma(m, "norm2.gamma", r.norm2, {out, 1, 1, 1});
    conv(m, "conv2", r.conv2, out, out, 3, true);
    if (in != out)
      conv(m, "conv_shortcut", r.shortcut, in, out, 1, true);
    else
      r.shortcut = VaeConv{};
  };
  const std::vector<int64_t> d = c.decoder_channels();
  const int64_t L = c.levels(), R = c.num_res_blocks;
  conv({VaeModule::kPostQuantConv}, "", w.post_quant_conv, c.z_dim, c.z_dim, 1, true);
  conv({VaeModule::kConvIn}, "", w.conv_in, c.z_dim, d[0], 3, true);
  resnet({VaeModule::kMidResnet, 0, 0}, w.mid0, d[0], d[0]);
  const VaeModule attn{VaeModule::kMidAttention};
  gamma(attn, "norm.gamma", w.mid_attention.norm, {d[0], 1, 1});
  conv(attn, "to_qkv", w.mid_attention.to_qkv, d[0], 3 * d[0], 1, false);
  conv(attn, "proj", w.mid_attention.proj, d[0], d[0], 1, false);
  resnet({VaeModule::kMidResnet, 0, 1}, w.mid1, d[0], d[0]);
  w.up_blocks.resize(size_t(L));
  for (int64_t i = 0; i < L; ++i) {
    VaeUpBlock& b = w.up_blocks[size_t(i)];
    const int64_t in = i == 0 ? d[0] : d[size_t(i)] / 2, out = d[size_t(i + 1)];
    b.resnets.resize(size_t(R + 1));
    for (int64_t j = 0; j <= R; ++j)
      resnet({VaeModule::kUpResnet, i, j}, b.resnets[size_t(j)], j == 0 ? in : out, out);
    if (i + 1 < L)
      conv({VaeModule::kUpsampler, i, 0}, "resample.1", b.upsample, out, out / 2, 3, false);
    else
      b.upsample = VaeConv{};
  }
  gamma({VaeModule::kNormOut}, "gamma", w.norm_out, {d[size_t(L)], 1, 1, 1});
  conv({VaeModule::kConvOut}, "", w.conv_out, d[size_t(L)], 3, 3, true);
}

// Packs every conv's weight for conv2d (PackedConv2d, for the ISA active then) once weights and biases are in
// place (end of Vae::load and Vae::random): the decoder calls each conv once per image, so packing inside
// each call would cost a few % at small images. About as much memory again as the float32 weights.
void pack_vae_convs(VaeWeights& w);

struct VaeImpl {
  VaeConfig config;
  VaeLoadInfo load_info;
  VaeWeights weights;
  std::vector<std::unique_ptr<float[]>> arenas;
  float* new_floats(size_t n) {
    return arenas.emplace_back(std::make_unique_for_overwrite<float[]>(n)).get();
  }
};

}  // namespace krea2
