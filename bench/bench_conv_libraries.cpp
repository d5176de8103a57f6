// Our 3x3 convolution (conv2d with a PackedConv2d, ops/conv2d.h) against oneDNN's convolution_forward at the
// Qwen-Image VAE decoder's conv shapes, float32, in one process, interleaved: per shape every method runs
// once per round (ours, then each oneDNN variant), and each figure is the median over the rounds.
//
// oneDNN (forward_inference, bias included, weights in the layout it picks (format_tag::any), reordered once
// from our (out, ky, kx, in) = ohwi layout outside the timing, as PackedConv2d packs ours in advance):
//   - "direct nhwc": algorithm convolution_direct, src and dst channels-last (tag nhwc, our layout);
//   - "direct any":  src and dst in the layout oneDNN picks; the reorders from and to nhwc are timed apart
//                    ("in s" / "out s") and with ("total s");
//   - "direct nChw16c": src and dst forced to oneDNN's classic blocked layout (16 channels innermost),
//                    with the reorders as for "any";
//   - "auto ...", "winograd ...": the same with convolution_auto / convolution_winograd, where oneDNN has an
//     implementation (a method that gets the same implementation and layouts as one above is not timed
//     again).
// The upsample conv (nearest x2, then the 3x3 conv): ours fuses the upsample into the conv's input copy;
// oneDNN first upsamples explicitly (resampling_forward, nearest, nhwc to nhwc), timed as "up s", then
// reorders that map where its conv wants another layout. "ours unfused" runs our conv on the explicitly
// upsampled map (conv time only).
// Before the timing each method's output is checked against ours (rel L2 < 1e-5; winograd is reported,
// not required to pass).
//
//   OMP_NUM_THREADS=2 build/bench/krea2_bench_conv_libraries [--rounds N] [--shapes 0,1,...]
//
// Optional target (bench/CMakeLists.txt): built only where libdnnl-dev (oneDNN) is installed.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#include <random>
#include <string>
#include <vector>

#include "cpu/cpu_features.h"
#include "ops/conv2d.h"
#include "ops/conv2d_onednn.h"

