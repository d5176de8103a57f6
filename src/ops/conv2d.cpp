// conv2d's driver (ops/conv2d.h): the weight packed once per conv (or in advance, PackedConv2d), then pixel
// tiles shared dynamically by the threads; per tile one channels-last copy of its input region and the
// variant's microkernels (ops/conv2d_kernels.h) over all depth blocks and column panels. Threads take whole
// tiles, so there is no barrier per tile and the region copies run in parallel with the products.
#include "ops/conv2d.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "ops/conv2d_kernels.h"
#include "ops/conv2d_onednn.h"
#include "ops/gemm_kernels.h"

namespace krea2 {

namespace {

std::atomic<int64_t> g_tile_pixels{0}, g_tile_width{0}, g_depth{0};

// Defaults measured on the real VAE layer shapes (in / out 96 .. 384, maps 64^2 .. 512^2, 2 threads, AVX-512,
// interleaved, on a loaded 2-core VM so only differences of ~5 % are resolved): tiles of 384 pixels (2 rows
// of 192) within noise of 768 / 1152 pixels and of widths 384 / 1024; depth blocks of 384 (4 taps of 96, 2 of
// 192, 1 of 384) ~2-4 % ahead of 256, 96 and 864 worse.
constexpr int64_t kTilePixels = 384;
constexpr int64_t kTileWidth = 192;
constexpr int64_t kDepth = 384;
// Outputs up to this many (the VAE's conv_out: 3) skip the microkernel, which would compute NR columns for
// them: plain dot products over the region's pixel rows instead (narrow_pixel below).
constexpr int64_t kNarrowOut = 4;

int64_t round_up(int64_t v, int64_t m) {
  return (v + m - 1) / m * m;
}

const ConvKernels& conv_kernels(Isa isa) {
  return isa == Isa::kAvx512 ? kConvKernelsAvx512 : kConvKernelsAvx2;
}

void check(const Conv2dWeights& w, int64_t height, int64_t width) {
  if ((w.kernel != 1 && w.kernel != 3) || w.in < 1 || w.out < 1 || !w.weight || height < 1 || width < 1)
    throw std::invalid_argument("conv2d: bad arguments (kernel " + std::to_string(w.kernel) + ", in " +
                                std::to_string(w.in) + ", out " + std::to_string(w.out) + ", map " +
                                std::to_string(height) + " x " + std::to_string(width) + ")");
}

float* aligned_floats(int64_t n) {
  const size_t bytes = size_t(round_up(std::max<int64_t>(n, 1), 16)) * sizeof(float);
  auto* p = static_cast<float*>(std::aligned_alloc(64, bytes));
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

// A 64-byte aligned float buffer that only grows, zeroed when (re)allocated; one per thread.
class RegionBuffer {
 public:
  RegionBuffer() = default;
  RegionBuffer(const RegionBuffer&) = delete;
  RegionBuffer& operator=(const RegionBuffer&) = delete;
  ~RegionBuffer() { std::free(data_); }
  float* get(int64_t floats) {
    if (floats > capacity_) {
      std::free(data_);
      data_ = nullptr;
      capacity_ = 0;
      data_ = aligned_floats(floats);
      std::memset(data_, 0, size_t(floats) * sizeof(float));
      capacity_ = floats;
    }
    return data_;
  }

 private:
  float* data_ = nullptr;
  int64_t capacity_ = 0;
};

thread_local RegionBuffer t_region;

// W^T of (out, K) packed as ceil(out / NR) panels of K x NR (panel j: columns j NR .. j NR + NR, zero past
// out), by the GEMM variant's packer; items of (panel, 256 depths) shared by the team for large weights.
std::shared_ptr<const float> pack_weights(const Conv2dWeights& w, Isa isa) {
  const GemmKernels& g = gemm_kernels(isa, Compute::kF32);
  if (g.nr != conv_kernels(isa).nr || g.depth_per_word != 1 || g.b_extra != 0)
    throw std::logic_error("conv2d: the GEMM variant's W^T panels do not match the conv microkernel");
  const int64_t K = w.kernel * w.kernel * w.in, N = w.out, nr = g.nr;
  const int64_t panels = (N + nr - 1) / nr;
  float* out = aligned_floats(panels * K * nr);
  std::shared_ptr<const float> owned(out, [](const float* p) { std::free(const_cast<float*>(p)); });
  constexpr int64_t kDepthChunk = 256;
  const int64_t chunks = (K + kDepthChunk - 1) / kDepthChunk, items = panels * chunks;
  const auto* bytes = reinterpret_cast<const unsigned char*>(w.weight);
  const bool parallel =
      !omp_in_parallel() && omp_get_max_threads() > 1 && panels * K * nr > (int64_t(1) << 16);
#pragma omp parallel for schedule(dynamic) if (parallel)
  for (int64_t i = 0; i < items; ++i) {
    const int64_t j = i / chunks, k0 = i % chunks * kDepthChunk, kc = std::min(kDepthChunk, K - k0);
    g.pack_b_f32(bytes, K, j * nr, std::min(nr, N - j * nr), k0, kc, out + j * K * nr + k0 * nr);
  }
  return owned;
}

// A block of the depth: taps [tap0, tap0 + taps), channels [c0, c0 + kc) of each (kc = in when taps > 1).
struct DepthBlock {
  int64_t tap0, taps, c0, kc;
};

std::vector<DepthBlock> depth_blocks(int64_t taps, int64_t C, int64_t depth) {
  std::vector<DepthBlock> blocks;
  if (C <= depth) {
    const int64_t per = std::max<int64_t>(1, depth / C);
    for (int64_t t = 0; t < taps; t += per) blocks.push_back({t, std::min(per, taps - t), 0, C});
  } else {
    const int64_t parts = (C + depth - 1) / depth;
    for (int64_t t = 0; t < taps; ++t)
      for (int64_t p = 0; p < parts; ++p) {
        const int64_t c0 = C * p / parts, c1 = C * (p + 1) / parts;
        blocks.push_back({t, 1, c0, c1 - c0});
      }
  }
  return blocks;
}

inline float hsum(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
}

// One output pixel of a conv with N <= kNarrowOut outputs: y[o] (+)= bias[o] + sum over taps of the region
// pixel row at a + tap_off[t] dotted with the weight row's tap. Four outputs at a time (rows past N repeat
// the last one and are dropped).
void narrow_pixel(const float* a, const int64_t* tap_off, int64_t taps, const Conv2dWeights& w, float* y,
                  bool accumulate) {
  const int64_t C = w.in, N = w.out, K = taps * C;
  const float* w0 = w.weight;
  const float* w1 = w.weight + std::min<int64_t>(1, N - 1) * K;
  const float* w2 = w.weight + std::min<int64_t>(2, N - 1) * K;
  const float* w3 = w.weight + std::min<int64_t>(3, N - 1) * K;
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(),
         s3 = _mm256_setzero_ps();
  float t0 = 0, t1 = 0, t2 = 0, t3 = 0;
  for (int64_t t = 0; t < taps; ++t) {
    const float* xa = a + tap_off[t];
    const int64_t o = t * C;
    int64_t c = 0;
    for (; c + 8 <= C; c += 8) {
      const __m256 xv = _mm256_loadu_ps(xa + c);
      s0 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(w0 + o + c), s0);
      s1 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(w1 + o + c), s1);
      s2 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(w2 + o + c), s2);
      s3 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(w3 + o + c), s3);
    }
    for (; c < C; ++c) {
      t0 += xa[c] * w0[o + c], t1 += xa[c] * w1[o + c], t2 += xa[c] * w2[o + c], t3 += xa[c] * w3[o + c];
    }
  }
  const float v[4] = {hsum(s0) + t0, hsum(s1) + t1, hsum(s2) + t2, hsum(s3) + t3};
  for (int64_t j = 0; j < N; ++j) {
    const float b = w.bias ? w.bias[j] : 0.0f;
    y[j] = accumulate ? y[j] + (v[j] + b) : v[j] + b;
  }
}

