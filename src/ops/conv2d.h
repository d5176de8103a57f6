// 2-D convolutions (3x3 with zero padding 1, and 1x1), stride 1, with bias, over channels-last maps: a map of
// height x width pixels and C channels is (height * width) rows of C floats, so per-pixel channel ops (RMS
// over channels, 1x1 convs) are row ops. A conv is the product y = im2col(x) W^T, computed without building
// im2col: the output is cut into tiles of pixels (a few rows by up to a few hundred columns), each thread
// copies a tile's input region (with its 1-pixel halo, zeros outside the map) once, channels-last,
// and the GEMM's register-blocked microkernels (ops/gemm_kernels.h sizes) read every tap straight from that
// copy (ops/conv2d_kernels.h) against the weight packed once per conv into the GEMM's W^T micro-panels. A
// nearest x2 upsample of the input is fused into the region copy (the 4x map is never built).
#pragma once
#include <cstdint>
#include <memory>

#include "cpu/cpu_features.h"

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

class OnednnConv2d;  // ops/conv2d_onednn.h

// A conv's weight packed once for conv2d (the GEMM variant's W^T micro-panels, NR columns per depth, N
// padded to NR), e.g. at model load, since conv2d(Conv2dWeights) packs it again on every call. Keeps the
// pointers of `w` (the weight is read again only when the active ISA is no longer the one packed for, in
// which case conv2d repacks it for that call). Copies share the packed panels (read-only).
class PackedConv2d {
 public:
  PackedConv2d() = default;
  explicit PackedConv2d(const Conv2dWeights& w, Isa isa = active_isa());
  const Conv2dWeights& weights() const { return w_; }
  Isa isa() const { return isa_; }
  bool empty() const { return panels_ == nullptr; }
  const float* panels() const { return panels_.get(); }  // ceil(out / NR) panels of kernel^2 * in x NR
  int64_t bytes() const;                                 // of the packed panels
  // oneDNN's primitives for this conv (3x3, builds with oneDNN), used when conv2d_backend() says so.
  OnednnConv2d* onednn() const { return onednn_.get(); }

 private:
  Conv2dWeights w_{};
  Isa isa_ = Isa::kAvx2;
  int64_t nr_ = 0;
  std::shared_ptr<const float> panels_;
  std::shared_ptr<OnednnConv2d> onednn_;
};

// The same as conv2d above with a weight packed in advance (w must not be empty). A 3x3 conv runs through
// oneDNN when conv2d_backend() (ops/conv2d_onednn.h) is a oneDNN one and oneDNN takes the shape.
void conv2d(const float* x, int64_t height, int64_t width, const PackedConv2d& w, float* y,
            bool upsample2x = false, bool accumulate = false);

// The driver's blocking, for tuning and tests (0 = the default, measured; not thread-safe against
// concurrent conv2d calls). A tile is rows x cols output pixels, cols = min(tile_width rounded up to the
// microkernel's MR, map width), rows = max(1, tile_pixels / cols); the weight is consumed in depth blocks of
// about `depth` (whole taps when in <= depth, else each tap's channels split evenly).
struct Conv2dBlocking {
  int64_t tile_pixels = 0;
  int64_t tile_width = 0;
  int64_t depth = 0;
};
void set_conv2d_blocking(const Conv2dBlocking& blocking);
Conv2dBlocking conv2d_blocking();  // as set (zeros: defaults)

// Shorthand for the tile size alone: set_conv2d_blocking with tile_pixels = rows (0 = default).
void set_conv2d_tile_rows(int64_t rows);
int64_t conv2d_tile_rows();

// Plain scalar reference (double accumulation), same arguments.
void conv2d_reference(const float* x, int64_t height, int64_t width, const Conv2dWeights& w, float* y,
                      bool upsample2x = false, bool accumulate = false);

}  // namespace krea2
