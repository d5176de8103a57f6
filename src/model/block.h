// One transformer block (attention + SwiGLU with pre-norms and residuals), shared by the text fusion blocks
// and the main [text, image] blocks; the main blocks add per-sample adaptive modulation and rotary
// embeddings.
#pragma once
#include <cstdint>
#include <vector>

#include "krea2/model.h"
#include "model/weights.h"
#include "ops/attention.h"
#include "ops/linear.h"
#include "ops/rope.h"

namespace krea2 {

struct BlockDims {
  int64_t width = 0;     // D
  int64_t kv_width = 0;  // Dkv
  int64_t ff = 0;        // F
  AttentionShape heads;
  float eps = 1e-5f;
};

// Adds the wall time of its scope to times[stage] when times is set.
class StageTimer {
 public:
  StageTimer(StageTimes* times, const char* stage);
  ~StageTimer();
  StageTimer(const StageTimer&) = delete;
  StageTimer& operator=(const StageTimer&) = delete;

 private:
  StageTimes* times_;
  const char* stage_;
  double start_;
};

// buf grown to at least n floats (never shrunk; contents kept), as a pointer.
inline float* sized(std::vector<float>& buf, int64_t n) {
  if (buf.size() < size_t(n)) buf.resize(size_t(n));
  return buf.data();
}

// Buffers reused across blocks and forward calls (sized on first use, never shrunk).
struct Workspace {
  std::vector<float> h, q, k, v, g, o, a, u;
  // The residual stream of encode_text's layerwise blocks, then of predict's blocks: reused, so a forward
  // does not fault in (and zero) tens of MiB of fresh pages every call.
  std::vector<float> x;
  LinearScratch scratch;
  StageTimes* times = nullptr;
};

// Per-sample modulation for the main blocks: sample s owns rows [row_begin[s], row_begin[s + 1]) and its
// vector temb_mod + (6 * width) floats (prescale, preshift, pregate, postscale, postshift, postgate, each
// `width`).
struct Modulation {
  const float* temb_mod = nullptr;  // (samples, 6 * width)
  std::vector<int64_t> row_begin;   // samples + 1 offsets
};

// x (rows, width) is updated in place. `segments` bound attention; key_valid (optional) masks keys; rope
// (optional) rotates q and k after their norms (table rows = x rows); mod (optional) applies adaptive
// modulation and gates.
void run_block(const BlockWeights& w, const BlockDims& d, float* x, int64_t rows,
               const std::vector<Segment>& segments, const uint8_t* key_valid, const RopeTable* rope,
               const Modulation* mod, Workspace& ws);

}  // namespace krea2