void run_conv(const float* x, int64_t height, int64_t width, const Conv2dWeights& w, const float* panels,
              Isa isa, float* y, bool up, bool accumulate) {
  const ConvKernels& kern = conv_kernels(isa);
  const int64_t mr = kern.mr, nr = kern.nr;
  const int64_t H = up ? 2 * height : height, W = up ? 2 * width : width;
  const int64_t k = w.kernel, h = k / 2, C = w.in, N = w.out, K = k * k * C;
  const int64_t n_panels = (N + nr - 1) / nr;
  const int64_t tile_pixels = g_tile_pixels > 0 ? g_tile_pixels.load() : kTilePixels;
  const int64_t tile_width = g_tile_width > 0 ? g_tile_width.load() : kTileWidth;
  const std::vector<DepthBlock> blocks = depth_blocks(k * k, C, g_depth > 0 ? g_depth.load() : kDepth);
  const int64_t S = std::min(W, round_up(tile_width, mr));
  const int64_t R = std::clamp<int64_t>(tile_pixels / S, 1, H);
  const int64_t tiles_x = (W + S - 1) / S, tiles_y = (H + R - 1) / R, tiles = tiles_x * tiles_y;
  // The region and the MR - 1 pixels a last panel reads past it.
  const int64_t region_floats = ((R + 2 * h) * (S + 2 * h) + mr) * C;
  const int64_t threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  const bool parallel = threads > 1 && tiles > 1 && 2.0 * double(H * W) * double(K) * double(N) > 4e6;
  const bool init_bias = w.bias != nullptr;
  const size_t pixel_bytes = size_t(C) * sizeof(float);
  std::atomic<int64_t> next{0};

  auto tile = [&](int64_t t, float* region) {
    const int64_t ty = t / tiles_x, tx = t % tiles_x;
    const int64_t y0 = ty * R, x0 = tx * S, rows = std::min(R, H - y0), cols = std::min(S, W - x0);
    const int64_t sw = cols + 2 * h;  // region row width
    // The region: rows y0 - h .. y0 + rows + h, columns x0 - h .. x0 + cols + h, channels-last.
    for (int64_t rr = 0; rr < rows + 2 * h; ++rr) {
      const int64_t sy = y0 - h + rr;
      float* dst = region + rr * sw * C;
      if (sy < 0 || sy >= H) {
        std::memset(dst, 0, size_t(sw) * pixel_bytes);
        continue;
      }
      const float* src_row = x + (up ? sy / 2 : sy) * width * C;
      const int64_t sa = std::max<int64_t>(0, h - x0), sb = std::min(sw, W - x0 + h);  // columns in the map
      if (sa > 0) std::memset(dst, 0, size_t(sa) * pixel_bytes);
      if (sb < sw) std::memset(dst + sb * C, 0, size_t(sw - sb) * pixel_bytes);
      if (!up) {
        std::memcpy(dst + sa * C, src_row + (x0 - h + sa) * C, size_t(sb - sa) * pixel_bytes);
      } else {
        for (int64_t sc = sa; sc < sb; ++sc)
          std::memcpy(dst + sc * C, src_row + (x0 - h + sc) / 2 * C, pixel_bytes);
      }
    }
    int64_t tap_off[9];
    for (int64_t dy = 0; dy < k; ++dy)
      for (int64_t dx = 0; dx < k; ++dx) tap_off[dy * k + dx] = (dy * sw + dx) * C;
    if (N <= kNarrowOut) {
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t s = 0; s < cols; ++s)
          narrow_pixel(region + (r * sw + s) * C, tap_off, k * k, w, y + ((y0 + r) * W + x0 + s) * N,
                       accumulate);
      return;
    }
    // Bias first (or nothing: the first depth block then stores instead of adding).
    if (init_bias) {
      for (int64_t r = 0; r < rows; ++r) {
        float* yr = y + ((y0 + r) * W + x0) * N;
        for (int64_t p = 0; p < cols; ++p, yr += N) {
          if (!accumulate) {
            std::memcpy(yr, w.bias, size_t(N) * sizeof(float));
          } else {
            for (int64_t o = 0; o < N; ++o) yr[o] += w.bias[o];
          }
        }
      }
    }
    // Panels of MR consecutive region positions q = r sw + s (output pixel (y0 + r, x0 + s) when s < cols;
    // the halo columns in between are computed and dropped).
    const int64_t positions = (rows - 1) * sw + cols;
    alignas(64) float edge[16 * 32];
    for (size_t bi = 0; bi < blocks.size(); ++bi) {
      const DepthBlock& blk = blocks[bi];
      const bool add = accumulate || init_bias || bi > 0;
      int64_t off[9];
      for (int64_t i = 0; i < blk.taps; ++i) off[i] = tap_off[blk.tap0 + i] + blk.c0;
      for (int64_t jp = 0; jp < n_panels; ++jp) {
        const float* b = panels + jp * K * nr + (blk.tap0 * C + blk.c0) * nr;
        const int64_t ncols = std::min(nr, N - jp * nr);
        float* yj = y + jp * nr;
        for (int64_t q = 0, r = 0, s = 0; q < positions; q += mr) {
          // (r, s) = divmod(q, sw), carried along.
          const float* a = region + q * C;
          if (s + mr <= cols && ncols == nr) {
            kern.kernel(blk.taps, off, blk.kc, a, C, b, yj + ((y0 + r) * W + x0 + s) * N, N, add);
          } else {
            kern.kernel(blk.taps, off, blk.kc, a, C, b, edge, nr, false);
            for (int64_t i = 0, ri = r, si = s; i < mr; ++i) {
              if (si < cols && ri < rows) {
                float* row = yj + ((y0 + ri) * W + x0 + si) * N;
                const float* e = edge + i * nr;
                if (add) {
                  for (int64_t j = 0; j < ncols; ++j) row[j] += e[j];
                } else {
                  for (int64_t j = 0; j < ncols; ++j) row[j] = e[j];
                }
              }
              if (++si == sw) si = 0, ++ri;
            }
          }
          s += mr;
          while (s >= sw) s -= sw, ++r;
        }
      }
    }
  };
  auto run = [&]() {
    float* region = t_region.get(region_floats);
    for (int64_t t; (t = next.fetch_add(1)) < tiles;) tile(t, region);
  };
  if (!parallel) {
    run();
    return;
  }
  std::exception_ptr error;