namespace krea2 {
namespace {

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;
using dims = dnnl::memory::dims;

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double rel_l2(const float* a, const float* ref, size_t n) {
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < n; ++i) {
    const double d = double(a[i]) - double(ref[i]);
    num += d * d;
    den += double(ref[i]) * double(ref[i]);
  }
  return den > 0.0 ? std::sqrt(num / den) : std::sqrt(num);
}

double load_average_1min() {
  double l = -1.0;
  if (FILE* f = std::fopen("/proc/loadavg", "r")) {
    if (std::fscanf(f, "%lf", &l) != 1) l = -1.0;
    std::fclose(f);
  }
  return l;
}

const char* dnnl_isa_name(dnnl::cpu_isa isa) {
  switch (static_cast<dnnl_cpu_isa_t>(isa)) {
    case dnnl_cpu_isa_all:
      return "all";
    case dnnl_cpu_isa_sse41:
      return "sse41";
    case dnnl_cpu_isa_avx:
      return "avx";
    case dnnl_cpu_isa_avx2:
      return "avx2";
    case dnnl_cpu_isa_avx512_mic:
      return "avx512_mic";
    case dnnl_cpu_isa_avx512_mic_4ops:
      return "avx512_mic_4ops";
    case dnnl_cpu_isa_avx512_core:
      return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni:
      return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16:
      return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx:
      return "avx512_core_amx";
    case dnnl_cpu_isa_avx2_vnni:
      return "avx2_vnni";
  }
  return "unknown";
}

// A decoder conv: in -> out channels (equal in the decoder), 3x3 padding 1, over a height x width input map;
// with `upsample` the input is first upsampled by nearest x2 (the output is 2 height x 2 width).
struct Shape {
  const char* name;
  int64_t channels, height, width;
  bool upsample;
};

// One method's timing parts per round: up (explicit upsample), in (src reorder from nhwc), conv, out (dst
// reorder to nhwc).
enum Part { kUp = 0, kIn = 1, kConv = 2, kOut = 3, kParts = 4 };
struct Method {
  std::string name, impl;
  std::function<void(double* parts)> run;
  const float* y = nullptr;  // nhwc output for the check
  double err = 0.0;
  bool must_match = true;
  std::vector<double> parts[kParts], total;
};

std::string md_tag(const dnnl::memory::desc& md, const dnnl::memory::desc& nhwc) {
  return md == nhwc ? "nhwc" : "blocked";
}

void bench_shape(const Shape& s, int rounds, dnnl::engine& engine, dnnl::stream& stream) {
  const int64_t C = s.channels, H = s.height, W = s.width;
  const int64_t OH = s.upsample ? 2 * H : H, OW = s.upsample ? 2 * W : W;
  const double gflop = 2.0 * double(OH * OW) * 9.0 * double(C) * double(C) * 1e-9;
  std::printf("\n== %s: %lld -> %lld channels, %lldx%lld -> %lldx%lld%s, %.2f GFLOP\n", s.name, (long long)C,
              (long long)C, (long long)H, (long long)W, (long long)OH, (long long)OW,
              s.upsample ? " (nearest x2 upsample, then conv)" : "", gflop);

  // Inputs: x in [-1, 1], weight ~ U(-1, 1) / sqrt(9 C) (ohwi: k = (ky * 3 + kx) * C + c), bias in [-0.1,
  // 0.1].
  std::mt19937 rng(1234);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(H * W * C)), w(static_cast<size_t>(C * 9 * C)),
      b(static_cast<size_t>(C));
  for (float& v : x) v = u(rng);
  const float ws = 1.0f / std::sqrt(9.0f * float(C));
  for (float& v : w) v = ws * u(rng);
  for (float& v : b) v = 0.1f * u(rng);
  const size_t out_n = size_t(OH * OW * C);

  std::vector<Method> methods;
  methods.reserve(8);

  // Ours.
  const Conv2dWeights cw{C, C, 3, w.data(), b.data()};
  const PackedConv2d packed(cw);
  std::vector<float> y_ours(out_n);
  {
    Method& m = methods.emplace_back();
    m.name = s.upsample ? "ours (fused upsample)" : "ours";
    m.impl = std::string("PackedConv2d ") + isa_name(packed.isa());
    m.y = y_ours.data();
    m.run = [&, H, W](double* parts) {
      const double t0 = now();
      conv2d(x.data(), H, W, packed, y_ours.data(), s.upsample);
      parts[kConv] = now() - t0;
    };
  }

  // oneDNN.
  const dims src_dims{1, C, OH, OW}, dst_dims{1, C, OH, OW}, w_dims{C, C, 3, 3}, b_dims{C};
  const dnnl::memory::desc nhwc_src(src_dims, dt::f32, tag::nhwc), nhwc_dst(dst_dims, dt::f32, tag::nhwc);
  const dnnl::memory::desc any_src(src_dims, dt::f32, tag::any), any_dst(dst_dims, dt::f32, tag::any);
  const dnnl::memory::desc any_w(w_dims, dt::f32, tag::any), b_md(b_dims, dt::f32, tag::x);
  dnnl::memory user_w(dnnl::memory::desc(w_dims, dt::f32, tag::ohwi), engine, w.data());
  dnnl::memory bias(b_md, engine, b.data());
  // The input as the conv reads it in nhwc: x itself, or x upsampled (the resampling's output).
  const dnnl::memory::desc x_md(dims{1, C, H, W}, dt::f32, tag::nhwc);
  dnnl::memory x_mem(x_md, engine, x.data());
  // The upsampled map, filled here (nearest x2) for "ours unfused"; the nhwc oneDNN methods' resampling
  // rewrites it (the same values) on every run.
  std::vector<float> x_up(s.upsample ? out_n : 0);
  for (int64_t i = 0; s.upsample && i < OH; ++i)
    for (int64_t j = 0; j < OW; ++j)
      std::copy_n(x.data() + ((i / 2) * W + j / 2) * C, C, x_up.data() + (i * OW + j) * C);
  dnnl::memory src_nhwc(nhwc_src, engine, s.upsample ? x_up.data() : x.data());
  std::vector<float> y_dnnl(out_n);  // the nhwc output, shared by the oneDNN methods (checked one by one)
  dnnl::memory dst_nhwc(nhwc_dst, engine, y_dnnl.data());

