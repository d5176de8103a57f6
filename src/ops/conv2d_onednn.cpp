// conv2d through oneDNN (ops/conv2d_onednn.h): primitives per map size, made on first use and cached with
// their reordered weights; channels-last maps wrapped as nhwc memory, reordered to the primitive's layout and
// back (the Winograd kernel takes only blocked layouts).
#include "ops/conv2d_onednn.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string_view>
#include <tuple>
#include <vector>

#include "cpu/cpu_features.h"
#include "ops/conv2d.h"

#ifdef KREA2_HAVE_DNNL
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace krea2 {

namespace {

std::atomic<int> g_backend{-1};  // -1: not read from KREA2_CONV yet
std::atomic<int64_t> g_runs[3];

ConvBackend initial_backend() {
  const char* env = std::getenv("KREA2_CONV");
  const ConvBackend best = onednn_available() ? ConvBackend::kWinograd : ConvBackend::kOwn;
  if (!env || !*env) return best;
  const std::string_view v(env);
  if (v == "own") return ConvBackend::kOwn;
  if ((v == "onednn" || v == "winograd") && onednn_available())
    return v == "onednn" ? ConvBackend::kOnednn : ConvBackend::kWinograd;
  std::fprintf(stderr, "warning: KREA2_CONV=%s ignored (own%s)\n", env,
               onednn_available() ? ", onednn or winograd" : "; this build has no oneDNN");
  return best;
}

}  // namespace

const char* conv_backend_name(ConvBackend b) {
  switch (b) {
    case ConvBackend::kOwn:
      return "own";
    case ConvBackend::kOnednn:
      return "onednn";
    case ConvBackend::kWinograd:
      return "winograd";
  }
  return "?";
}

bool onednn_available() {
#ifdef KREA2_HAVE_DNNL
  return true;
#else
  return false;
#endif
}

ConvBackend conv2d_backend() {
  int b = g_backend.load();
  if (b < 0) {
    int expected = -1;
    g_backend.compare_exchange_strong(expected, int(initial_backend()));
    b = g_backend.load();
  }
  return ConvBackend(b);
}

int64_t onednn_conv2d_runs(ConvBackend b) {
  return g_runs[int(b) % 3].load();
}

void set_conv2d_backend(ConvBackend b) {
  if (b != ConvBackend::kOwn && !onednn_available())
    throw std::invalid_argument(std::string("conv2d backend ") + conv_backend_name(b) +
                                ": this build has no oneDNN (libdnnl-dev)");
  g_backend = int(b);
}

#ifndef KREA2_HAVE_DNNL

class OnednnConv2d {};

std::shared_ptr<OnednnConv2d> make_onednn_conv2d(const Conv2dWeights&) {
  return nullptr;
}

bool onednn_conv2d(OnednnConv2d&, ConvBackend, const float*, int64_t, int64_t, float*, bool, bool) {
  return false;
}

#else

namespace {

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;
using dims = dnnl::memory::dims;

// oneDNN chooses its own kernels; the ISA cap (--isa, KREA2_ISA) in force at the first oneDNN conv bounds
// them too (oneDNN takes that limit once, before its first primitive).
dnnl::engine& cpu_engine() {
  static dnnl::engine engine = [] {
    if (active_isa() == Isa::kAvx2) {
      try {
        dnnl::set_max_cpu_isa(dnnl::cpu_isa::avx2);
      } catch (const dnnl::error&) {
      }
    }
    return dnnl::engine(dnnl::engine::kind::cpu, 0);
  }();
  return engine;
}

// One conv at one map size with one algorithm: the primitive and its reordered weights. The buffers a call
// needs (blocked source / result, upsampled input, the primitive's scratchpad) are shared by every conv
// (SharedBuffers): per-conv buffers would hold gigabytes.
struct Plan {
  bool ok = false;
  dnnl::convolution_forward conv;
  dnnl::memory weights, bias;
  dnnl::memory::desc nhwc_src, nhwc_dst, src_desc, dst_desc, scratchpad_desc;
  bool src_reorder = false, dst_reorder = false;
  bool src_blocked16 = false;  // src_desc is nChw16c (an upsample can be written straight into it)
  std::vector<float> zero_bias;
};

// Grow-only 64-byte aligned buffers, one set for the process; calls are serialised by g_run.
class Buffer {
 public:
  ~Buffer() { release(); }
  void release() {
    std::free(data_);
    data_ = nullptr;
    size_ = 0;
  }
  void* get(size_t bytes) {
    if (bytes > size_) {
      std::free(data_);
      size_ = (bytes + 63) / 64 * 64;
      data_ = std::aligned_alloc(64, size_);
      if (!data_) {
        size_ = 0;
        throw std::bad_alloc();
      }
    }
    return data_;
  }

 private:
  void* data_ = nullptr;
  size_t size_ = 0;
};

std::mutex g_run;  // oneDNN convs run one at a time (each uses every thread) and share these
Buffer g_src, g_dst, g_upsampled, g_scratchpad;
int64_t g_live_convs = 0;  // OnednnConv2d objects alive (under g_run); the buffers go with the last

}  // namespace

class OnednnConv2d {
 public:
  explicit OnednnConv2d(const Conv2dWeights& w) : w_(w) {
    std::lock_guard<std::mutex> lock(g_run);
    ++g_live_convs;
  }
  ~OnednnConv2d() {
    std::lock_guard<std::mutex> lock(g_run);
    if (--g_live_convs == 0) {
      for (Buffer* b : {&g_src, &g_dst, &g_upsampled, &g_scratchpad}) b->release();
    }
  }
  OnednnConv2d(const OnednnConv2d&) = delete;
  OnednnConv2d& operator=(const OnednnConv2d&) = delete;

  bool run(ConvBackend backend, const float* x, int64_t height, int64_t width, float* y, bool up,
           bool accumulate) {
    std::lock_guard<std::mutex> lock(g_run);
    const int64_t H = up ? 2 * height : height, W = up ? 2 * width : width;
    Plan* p = plan(H, W, backend);
    if (!p->ok && backend == ConvBackend::kWinograd) {
      backend = ConvBackend::kOnednn;
      p = plan(H, W, backend);
    }
    // An accumulating call without a reorder back takes the primitive with the sum post-op.
    if (p->ok && accumulate && !p->dst_reorder) p = plan(H, W, ConvBackend(int(backend) + 16));
    if (!p->ok) return false;
    const int64_t C = w_.in;
    dnnl::engine& engine = cpu_engine();
    dnnl::stream stream(engine);
    dnnl::memory y_nhwc(p->nhwc_dst, engine, y);
    dnnl::memory conv_src, conv_dst = y_nhwc;
    if (up && p->src_blocked16) {
      // The upsample written straight into the 16-channel blocked source (no upsampled nhwc map):
      // element (c, r, q) at ((c / 16) * H + r) * W + q) * 16 + c % 16, padded channels zero.
      const int64_t blocks = (C + 15) / 16;
      auto* b = static_cast<float*>(g_src.get(p->src_desc.get_size()));
#pragma omp parallel for schedule(static)
      for (int64_t r = 0; r < H; ++r)
        for (int64_t cb = 0; cb < blocks; ++cb) {
          const int64_t c0 = cb * 16, n = std::min<int64_t>(16, C - c0);
          float* row = b + (cb * H + r) * W * 16;
          const float* src_row = x + (r / 2) * width * C + c0;
          for (int64_t q = 0; q < W; ++q) {
            float* dst = row + q * 16;
            std::memcpy(dst, src_row + (q / 2) * C, size_t(n) * sizeof(float));
            if (n < 16) std::memset(dst + n, 0, size_t(16 - n) * sizeof(float));
          }
        }
      conv_src = dnnl::memory(p->src_desc, engine, b);
    } else {
      const float* src = x;
      if (up) {
        auto* u = static_cast<float*>(g_upsampled.get(size_t(H * W * C) * sizeof(float)));
#pragma omp parallel for schedule(static)
        for (int64_t r = 0; r < H; ++r)
          for (int64_t q = 0; q < W; ++q)
            std::memcpy(u + (r * W + q) * C, x + ((r / 2) * width + q / 2) * C, size_t(C) * sizeof(float));
        src = u;
      }
      dnnl::memory src_nhwc(p->nhwc_src, engine, const_cast<float*>(src));
      conv_src = src_nhwc;
      if (p->src_reorder) {
        conv_src = dnnl::memory(p->src_desc, engine, g_src.get(p->src_desc.get_size()));
        dnnl::reorder(src_nhwc, conv_src).execute(stream, src_nhwc, conv_src);
      }
    }
    if (p->dst_reorder) conv_dst = dnnl::memory(p->dst_desc, engine, g_dst.get(p->dst_desc.get_size()));
    const dnnl::memory scratchpad(p->scratchpad_desc, engine,
                                  g_scratchpad.get(std::max<size_t>(p->scratchpad_desc.get_size(), 64)));
    p->conv.execute(stream, {{DNNL_ARG_SRC, conv_src},
                             {DNNL_ARG_WEIGHTS, p->weights},
                             {DNNL_ARG_BIAS, p->bias},
                             {DNNL_ARG_DST, conv_dst},
                             {DNNL_ARG_SCRATCHPAD, scratchpad}});
    if (p->dst_reorder) {
      // y (+)= the result: the reorder back carries the sum post-op when accumulating.
      dnnl::primitive_attr attr;
      if (accumulate) {
        dnnl::post_ops ops;
        ops.append_sum(1.0f);
        attr.set_post_ops(ops);
      }
      const dnnl::reorder::primitive_desc rd(engine, p->dst_desc, engine, p->nhwc_dst, attr);
      dnnl::reorder(rd).execute(stream, conv_dst, y_nhwc);
    }
    stream.wait();
    ++g_runs[int(backend)];
    return true;
  }

 private:
  // The plan for a map size and backend; backend + 16: the nhwc primitive with the sum post-op.
  Plan* plan(int64_t H, int64_t W, ConvBackend backend) {
    const auto key = std::make_tuple(H, W, int(backend));
    auto it = plans_.find(key);
    if (it != plans_.end()) return &it->second;
    Plan& p = plans_[key];
    const bool with_sum = int(backend) >= 16;
    const bool winograd = (int(backend) & 15) == int(ConvBackend::kWinograd);
    const int64_t C = w_.in, O = w_.out;
    const dims src_dims{1, C, H, W}, dst_dims{1, O, H, W}, w_dims{O, C, 3, 3}, b_dims{O};
    p.nhwc_src = dnnl::memory::desc(src_dims, dt::f32, tag::nhwc);
    p.nhwc_dst = dnnl::memory::desc(dst_dims, dt::f32, tag::nhwc);
    dnnl::engine& engine = cpu_engine();
    try {
      const dnnl::memory::desc src_md =
          winograd ? dnnl::memory::desc(src_dims, dt::f32, tag::nChw16c) : p.nhwc_src;
      const dnnl::memory::desc dst_md =
          winograd ? dnnl::memory::desc(dst_dims, dt::f32, tag::nChw16c) : p.nhwc_dst;
      const dnnl::convolution_forward::desc d(
          dnnl::prop_kind::forward_inference,
          winograd ? dnnl::algorithm::convolution_winograd : dnnl::algorithm::convolution_direct, src_md,
          dnnl::memory::desc(w_dims, dt::f32, tag::any), dnnl::memory::desc(b_dims, dt::f32, tag::x), dst_md,
          {1, 1}, {1, 1}, {1, 1});
      dnnl::primitive_attr attr;
      attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
      if (with_sum) {
        dnnl::post_ops ops;
        ops.append_sum(1.0f);
        attr.set_post_ops(ops);
      }
      const dnnl::convolution_forward::primitive_desc pd(d, attr, engine);
      p.conv = dnnl::convolution_forward(pd);
      dnnl::stream stream(engine);
      // Our weights are (out, 3, 3, in): ohwi. The Winograd weight format is reached only from oihw.
      dnnl::memory user(dnnl::memory::desc(w_dims, dt::f32, tag::ohwi), engine,
                        const_cast<float*>(w_.weight));
      p.weights = dnnl::memory(pd.weights_desc(), engine);
      try {
        dnnl::reorder(user, p.weights).execute(stream, user, p.weights);
      } catch (const dnnl::error&) {
        dnnl::memory oihw(dnnl::memory::desc(w_dims, dt::f32, tag::oihw), engine);
        dnnl::reorder(user, oihw).execute(stream, user, oihw);
        dnnl::reorder(oihw, p.weights).execute(stream, oihw, p.weights);
      }
      if (!w_.bias) p.zero_bias.assign(size_t(O), 0.0f);
      p.bias = dnnl::memory(dnnl::memory::desc(b_dims, dt::f32, tag::x), engine,
                            const_cast<float*>(w_.bias ? w_.bias : p.zero_bias.data()));
      p.src_desc = pd.src_desc();
      p.dst_desc = pd.dst_desc();
      p.scratchpad_desc = pd.scratchpad_desc();
      p.src_reorder = !(p.src_desc == p.nhwc_src);
      p.src_blocked16 = p.src_desc == dnnl::memory::desc(src_dims, dt::f32, tag::nChw16c);
      p.dst_reorder = !(p.dst_desc == p.nhwc_dst);
      stream.wait();
      p.ok = true;
    } catch (const dnnl::error&) {
      p.ok = false;  // oneDNN refuses this shape / algorithm: the caller falls back
    }
    return &p;
  }

  Conv2dWeights w_;
  std::map<std::tuple<int64_t, int64_t, int>, Plan> plans_;
};

std::shared_ptr<OnednnConv2d> make_onednn_conv2d(const Conv2dWeights& w) {
  if (w.kernel != 3) return nullptr;
  return std::make_shared<OnednnConv2d>(w);
}

bool onednn_conv2d(OnednnConv2d& conv, ConvBackend backend, const float* x, int64_t height, int64_t width,
                   float* y, bool upsample2x, bool accumulate) {
  if (backend == ConvBackend::kOwn) return false;
  return conv.run(backend, x, height, width, y, upsample2x, accumulate);
}

#endif

}  // namespace krea2