#pragma omp parallel num_threads(int(threads))
  {
    try {
      run();
    } catch (...) {
#pragma omp critical(krea2_conv2d_error)
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace

PackedConv2d::PackedConv2d(const Conv2dWeights& w, Isa isa) : w_(w), isa_(isa) {
  check(w, 1, 1);
  nr_ = conv_kernels(isa).nr;
  panels_ = pack_weights(w, isa);
  if (onednn_available()) onednn_ = make_onednn_conv2d(w);
}

int64_t PackedConv2d::bytes() const {
  if (!panels_) return 0;
  return (w_.out + nr_ - 1) / nr_ * nr_ * w_.kernel * w_.kernel * w_.in * int64_t(sizeof(float));
}

void set_conv2d_blocking(const Conv2dBlocking& blocking) {
  g_tile_pixels = std::max<int64_t>(blocking.tile_pixels, 0);
  g_tile_width = std::max<int64_t>(blocking.tile_width, 0);
  g_depth = std::max<int64_t>(blocking.depth, 0);
}

Conv2dBlocking conv2d_blocking() {
  return {g_tile_pixels, g_tile_width, g_depth};
}

void set_conv2d_tile_rows(int64_t rows) {
  g_tile_pixels = std::max<int64_t>(rows, 0);
}

int64_t conv2d_tile_rows() {
  return g_tile_pixels;
}

void conv2d(const float* x, int64_t height, int64_t width, const PackedConv2d& w, float* y, bool upsample2x,
            bool accumulate) {
  if (w.empty()) throw std::invalid_argument("conv2d: empty PackedConv2d");
  check(w.weights(), height, width);
  const ConvBackend backend = conv2d_backend();
  if (backend != ConvBackend::kOwn && w.onednn() &&
      onednn_conv2d(*w.onednn(), backend, x, height, width, y, upsample2x, accumulate))
    return;
  const Isa isa = active_isa();
  if (w.isa() == isa) {
    run_conv(x, height, width, w.weights(), w.panels(), isa, y, upsample2x, accumulate);
    return;
  }
  const std::shared_ptr<const float> panels = pack_weights(w.weights(), isa);
  run_conv(x, height, width, w.weights(), panels.get(), isa, y, upsample2x, accumulate);
}

void conv2d(const float* x, int64_t height, int64_t width, const Conv2dWeights& w, float* y, bool upsample2x,
            bool accumulate) {
  check(w, height, width);
  const Isa isa = active_isa();
  const std::shared_ptr<const float> panels = pack_weights(w, isa);
  run_conv(x, height, width, w, panels.get(), isa, y, upsample2x, accumulate);
}

void conv2d_reference(const float* x, int64_t height, int64_t width, const Conv2dWeights& w, float* y,
                      bool upsample2x, bool accumulate) {
  check(w, height, width);
  const int64_t H = upsample2x ? 2 * height : height, W = upsample2x ? 2 * width : width;
  const int64_t k = w.kernel, pad = k / 2, C = w.in, K = k * k * C;
  for (int64_t py = 0; py < H; ++py)
    for (int64_t px = 0; px < W; ++px)
      for (int64_t o = 0; o < w.out; ++o) {
        double s = w.bias ? w.bias[o] : 0.0;
        for (int64_t dy = 0; dy < k; ++dy)
          for (int64_t dx = 0; dx < k; ++dx) {
            const int64_t sy = py + dy - pad, sx = px + dx - pad;
            if (sy < 0 || sy >= H || sx < 0 || sx >= W) continue;
            const int64_t src = upsample2x ? (sy / 2) * width + sx / 2 : sy * width + sx;
            const float* xr = x + src * C;
            const float* wr = w.weight + o * K + (dy * k + dx) * C;
            for (int64_t c = 0; c < C; ++c) s += double(xr[c]) * double(wr[c]);
          }
        float& out = y[(py * W + px) * w.out + o];
        out = accumulate ? float(double(out) + s) : float(s);
      }
}

}  // namespace krea2