  struct State {
    dnnl::convolution_forward conv;
    dnnl::memory wei, src, dst;
    bool src_reorder = false, dst_reorder = false;
    dnnl::primitive up, in, out;  // resampling x -> src_nhwc; src reorder; dst reorder
  };
  std::vector<std::unique_ptr<State>> states;
  std::vector<std::string> seen;  // impl + layouts of the pds timed, to skip an auto equal to direct

  const dnnl::memory::desc blocked_src(src_dims, dt::f32, tag::nChw16c),
      blocked_dst(dst_dims, dt::f32, tag::nChw16c);
  enum Layout { kNhwc, kAny, kBlocked };
  auto add_dnnl = [&](const char* name, dnnl::algorithm alg, Layout layout, bool must_match) {
    const dnnl::memory::desc& src_md = layout == kNhwc ? nhwc_src : layout == kAny ? any_src : blocked_src;
    const dnnl::memory::desc& dst_md = layout == kNhwc ? nhwc_dst : layout == kAny ? any_dst : blocked_dst;
    dnnl::convolution_forward::primitive_desc pd;
    try {
      const dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference, alg, src_md, any_w, b_md,
                                              dst_md, dims{1, 1}, dims{1, 1}, dims{1, 1});
      pd = dnnl::convolution_forward::primitive_desc(d, engine);
    } catch (const dnnl::error& e) {
      std::printf("%-24s not available (%s)\n", name, e.what());
      return;
    }
    const std::string key = std::string(pd.impl_info_str()) + " src " + md_tag(pd.src_desc(), nhwc_src) +
                            " dst " + md_tag(pd.dst_desc(), nhwc_dst);
    for (const std::string& k : seen)
      if (k == key) {
        std::printf("%-24s same implementation and layouts as a method above (%s): not timed again\n", name,
                    key.c_str());
        return;
      }
    seen.push_back(key);
    auto st = std::make_unique<State>();
    st->conv = dnnl::convolution_forward(pd);
    st->wei = dnnl::memory(pd.weights_desc(), engine);
    try {
      dnnl::reorder(user_w, st->wei).execute(stream, user_w, st->wei);
    } catch (const dnnl::error&) {
      // The winograd weight format is reached only from oihw: go through it.
      dnnl::memory oihw(dnnl::memory::desc(w_dims, dt::f32, tag::oihw), engine);
      dnnl::reorder(user_w, oihw).execute(stream, user_w, oihw);
      dnnl::reorder(oihw, st->wei).execute(stream, oihw, st->wei);
    }
    stream.wait();
    st->src_reorder = !(pd.src_desc() == nhwc_src);
    st->dst_reorder = !(pd.dst_desc() == nhwc_dst);
    st->src = st->src_reorder ? dnnl::memory(pd.src_desc(), engine) : src_nhwc;
    st->dst = st->dst_reorder ? dnnl::memory(pd.dst_desc(), engine) : dst_nhwc;
    if (s.upsample) {
      // Explicit nearest x2 upsample, nhwc to nhwc (oneDNN's resampling into a blocked layout directly is
      // its reference code, far slower than this plus a reorder).
      const dnnl::resampling_forward::desc rd(dnnl::prop_kind::forward_inference,
                                              dnnl::algorithm::resampling_nearest, x_md, nhwc_src);
      st->up = dnnl::resampling_forward(dnnl::resampling_forward::primitive_desc(rd, engine));
    }
    if (st->src_reorder) st->in = dnnl::reorder(src_nhwc, st->src);
    if (st->dst_reorder) st->out = dnnl::reorder(st->dst, dst_nhwc);
    const bool up = s.upsample;

