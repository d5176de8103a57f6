// The decoder's element-wise steps over channels-last maps (rows = pixels, C channels per row): the channel
// RMS norm with its SiLU, and the layout changes between the decoder's maps and (C, h, w) tensors.
#pragma once
#include <cstdint>

namespace krea2 {

// out[p, c] = x[p, c] / max(||x[p, :]||, 1e-12) * sqrt(C) * gamma[c] (F.normalize over the channels, Wan's
// RMS_norm), then SiLU when `silu`. out may be x.
void channel_rms_norm(const float* x, int64_t pixels, int64_t C, const float* gamma, bool silu, float* out);

// x = silu(x) over n values.
void silu_inplace(float* x, int64_t n);

// Channels-last (pixels, C) <-> channel-first (C, pixels).
void to_channels_first(const float* x, int64_t pixels, int64_t C, float* out);
void to_channels_last(const float* x, int64_t pixels, int64_t C, float* out);

}  // namespace krea2
