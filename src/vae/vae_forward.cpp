// Vae::decode: one image at a time through post_quant_conv and the decoder in 2-D form, activations
// channels-last (pixels x channels). Three maps of the current stage's size are live at once (the running
// x, the normed input of a conv, a conv's output); the x2 upsamples are fused into the following conv.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "krea2/error.h"
#include "model/block.h"
#include "ops/attention.h"
#include "vae/vae_ops.h"
#include "vae/vae_weights.h"

namespace krea2 {

namespace {

struct Maps {
  std::vector<float> x, h, t, qkv;
  int64_t height = 0, width = 0, channels = 0;
  int64_t pixels() const { return height * width; }
};

class Decoder {
 public:
  Decoder(const VaeImpl& m, const VaeDecodeOptions& o, int total_stages, bool trace, Maps& maps)
      : m_(m), o_(o), total_(total_stages), trace_(trace), s_(maps) {}

  // Decodes z (z_dim, h, w) channel-first, already un-normalised, into out (3, s h, s w).
  void run(const float* z, int64_t h, int64_t w, float* out) {
    const VaeWeights& W = m_.weights;
    const int64_t zc = m_.config.z_dim;
    s_.height = h, s_.width = w, s_.channels = zc;
    {
      StageTimer t(o_.times, "io");
      to_channels_last(z, h * w, zc, sized(s_.x, h * w * zc));
    }
    store("vae_input", s_.x);
    conv(W.post_quant_conv, s_.x, s_.t, "conv1x1");
    std::swap(s_.x, s_.t);
    store("post_quant_conv", s_.x);
    conv(W.conv_in, s_.x, s_.t, "conv");
    std::swap(s_.x, s_.t);
    store("decoder.conv_in", s_.x);
    stage_done();
    resnet(W.mid0);
    store("decoder.mid_block.resnets.0", s_.x);
    attention(W.mid_attention);
    store("decoder.mid_block.attentions.0", s_.x);
    resnet(W.mid1);
    store("decoder.mid_block", s_.x);
    stage_done();
    const int64_t L = int64_t(W.up_blocks.size());
    for (int64_t i = 0; i < L; ++i) {
      const VaeUpBlock& b = W.up_blocks[size_t(i)];
      const std::string p = "decoder.up_blocks." + std::to_string(i);
      for (size_t j = 0; j < b.resnets.size(); ++j) {
        resnet(b.resnets[j]);
        if (i + 1 < L || j + 1 < b.resnets.size()) store(p + ".resnets." + std::to_string(j), s_.x);
      }
      if (b.upsample.weight) {
        StageTimer t(o_.times, "upsample");
        const int64_t out = b.upsample.out;
        run_conv(b.upsample, s_.x.data(), sized(s_.t, 4 * s_.pixels() * out), /*upsample2x=*/true);
        std::swap(s_.x, s_.t);
        s_.height *= 2, s_.width *= 2, s_.channels = out;
      }
      store(p, s_.x);
      stage_done();
    }
    {
      StageTimer t(o_.times, "norm");
      float* hn = sized(s_.h, s_.pixels() * s_.channels);
      channel_rms_norm(s_.x.data(), s_.pixels(), s_.channels, W.norm_out.data(), !trace_, hn);
    }
    if (trace_) {
      store("decoder.norm_out", s_.h);
      StageTimer t(o_.times, "norm");
      silu_inplace(s_.h.data(), s_.pixels() * s_.channels);
    }
    conv(W.conv_out, s_.h, s_.t, "conv");
    std::swap(s_.x, s_.t);
    store("decoder.conv_out", s_.x);
    {
      StageTimer t(o_.times, "io");
      const int64_t P = s_.pixels();
      to_channels_first(s_.x.data(), P, 3, out);
#pragma omp parallel for schedule(static) if (P > 65536)
      for (int64_t i = 0; i < 3 * P; ++i) out[i] = std::clamp(out[i], -1.0f, 1.0f);
    }
    stage_done();
  }

 private:
  // y = c(x) (or y += c(x)) at the current map size, through the weight packed at load when there is one.
  void run_conv(const VaeConv& c, const float* x, float* y, bool upsample2x = false,
                bool accumulate = false) {
    if (!c.packed.empty()) {
      conv2d(x, s_.height, s_.width, c.packed, y, upsample2x, accumulate);
    } else {
      conv2d(x, s_.height, s_.width, c.view(), y, upsample2x, accumulate);
    }
  }

  // dst = conv(src) at the current map size; sets the channel count.
  void conv(const VaeConv& c, const std::vector<float>& src, std::vector<float>& dst, const char* stage) {
    StageTimer t(o_.times, stage);
    run_conv(c, src.data(), sized(dst, s_.pixels() * c.out));
    s_.channels = c.out;
  }