    Method& m = methods.emplace_back();
    m.name = name;
    m.impl = key;
    m.y = y_dnnl.data();
    m.must_match = must_match;
    State* p = st.get();
    m.run = [p, up, &stream, &bias, &x_mem, &src_nhwc, &dst_nhwc](double* parts) {
      const double t0 = now();
      if (up) {
        p->up.execute(stream, {{DNNL_ARG_SRC, x_mem}, {DNNL_ARG_DST, src_nhwc}});
        stream.wait();
      }
      const double t1 = now();
      if (p->src_reorder) {
        p->in.execute(stream, {{DNNL_ARG_FROM, src_nhwc}, {DNNL_ARG_TO, p->src}});
        stream.wait();
      }
      const double t2 = now();
      p->conv.execute(stream, {{DNNL_ARG_SRC, p->src},
                               {DNNL_ARG_WEIGHTS, p->wei},
                               {DNNL_ARG_BIAS, bias},
                               {DNNL_ARG_DST, p->dst}});
      stream.wait();
      const double t3 = now();
      if (p->dst_reorder) {
        p->out.execute(stream, {{DNNL_ARG_FROM, p->dst}, {DNNL_ARG_TO, dst_nhwc}});
        stream.wait();
      }
      parts[kUp] = t1 - t0;
      parts[kIn] = t2 - t1;
      parts[kConv] = t3 - t2;
      parts[kOut] = now() - t3;
    };
    states.push_back(std::move(st));
  };
  add_dnnl("onednn direct nhwc", dnnl::algorithm::convolution_direct, kNhwc, true);
  add_dnnl("onednn direct any", dnnl::algorithm::convolution_direct, kAny, true);
  add_dnnl("onednn direct nChw16c", dnnl::algorithm::convolution_direct, kBlocked, true);
  add_dnnl("onednn auto nhwc", dnnl::algorithm::convolution_auto, kNhwc, true);
  add_dnnl("onednn auto any", dnnl::algorithm::convolution_auto, kAny, true);
  add_dnnl("onednn winograd nhwc", dnnl::algorithm::convolution_winograd, kNhwc, false);
  add_dnnl("onednn winograd any", dnnl::algorithm::convolution_winograd, kAny, false);

  // Ours on the explicitly upsampled map (the upsample itself is not counted here: see the oneDNN methods'
  // "up s").
  std::vector<float> y_unfused(s.upsample ? out_n : 0);
  if (s.upsample) {
    Method& m = methods.emplace_back();
    m.name = "ours unfused (conv only)";
    m.impl = std::string("PackedConv2d ") + isa_name(packed.isa()) + " on the upsampled map";
    m.y = y_unfused.data();
    m.run = [&, OH, OW](double* parts) {
      const double t0 = now();
      conv2d(x_up.data(), OH, OW, packed, y_unfused.data(), false);
      parts[kConv] = now() - t0;
    };
  }

  // Untimed run of each (oneDNN JIT, first touch) and the check against ours.
  double parts[kParts];
  for (Method& m : methods) {
    std::fill_n(parts, int(kParts), 0.0);
    m.run(parts);
    m.err = m.y == y_ours.data() ? 0.0 : rel_l2(m.y, y_ours.data(), out_n);
    std::printf("check %-24s rel L2 vs ours %.2e %s  [%s]\n", m.name.c_str(), m.err,
                m.err < 1e-5 ? "ok" : (m.must_match ? "FAIL" : "(over 1e-5)"), m.impl.c_str());
  }

  // The rounds: every method once per round, in turn (A, B, C, A, B, C, ...).
  for (int r = 0; r < rounds; ++r)
    for (Method& m : methods) {
      std::fill_n(parts, int(kParts), 0.0);
      m.run(parts);
      double t = 0.0;
      for (int i = 0; i < kParts; ++i) {
        m.parts[i].push_back(parts[i]);
        t += parts[i];
      }
      m.total.push_back(t);
    }

  // Medians per column (each over the rounds); "x ours" = the method's time / ours (> 1: ours is faster);
  // "spread" = (slowest - fastest total) / median total over the rounds.
  const double ours_t = median(methods[0].total);
  std::printf("%-24s %8s %8s %8s %8s %8s %9s %9s %11s %10s %7s\n", "method", "up s", "in s", "conv s",
              "out s", "total s", "conv GF/s", "tot GF/s", "conv x ours", "tot x ours", "spread");
  for (const Method& m : methods) {
    const double c = median(m.parts[kConv]), t = median(m.total);
    const auto [lo, hi] = std::minmax_element(m.total.begin(), m.total.end());
    std::printf("%-24s %8.4f %8.4f %8.4f %8.4f %8.4f %9.1f %9.1f %11.2f %10.2f %5.0f %%\n", m.name.c_str(),
                median(m.parts[kUp]), median(m.parts[kIn]), c, median(m.parts[kOut]), t, gflop / c, gflop / t,
                c / ours_t, t / ours_t, 100.0 * (*hi - *lo) / t);
  }
}

}  // namespace
}  // namespace krea2

