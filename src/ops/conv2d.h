// 2-D convolutions (3x3 with zero padding 1, and 1x1), stride 1, with bias, over channels-last maps: a map of
// height x width pixels and C channels is (height * width) rows of C floats, so per-pixel channel ops (RMS
// over channels, 1x1 convs) are row ops. A 3x3 conv is one product y = im2col(x) W^T through the packed GEMM
// (ops/gemm.h), the im2col built a tile of pixel rows at a time (never for the whole map), and a nearest x2
// upsample of the input can be fused into it (the 4x map is never built).
#pragma once
#include <cstdint>

namespace krea2 {

// A conv's weights in the layout conv2d reads: (out, kernel * kernel * in) row-major float32 with the depth
// index tap-major, k = (ky * kernel + kx) * in + c (PyTorch's (out, in, ky, kx) reordered once at load).
struct Conv2dWeights {
  int64_t in = 0, out = 0;
  int64_t kernel = 3;             // 3 (padding 1) or 1 (no padding)
  const float* weight = nullptr;  // (out, kernel^2 * in)
  const float* bias = nullptr;    // (out), or null
};

// y = conv(x) (+ bias): x (height * width, in) channels-last; y (H * W, out) with H, W = height, width, or
// 2 height, 2 width when `upsample2x` (the input first upsampled by nearest x2, each pixel replicated 2x2).
// With `accumulate`, y += conv(x) + bias. Uses all OpenMP threads (pixel tiles shared dynamically). x and y
// must not overlap.
void conv2d(const float* x, int64_t height, int64_t width, const Conv2dWeights& w, float* y,
            bool upsample2x = false, bool accumulate = false);

// Pixel rows per im2col tile (0 = chosen from the depth and thread count, the default), for tuning.
void set_conv2d_tile_rows(int64_t rows);
int64_t conv2d_tile_rows();

// Plain scalar reference (double accumulation), same arguments.
void conv2d_reference(const float* x, int64_t height, int64_t width, const Conv2dWeights& w, float* y,
                      bool upsample2x = false, bool accumulate = false);

}  // namespace krea2
