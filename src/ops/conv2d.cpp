// conv2d: implicit im2col in pixel tiles, each tile one gemm_xwt. Threads take whole tiles (each builds its
// own im2col rows and runs its product single-threaded), so there is no barrier per tile and the im2col
// copies run in parallel with the products.
#include "ops/conv2d.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#include "ops/gemm.h"

namespace krea2 {

namespace {

std::atomic<int64_t> g_tile_rows{0};

void check(const Conv2dWeights& w, int64_t height, int64_t width) {
  if ((w.kernel != 1 && w.kernel != 3) || w.in < 1 || w.out < 1 || !w.weight || height < 1 || width < 1)
    throw std::invalid_argument("conv2d: bad arguments (kernel " + std::to_string(w.kernel) + ", in " +
                                std::to_string(w.in) + ", out " + std::to_string(w.out) + ", map " +
                                std::to_string(height) + " x " + std::to_string(width) + ")");
}

// Rows [p0, p0 + rows) of the im2col matrix (depth kernel^2 * in, tap-major) of the (maybe upsampled)
// input; out-of-map taps are zero (padding).
void im2col_rows(const float* x, int64_t height, int64_t width, const Conv2dWeights& w, bool up, int64_t p0,
                 int64_t rows, float* out) {
  const int64_t H = up ? 2 * height : height, W = up ? 2 * width : width;
  const int64_t k = w.kernel, pad = k / 2, C = w.in, K = k * k * C;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t p = p0 + r, py = p / W, px = p % W;
    float* row = out + r * K;
    for (int64_t dy = 0; dy < k; ++dy) {
      const int64_t sy = py + dy - pad;
      for (int64_t dx = 0; dx < k; ++dx, row += C) {
        const int64_t sx = px + dx - pad;
        if (sy < 0 || sy >= H || sx < 0 || sx >= W) {
          std::memset(row, 0, size_t(C) * sizeof(float));
          continue;
        }
        const int64_t src = up ? (sy / 2) * width + sx / 2 : sy * width + sx;
        std::memcpy(row, x + src * C, size_t(C) * sizeof(float));
      }
    }
  }
}

void bias_rows(float* y, int64_t rows, const Conv2dWeights& w, bool accumulate) {
  for (int64_t r = 0; r < rows; ++r) {
    float* yr = y + r * w.out;
    if (!accumulate) {
      if (w.bias)
        std::memcpy(yr, w.bias, size_t(w.out) * sizeof(float));
      else
        std::memset(yr, 0, size_t(w.out) * sizeof(float));
    } else if (w.bias) {
      for (int64_t o = 0; o < w.out; ++o) yr[o] += w.bias[o];
    }
  }
}

}  // namespace

void set_conv2d_tile_rows(int64_t rows) {
  g_tile_rows = std::max<int64_t>(rows, 0);
}

int64_t conv2d_tile_rows() {
  return g_tile_rows;
}

void conv2d(const float* x, int64_t height, int64_t width, const Conv2dWeights& w, float* y, bool upsample2x,
            bool accumulate) {
  check(w, height, width);
  const int64_t H = upsample2x ? 2 * height : height, W = upsample2x ? 2 * width : width, P = H * W;
  const int64_t K = w.kernel * w.kernel * w.in;
  const WeightMatrix wm{DType::F32, w.out, K, w.weight};
  const bool direct = w.kernel == 1 && !upsample2x;  // x itself is the im2col matrix
  const int64_t threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  // A tile of 192 pixel rows: each tile's product packs the whole weight again, so taller tiles amortise that
  // better, but their im2col rows and packed copy then leave L2. Measured on the real layer shapes (in 96 ..
  // 384, out 96 .. 384, 2 threads, AVX-512): 192 rows best or within 3 % of the best everywhere, 768+ rows
  // 5-20 % slower. At least 4 tiles per thread so the dynamic schedule evens out; whole multiples of 48 rows
  // (the microkernels' MR: 6 and 12).
  int64_t T = g_tile_rows > 0 ? g_tile_rows.load() : 192;
  if (g_tile_rows == 0) {
    T = std::min(T, (P + 4 * threads - 1) / (4 * threads));
    T = std::max<int64_t>((T + 47) / 48 * 48, 48);
  }
  const int64_t tiles = (P + T - 1) / T;
  const bool parallel = threads > 1 && tiles > 1 && 2.0 * double(P) * double(K) * double(w.out) > 4e6;
  std::exception_ptr error;
  std::atomic<int64_t> next{0};
  auto run = [&]() {
    std::vector<float> cols;
    for (int64_t t; (t = next.fetch_add(1)) < tiles;) {
      const int64_t p0 = t * T, rows = std::min(T, P - p0);
      float* yt = y + p0 * w.out;
      bias_rows(yt, rows, w, accumulate);
      const float* a = x + p0 * w.in;
      if (!direct) {
        cols.resize(size_t(rows * K));
        im2col_rows(x, height, width, w, upsample2x, p0, rows, cols.data());
        a = cols.data();
      }
      gemm_xwt(a, rows, K, wm, yt, w.out, /*accumulate=*/true);
    }
  };
  if (!parallel) {
    // One tile after another, each product using the whole team.
    run();
    return;
  }
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