int main(int argc, char** argv) {
  // "ours" is our own kernel: conv2d(PackedConv2d) would otherwise take oneDNN's path itself.
  krea2::set_conv2d_backend(krea2::ConvBackend::kOwn);
  int rounds = 5;
  std::vector<int> only;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--rounds" && i + 1 < argc) {
      rounds = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--shapes" && i + 1 < argc) {
      const std::string list = argv[++i];
      for (size_t p = 0; p < list.size();) {
        only.push_back(std::atoi(list.c_str() + p));
        const size_t c = list.find(',', p);
        p = c == std::string::npos ? list.size() : c + 1;
      }
    } else {
      std::fprintf(stderr, "usage: %s [--rounds N] [--shapes 0,1,...]\n", argv[0]);
      return 2;
    }
  }
  // The Qwen-Image VAE decoder's 3x3 convs (in = out channels): mid block + up block 0 at 384 x 128^2, up
  // block 1 at 384 x 256^2, up block 2 at 192 x 512^2, up block 3 at 96 x 1024^2 (run here at 512^2 to keep
  // the runs short: the same per-pixel work, a quarter of the pixels), and up block 0's upsample conv.
  const krea2::Shape shapes[] = {
      {"mid/up0 384 @128^2", 384, 128, 128, false},
      {"up1 384 @256^2", 384, 256, 256, false},
      {"up2 192 @512^2", 192, 512, 512, false},
      {"up3 96 @512^2 (real 1024^2)", 96, 512, 512, false},
      {"up0->1 upsample 384 128^2->256^2", 384, 128, 128, true},
  };
  const dnnl_version_t* v = dnnl_version();
  std::printf("oneDNN %d.%d.%d (cpu runtime %s), effective ISA %s; ours: %s; %s\n", v->major, v->minor,
              v->patch, v->cpu_runtime == DNNL_RUNTIME_OMP ? "OpenMP" : "other",
              krea2::dnnl_isa_name(dnnl::get_effective_cpu_isa()), krea2::isa_name(krea2::active_isa()),
              krea2::cpu_brand().c_str());
  const char* omp = std::getenv("OMP_NUM_THREADS");
  std::printf("OMP_NUM_THREADS=%s, %d rounds (interleaved per shape), medians; load average (1 min) %.2f\n",
              omp ? omp : "(unset)", rounds, krea2::load_average_1min());
  dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  for (int i = 0; i < int(sizeof(shapes) / sizeof(shapes[0])); ++i)
    if (only.empty() || std::find(only.begin(), only.end(), i) != only.end())
      krea2::bench_shape(shapes[i], rounds, engine, stream);
  std::printf("\nload average (1 min) at the end %.2f\n", krea2::load_average_1min());
  return 0;
}
