// 3x3 convolutions through oneDNN (libdnnl, Debian's libdnnl-dev), when the build has it: its Winograd
// F(4x4, 3x3) kernel (about 2.2x our direct conv on the VAE's 192 / 384-channel layers, measured with
// bench/bench_conv_libraries.cpp) or its direct kernel. Maps stay channels-last outside: the source and
// result are reordered to and from oneDNN's blocked layout around each call. Which backend conv2d uses is
// chosen by set_conv2d_backend (KREA2_CONV=own|onednn|winograd at start-up; default: winograd where the build
// has oneDNN), per call only for the 3x3 convs oneDNN accepts (others run our own kernels).
#pragma once
#include <cstdint>
#include <memory>
#include <string>

namespace krea2 {

struct Conv2dWeights;

enum class ConvBackend : int {
  kOwn = 0,       // our microkernels (ops/conv2d.cpp)
  kOnednn = 1,    // oneDNN's direct convolution
  kWinograd = 2,  // oneDNN's Winograd convolution (falls back to kOnednn, then kOwn, where refused)
};

const char* conv_backend_name(ConvBackend b);  // "own", "onednn", "winograd"
bool onednn_available();                       // the build links oneDNN
ConvBackend conv2d_backend();
// Throws std::invalid_argument for a oneDNN backend in a build without it.
void set_conv2d_backend(ConvBackend b);

// Calls run so far by oneDNN's direct (kOnednn) or Winograd (kWinograd) kernel (after fallbacks), for tests
// and the bench's report.
int64_t onednn_conv2d_runs(ConvBackend b);

// A conv's oneDNN primitives, made per map size on first use and kept (weights reordered once per size).
class OnednnConv2d;
// Null when the build has no oneDNN or the conv is not 3x3.
std::shared_ptr<OnednnConv2d> make_onednn_conv2d(const Conv2dWeights& w);
// y (H * W, out) (+)= conv(x) + bias as conv2d does; false (nothing written) when oneDNN refuses this
// backend for the shape.
bool onednn_conv2d(OnednnConv2d& conv, ConvBackend backend, const float* x, int64_t height, int64_t width,
                   float* y, bool upsample2x, bool accumulate);

}  // namespace krea2
