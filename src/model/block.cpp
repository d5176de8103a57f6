#include "model/block.h"

#include <omp.h>

#include "ops/activations.h"
#include "ops/norm.h"

namespace krea2 {

namespace {

// m = temb_mod[s] + table for every sample: (samples, 6 * width).
std::vector<float> sample_modulation(const Modulation& mod, const std::vector<float>& table, int64_t width) {
  const int64_t samples = int64_t(mod.row_begin.size()) - 1;
  std::vector<float> m(size_t(samples * 6 * width));
  for (int64_t s = 0; s < samples; ++s)
    for (int64_t i = 0; i < 6 * width; ++i)
      m[size_t(s * 6 * width + i)] = mod.temb_mod[s * 6 * width + i] + table[size_t(i)];
  return m;
}

// Pre-norm (+ modulation chunks `scale_chunk`, `scale_chunk + 1`) of x into out.
void norm_in(const float* x, int64_t rows, int64_t width, const std::vector<float>& weight, float eps,
             float* out, const Modulation* mod, const std::vector<float>& m, int scale_chunk) {
  if (!mod) {
    rms_norm(x, rows, width, width, weight.data(), eps, out, width);
    return;
  }
  for (size_t s = 0; s + 1 < mod->row_begin.size(); ++s) {
    const int64_t r0 = mod->row_begin[s], r1 = mod->row_begin[s + 1];
    const float* ms = m.data() + s * 6 * width;
    rms_norm(x + r0 * width, r1 - r0, width, width, weight.data(), eps, out + r0 * width, width,
             ms + scale_chunk * width, ms + (scale_chunk + 1) * width);
  }
}

// x += gate * y, the gate being modulation chunk `gate_chunk` per sample (or 1 without modulation).
void residual(float* x, const float* y, int64_t rows, int64_t width, const Modulation* mod,
              const std::vector<float>& m, int gate_chunk) {
  if (!mod) {
    gated_residual(x, width, y, width, nullptr, rows, width);
    return;
  }
  for (size_t s = 0; s + 1 < mod->row_begin.size(); ++s) {
    const int64_t r0 = mod->row_begin[s], r1 = mod->row_begin[s + 1];
    gated_residual(x + r0 * width, width, y + r0 * width, width, m.data() + (s * 6 + gate_chunk) * width,
                   r1 - r0, width);
  }
}

}  // namespace

StageTimer::StageTimer(StageTimes* times, const char* stage)
    : times_(times), stage_(stage), start_(omp_get_wtime()) {}

StageTimer::~StageTimer() {
  if (times_) times_->add(stage_, omp_get_wtime() - start_);
}

void run_block(const BlockWeights& w, const BlockDims& d, float* x, int64_t rows,
               const std::vector<Segment>& segments, const uint8_t* key_valid, const RopeTable* rope,
               const Modulation* mod, Workspace& ws) {
  if (rows == 0) return;
  const int64_t D = d.width, Dkv = d.kv_width, F = d.ff, hd = d.heads.head_dim;
  std::vector<float> m;
  if (mod) m = sample_modulation(*mod, w.scale_shift_table, D);

  float* h = sized(ws.h, rows * D);
  float* q = sized(ws.q, rows * D);
  float* k = sized(ws.k, rows * Dkv);
  float* v = sized(ws.v, rows * Dkv);
  float* g = sized(ws.g, rows * D);
  float* o = sized(ws.o, rows * D);

  // Attention half: x = x + pregate * to_out(attn(q, k, v) * sigmoid(gate)).
  {
    StageTimer t(ws.times, "norm_mod_rope");
    norm_in(x, rows, D, w.norm1, d.eps, h, mod, m, 0);
  }
  {
    StageTimer t(ws.times, "gemm");
    linear_many(
        h, rows, D,
        {{&w.attn.to_q, q, D}, {&w.attn.to_k, k, Dkv}, {&w.attn.to_v, v, Dkv}, {&w.attn.to_gate, g, D}},
        ws.scratch);
  }
  {
    StageTimer t(ws.times, "norm_mod_rope");
    head_norm_rope(q, rows, D, d.heads.num_heads, hd, w.attn.norm_q.data(), d.eps, rope);
    head_norm_rope(k, rows, Dkv, d.heads.num_kv_heads, hd, w.attn.norm_k.data(), d.eps, rope);
  }
  {
    StageTimer t(ws.times, "attention");
    attention(q, D, k, Dkv, v, Dkv, o, D, d.heads, segments, key_valid);
  }
  {
    StageTimer t(ws.times, "norm_mod_rope");
    sigmoid_gate_inplace(o, D, g, D, rows, D);
  }
  {
    StageTimer t(ws.times, "gemm");
    linear(o, rows, D, w.attn.to_out, nullptr, h, D, ws.scratch);
  }
  {
    StageTimer t(ws.times, "norm_mod_rope");
    residual(x, h, rows, D, mod, m, 2);
    norm_in(x, rows, D, w.norm2, d.eps, h, mod, m, 3);
  }

  // Feed-forward half: x = x + postgate * down(silu(gate(h)) * up(h)).
  float* a = sized(ws.a, rows * F);
  float* u = sized(ws.u, rows * F);
  {
    StageTimer t(ws.times, "gemm");
    linear_many(h, rows, D, {{&w.ff.gate, a, F}, {&w.ff.up, u, F}}, ws.scratch);
  }
  {
    StageTimer t(ws.times, "norm_mod_rope");
    swiglu_inplace(a, F, u, F, rows, F);
  }
  {
    StageTimer t(ws.times, "gemm");
    linear(a, rows, F, w.ff.down, nullptr, h, D, ws.scratch);
  }
  {
    StageTimer t(ws.times, "norm_mod_rope");
    residual(x, h, rows, D, mod, m, 5);
  }
}

}  // namespace krea2