  // x = conv2(SiLU(norm2(conv1(SiLU(norm1(x)))))) + (shortcut(x) or x).
  void resnet(const VaeResnet& r) {
    const int64_t P = s_.pixels(), a = r.conv1.in, b = r.conv1.out;
    {
      StageTimer t(o_.times, "norm");
      channel_rms_norm(s_.x.data(), P, a, r.norm1.data(), true, sized(s_.h, P * std::max(a, b)));
    }
    {
      StageTimer t(o_.times, "conv");
      run_conv(r.conv1, s_.h.data(), sized(s_.t, P * b));
    }
    {
      StageTimer t(o_.times, "norm");
      channel_rms_norm(s_.t.data(), P, b, r.norm2.data(), true, s_.h.data());
    }
    if (r.has_shortcut()) {
      // conv1's output is consumed: its buffer takes shortcut(x), then conv2 adds into it.
      {
        StageTimer t(o_.times, "conv1x1");
        run_conv(r.shortcut, s_.x.data(), s_.t.data());
      }
      StageTimer t(o_.times, "conv");
      run_conv(r.conv2, s_.h.data(), s_.t.data(), false, /*accumulate=*/true);
      std::swap(s_.x, s_.t);
    } else {
      StageTimer t(o_.times, "conv");
      run_conv(r.conv2, s_.h.data(), s_.x.data(), false, /*accumulate=*/true);
    }
    s_.channels = b;
  }

  // x = x + proj(attention(q, k, v)), [q, k, v] = to_qkv(RMS(x)): one head over all pixels.
  void attention(const VaeAttention& a) {
    const int64_t P = s_.pixels(), C = s_.channels;
    {
      StageTimer t(o_.times, "norm");
      channel_rms_norm(s_.x.data(), P, C, a.norm.data(), false, sized(s_.h, P * C));
    }
    float* qkv = sized(s_.qkv, P * 3 * C);
    {
      StageTimer t(o_.times, "attention_proj");
      run_conv(a.to_qkv, s_.h.data(), qkv);
    }
    {
      StageTimer t(o_.times, "attention");
      attention_core(qkv, P, C, s_.h.data());
    }
    StageTimer t(o_.times, "attention_proj");
    run_conv(a.proj, s_.h.data(), s_.x.data(), false, /*accumulate=*/true);
  }

  static void attention_core(const float* qkv, int64_t P, int64_t C, float* out) {
    const AttentionShape shape{1, 1, int(C)};
    krea2::attention(qkv, 3 * C, qkv + C, 3 * C, qkv + 2 * C, 3 * C, out, C, shape, {Segment{0, P, false}});
  }

  void store(const std::string& name, const std::vector<float>& map) {
    if (!trace_) return;
    Tensor t({1, s_.channels, s_.height, s_.width});
    to_channels_first(map.data(), s_.pixels(), s_.channels, t.ptr());
    (*o_.trace)[name] = std::move(t);
  }

  void stage_done() {
    ++done_;
    if (o_.progress) o_.progress(done_, total_);
  }

  const VaeImpl& m_;
  const VaeDecodeOptions& o_;
  int total_, done_ = 0;
  bool trace_;
  Maps& s_;
};

}  // namespace

Tensor Vae::decode(const Tensor& latents, const VaeDecodeOptions& options) const {
  const VaeConfig& c = impl_->config;
  const Shape& s = latents.shape;
  const bool five = s.size() == 5;
  if (!(s.size() == 4 || (five && s[2] == 1)) || s[1] != c.z_dim || s[0] < 1 || s.back() < 1 ||
      s[s.size() - 2] < 1)
    throw Error("VAE decode: latents must be (B, " + std::to_string(c.z_dim) + ", h, w) or (B, " +
                std::to_string(c.z_dim) + ", 1, h, w), found " + shape_str(s));
  const int64_t B = s[0], h = s[s.size() - 2], w = s.back(), f = c.scale_factor();
  const int64_t zc = c.z_dim, P = h * w;
  Tensor image({B, 3, f * h, f * w});
  const int stages = int(c.levels()) + 3;
  std::vector<float> z(size_t(zc * P));
  Maps maps;  // reused by every image
  for (int64_t b = 0; b < B; ++b) {
    {
      StageTimer t(options.times, "io");
      // Upstream un-normalises as latents / (1 / std) + mean (the reciprocal rounded to float32 first).
      const float* src = latents.ptr() + b * zc * P;
      for (int64_t ch = 0; ch < zc; ++ch) {
        const float inv = 1.0f / c.latents_std[size_t(ch)], mean = c.latents_mean[size_t(ch)];
        for (int64_t p = 0; p < P; ++p) z[size_t(ch * P + p)] = src[ch * P + p] / inv + mean;
      }
    }
    VaeDecodeOptions o = options;
    if (options.progress)
      o.progress = [&](int done, int) { options.progress(int(b) * stages + done, int(B) * stages); };
    Decoder d(*impl_, o, stages, options.trace != nullptr && b == 0, maps);
    d.run(z.data(), h, w, image.ptr() + b * 3 * f * h * f * w);
  }
  return image;
}

}  // namespace krea2
