// Float64 reference forward, one function per formula of SPEC.md. Speed is irrelevant (test sizes are tiny);
// every loop is written the obvious way so that it can be checked against the spec by reading.
#include "support/reference_forward.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <numbers>
#include <string>
#include <vector>

#include "krea2/error.h"
#include "tensor/convert.h"

namespace krea2::test {
namespace {

// ---- Storage
// -------------------------------------------------------------------------------------------------

// Row-major float64 matrix (rows = sequence positions, cols = features).
struct Mat {
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<double> v;

  Mat() = default;
  Mat(int64_t r, int64_t c) : rows(r), cols(c), v(static_cast<size_t>(r * c), 0.0) {}
  double& at(int64_t r, int64_t c) { return v[static_cast<size_t>(r * cols + c)]; }
  double at(int64_t r, int64_t c) const { return v[static_cast<size_t>(r * cols + c)]; }
};

using Vec = std::vector<double>;

// Every parameter of the model, widened to float64 (exact: F32/BF16/F16 all fit in a double).
class Weights {
 public:
  explicit Weights(const Model& model) {
    for (const TensorView& t : model.parameters()) {
      const size_t n = static_cast<size_t>(t.numel());
      Vec values(n);
      if (t.dtype == DType::F64) {
        std::memcpy(values.data(), t.data, n * sizeof(double));
      } else {
        std::vector<float> f(n);
        widen_to_f32(t.dtype, t.data, f.data(), n);
        for (size_t i = 0; i < n; ++i) values[i] = f[i];
      }
      params_[t.name] = Param{t.shape, std::move(values)};
    }
  }

  // A Linear weight (out, in): `rows` x `cols`.
  Mat matrix(const std::string& name, int64_t rows, int64_t cols) const {
    const Param& p = get(name, {rows, cols});
    Mat m(rows, cols);
    m.v = p.values;
    return m;
  }

  // A vector parameter; `shape` is checked exactly (e.g. (6, H) tables are returned flattened).
  Vec vector(const std::string& name, const Shape& shape) const { return get(name, shape).values; }

 private:
  struct Param {
    Shape shape;
    Vec values;
  };

  const Param& get(const std::string& name, const Shape& shape) const {
    auto it = params_.find(name);
    if (it == params_.end()) throw Error("reference_forward: missing parameter " + name);
    if (it->second.shape != shape)
      throw Error("reference_forward: parameter " + name + " has shape " + shape_str(it->second.shape) +
                  ", expected " + shape_str(shape));
    return it->second;
  }

  std::map<std::string, Param> params_;
};

// ---- Building blocks (SPEC.md "Building blocks")
// ---------------------------------------------------------------------

// Linear(a->b): y = x W^T (+ bias), W stored (b, a).
Mat linear(const Mat& x, const Mat& w, const Vec* bias = nullptr) {
  if (x.cols != w.cols) throw Error("reference_forward: linear input width mismatch");
  Mat y(x.rows, w.rows);
  for (int64_t s = 0; s < x.rows; ++s) {
    for (int64_t o = 0; o < w.rows; ++o) {
      double acc = bias ? (*bias)[static_cast<size_t>(o)] : 0.0;
      for (int64_t i = 0; i < x.cols; ++i) acc += x.at(s, i) * w.at(o, i);
      y.at(s, o) = acc;
    }
  }
  return y;
}

// RMSNorm(x; w) = x / sqrt(mean(x^2) + eps) * (1 + w) over `n` values (zero-centred weight).
void rms_norm_span(const double* x, double* y, int64_t n, const Vec& w, double eps) {
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += x[i] * x[i];
  const double inv = 1.0 / std::sqrt(ss / static_cast<double>(n) + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * inv * (1.0 + w[static_cast<size_t>(i)]);
}

// RMSNorm over the full last axis of every row.
Mat rms_norm(const Mat& x, const Vec& w, double eps) {
  Mat y(x.rows, x.cols);
  for (int64_t s = 0; s < x.rows; ++s)
    rms_norm_span(&x.v[size_t(s * x.cols)], &y.v[size_t(s * x.cols)], x.cols, w, eps);
  return y;
}

// RMSNorm applied to each head (chunk of `hd` features) of every row, in place.
void rms_norm_heads(Mat& x, int64_t hd, const Vec& w, double eps) {
  for (int64_t s = 0; s < x.rows; ++s)
    for (int64_t c = 0; c < x.cols; c += hd) {
      double* p = &x.v[size_t(s * x.cols + c)];
      rms_norm_span(p, p, hd, w, eps);
    }
}

double gelu_tanh(double x) {
  const double k = std::sqrt(2.0 / std::numbers::pi);
  return 0.5 * x * (1.0 + std::tanh(k * (x + 0.044715 * x * x * x)));
}
double sigmoid(double x) {
  return 1.0 / (1.0 + std::exp(-x));
}
double silu(double x) {
  return x * sigmoid(x);
}

Mat map(Mat x, double (*f)(double)) {
  for (double& e : x.v) e = f(e);
  return x;
}

// Rotary tables for every row: cos/sin of the hd/2 angles, rounded to float32 (as upstream).
struct Rope {
  Mat cos;  // (S, hd/2)
  Mat sin;
};

// For axis j and i < aj/2: f = theta^(-2i/aj) (float64), angle = p[:, j] * f (float64). Axes concatenated.
Rope make_rope(const Tensor& position_ids, const std::vector<int>& axes, double theta) {
  int64_t half = 0;
  for (int a : axes) half += a / 2;
  const int64_t rows = position_ids.dim(0);
  Rope r{Mat(rows, half), Mat(rows, half)};
  for (int64_t s = 0; s < rows; ++s) {
    int64_t k = 0;
    for (size_t j = 0; j < axes.size(); ++j) {
      const double p = position_ids.data[size_t(s * 3 + int64_t(j))];
      for (int i = 0; i < axes[j] / 2; ++i, ++k) {
        const double f = std::pow(theta, -2.0 * i / axes[j]);
        const double angle = p * f;
        r.cos.at(s, k) = static_cast<float>(std::cos(angle));
        r.sin.at(s, k) = static_cast<float>(std::sin(angle));
      }
    }
  }
  return r;
}

// Rotates each head of row s: pair (2k, 2k+1) by angle k.
void apply_rope(Mat& x, int64_t hd, const Rope& rope) {
  for (int64_t s = 0; s < x.rows; ++s)
    for (int64_t c = 0; c < x.cols; c += hd)
      for (int64_t k = 0; k < hd / 2; ++k) {
        const double cs = rope.cos.at(s, k), sn = rope.sin.at(s, k);
        const double a = x.at(s, c + 2 * k), b = x.at(s, c + 2 * k + 1);
        x.at(s, c + 2 * k) = a * cs - b * sn;
        x.at(s, c + 2 * k + 1) = b * cs + a * sn;
      }
}

struct AttentionWeights {
  Mat to_q, to_k, to_v, to_gate, to_out;
  Vec norm_q, norm_k;
};

// Attention block weights under `prefix` ("...attn."), for width D, nh heads and nkv KV heads.
AttentionWeights load_attention(const Weights& w, const std::string& prefix, int64_t D, int64_t nh,
                                int64_t nkv) {
  const int64_t hd = D / nh;
  AttentionWeights a;
  a.to_q = w.matrix(prefix + "to_q.weight", D, D);
  a.to_k = w.matrix(prefix + "to_k.weight", hd * nkv, D);
  a.to_v = w.matrix(prefix + "to_v.weight", hd * nkv, D);
  a.to_gate = w.matrix(prefix + "to_gate.weight", D, D);
  a.to_out = w.matrix(prefix + "to_out.0.weight", D, D);
  a.norm_q = w.vector(prefix + "norm_q.weight", {hd});
  a.norm_k = w.vector(prefix + "norm_k.weight", {hd});
  return a;
}

// Attention(x; mask, rope) over one sequence x (S, D). `key_valid` (size S) marks the keys that may be
// attended to (nullptr: all). A query with no valid key at all gets o = 0 (see the header: upstream would
// give NaN).
Mat attention(const Mat& x, const AttentionWeights& w, int64_t nh, int64_t nkv, double eps,
              const std::vector<bool>* key_valid, const Rope* rope) {
  const int64_t S = x.rows, D = x.cols, hd = D / nh;
  Mat q = linear(x, w.to_q), k = linear(x, w.to_k), v = linear(x, w.to_v), g = linear(x, w.to_gate);
  rms_norm_heads(q, hd, w.norm_q, eps);
  rms_norm_heads(k, hd, w.norm_k, eps);
  if (rope) {
    apply_rope(q, hd, *rope);
    apply_rope(k, hd, *rope);
  }
  const int64_t group = nh / nkv;  // repeat_interleave: query head h reads KV head h / group
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  Mat o(S, D);
  std::vector<double> score(static_cast<size_t>(S));
  for (int64_t h = 0; h < nh; ++h) {
    const int64_t kvh = h / group;
    for (int64_t i = 0; i < S; ++i) {
      double mx = -INFINITY;
      for (int64_t j = 0; j < S; ++j) {
        if (key_valid && !(*key_valid)[size_t(j)]) {
          score[size_t(j)] = -INFINITY;
          continue;
        }
        double dot = 0;
        for (int64_t c = 0; c < hd; ++c) dot += q.at(i, h * hd + c) * k.at(j, kvh * hd + c);
        score[size_t(j)] = dot * scale;
        mx = std::max(mx, score[size_t(j)]);
      }
      if (mx == -INFINITY) continue;  // every key masked: o_h stays 0
      double denom = 0;
      for (int64_t j = 0; j < S; ++j) {
        score[size_t(j)] = score[size_t(j)] == -INFINITY ? 0.0 : std::exp(score[size_t(j)] - mx);
        denom += score[size_t(j)];
      }
      for (int64_t j = 0; j < S; ++j) {
        const double p = score[size_t(j)] / denom;
        if (p == 0) continue;
        for (int64_t c = 0; c < hd; ++c) o.at(i, h * hd + c) += p * v.at(j, kvh * hd + c);
      }
    }
  }
  for (int64_t i = 0; i < S; ++i)
    for (int64_t c = 0; c < D; ++c) o.at(i, c) *= sigmoid(g.at(i, c));
  return linear(o, w.to_out);
}

struct FeedForwardWeights {
  Mat gate, up, down;
};

FeedForwardWeights load_ff(const Weights& w, const std::string& prefix, int64_t D, int64_t F) {
  return {w.matrix(prefix + "gate.weight", F, D), w.matrix(prefix + "up.weight", F, D),
          w.matrix(prefix + "down.weight", D, F)};
}

// SwiGLU(x) = down(silu(gate(x)) * up(x)).
Mat swiglu(const Mat& x, const FeedForwardWeights& w) {
  Mat a = map(linear(x, w.gate), silu);
  const Mat u = linear(x, w.up);
  for (size_t i = 0; i < a.v.size(); ++i) a.v[i] *= u.v[i];
  return linear(a, w.down);
}

void add_in_place(Mat& x, const Mat& y) {
  for (size_t i = 0; i < x.v.size(); ++i) x.v[i] += y.v[i];
}

// ---- Text fusion blocks (layerwise and refiner share the structure)
// --------------------------------------------------

struct TextBlock {
  Vec norm1, norm2;
  AttentionWeights attn;
  FeedForwardWeights ff;
};

TextBlock load_text_block(const Weights& w, const std::string& prefix, const Config& c) {
  const int64_t Dt = c.text_hidden_dim;
  return {w.vector(prefix + "norm1.weight", {Dt}), w.vector(prefix + "norm2.weight", {Dt}),
          load_attention(w, prefix + "attn.", Dt, c.text_num_attention_heads, c.text_num_key_value_heads),
          load_ff(w, prefix + "ff.", Dt, c.text_intermediate_size)};
}

// x = x + Attention(RMSNorm(x; norm1)); x = x + SwiGLU(RMSNorm(x; norm2)). No rope.
void text_block(Mat& x, const TextBlock& b, const Config& c, const std::vector<bool>* key_valid) {
  const double eps = c.norm_eps;
  add_in_place(x, attention(rms_norm(x, b.norm1, eps), b.attn, c.text_num_attention_heads,
                            c.text_num_key_value_heads, eps, key_valid, nullptr));
  add_in_place(x, swiglu(rms_norm(x, b.norm2, eps), b.ff));
}

// ---- Main transformer block
// ------------------------------------------------------------------------------------------

struct MainBlock {
  Vec table;  // scale_shift_table (6, H), flattened
  Vec norm1, norm2;
  AttentionWeights attn;
  FeedForwardWeights ff;
};

// m = temb_mod.view(6, H) + table: rows (prescale, preshift, pregate, postscale, postshift, postgate).
void main_block(Mat& x, const MainBlock& b, const Vec& temb_mod, const Config& c,
                const std::vector<bool>* key_valid, const Rope& rope) {
  const int64_t H = x.cols;
  const double eps = c.norm_eps;
  auto m = [&](int row, int64_t i) { return temb_mod[size_t(row * H + i)] + b.table[size_t(row * H + i)]; };

  Mat h = rms_norm(x, b.norm1, eps);
  for (int64_t s = 0; s < x.rows; ++s)
    for (int64_t i = 0; i < H; ++i) h.at(s, i) = (1.0 + m(0, i)) * h.at(s, i) + m(1, i);
  const Mat a = attention(h, b.attn, c.num_attention_heads, c.num_key_value_heads, eps, key_valid, &rope);
  for (int64_t s = 0; s < x.rows; ++s)
    for (int64_t i = 0; i < H; ++i) x.at(s, i) += m(2, i) * a.at(s, i);

  h = rms_norm(x, b.norm2, eps);
  for (int64_t s = 0; s < x.rows; ++s)
    for (int64_t i = 0; i < H; ++i) h.at(s, i) = (1.0 + m(3, i)) * h.at(s, i) + m(4, i);
  const Mat f = swiglu(h, b.ff);
  for (int64_t s = 0; s < x.rows; ++s)
    for (int64_t i = 0; i < H; ++i) x.at(s, i) += m(5, i) * f.at(s, i);
}

// ---- Timestep embedding
// ----------------------------------------------------------------------------------------------

// e = [cos(a_0..a_{half-1}), sin(a_0..)] with a_i = (1000 t) f_i, f_i = exp(-ln(10000) i / half). Upstream
// does these three in float32 and the angles reach ~1000 rad, so each is rounded to float32 here too
// (SPEC.md). f_i follows upstream's float32 steps (exponent = float(-ln 1e4) * i / half, rounded at each
// operation, then exp): rounding only the exact float64 f_i instead differs from upstream by an ulp for some
// i, which moved the fixture samples from ~3e-7 to ~2e-6 relative (measured). Timestep widths are even
// (Config::validate), so e fills the width.
Vec timestep_embedding(float t, int64_t dim) {
  const int64_t half = dim / 2;
  Vec e(static_cast<size_t>(dim), 0.0);
  const float t1000 = static_cast<float>(1000.0 * static_cast<double>(t));
  for (int64_t i = 0; i < half; ++i) {
    const float exponent =
        static_cast<float>(-std::log(10000.0)) * static_cast<float>(i) / static_cast<float>(half);
    const float f = static_cast<float>(std::exp(static_cast<double>(exponent)));
    const float angle = static_cast<float>(static_cast<double>(t1000) * static_cast<double>(f));
    e[size_t(i)] = std::cos(static_cast<double>(angle));
    e[size_t(half + i)] = std::sin(static_cast<double>(angle));
  }
  return e;
}

Mat row_matrix(const Vec& v) {
  Mat m(1, static_cast<int64_t>(v.size()));
  m.v = v;
  return m;
}

// Writes `m` into rows of a float32 trace tensor slot for sample b.
void put_trace(std::map<std::string, Tensor>* trace, const std::string& name, const Shape& shape, int64_t b,
               const Mat& m) {
  if (!trace) return;
  auto it = trace->find(name);
  if (it == trace->end()) it = trace->emplace(name, Tensor(shape)).first;
  const size_t off = static_cast<size_t>(b * m.rows * m.cols);
  for (size_t i = 0; i < m.v.size(); ++i) it->second.data[off + i] = static_cast<float>(m.v[i]);
}

void check_shape(const Tensor& t, const Shape& expected, const char* what) {
  if (t.shape != expected)
    throw Error(std::string("reference_forward: ") + what + " has shape " + shape_str(t.shape) +
                ", expected " + shape_str(expected));
}

}  // namespace

Tensor reference_forward(const Model& model, const ForwardInputs& in, std::map<std::string, Tensor>* trace) {
  const Config& c = model.config();
  const Weights w(model);
  const int64_t H = c.hidden(), C = c.in_channels, Dt = c.text_hidden_dim, nl = c.num_text_layers;
  const int64_t d = c.attention_head_dim;

  // Shapes.
  if (in.hidden_states.shape.size() != 3) throw Error("reference_forward: hidden_states must be (B, N, C)");
  const int64_t B = in.hidden_states.dim(0), N = in.hidden_states.dim(1);
  check_shape(in.hidden_states, {B, N, C}, "hidden_states");
  if (in.encoder_hidden_states.shape.size() != 4)
    throw Error("reference_forward: encoder_hidden_states must be (B, L, nl, Dt)");
  const int64_t L = in.encoder_hidden_states.dim(1);
  check_shape(in.encoder_hidden_states, {B, L, nl, Dt}, "encoder_hidden_states");
  check_shape(in.timestep, {B}, "timestep");
  check_shape(in.position_ids, {L + N, 3}, "position_ids");
  if (in.encoder_attention_mask) check_shape(*in.encoder_attention_mask, {B, L}, "encoder_attention_mask");
  if (trace) trace->clear();

  // Weights.
  const Mat time_l1 = w.matrix("time_embed.linear_1.weight", H, c.timestep_embed_dim);
  const Vec time_b1 = w.vector("time_embed.linear_1.bias", {H});
  const Mat time_l2 = w.matrix("time_embed.linear_2.weight", H, H);
  const Vec time_b2 = w.vector("time_embed.linear_2.bias", {H});
  const Mat mod_w = w.matrix("time_mod_proj.weight", 6 * H, H);
  const Vec mod_b = w.vector("time_mod_proj.bias", {6 * H});
  std::vector<TextBlock> layerwise, refiner;
  for (int i = 0; i < c.num_layerwise_text_blocks; ++i)
    layerwise.push_back(load_text_block(w, "text_fusion.layerwise_blocks." + std::to_string(i) + ".", c));
  for (int i = 0; i < c.num_refiner_text_blocks; ++i)
    refiner.push_back(load_text_block(w, "text_fusion.refiner_blocks." + std::to_string(i) + ".", c));
  const Vec projector = w.vector("text_fusion.projector.weight", {1, nl});
  const Vec txt_norm = w.vector("txt_in.norm.weight", {Dt});
  const Mat txt_l1 = w.matrix("txt_in.linear_1.weight", H, Dt);
  const Vec txt_b1 = w.vector("txt_in.linear_1.bias", {H});
  const Mat txt_l2 = w.matrix("txt_in.linear_2.weight", H, H);
  const Vec txt_b2 = w.vector("txt_in.linear_2.bias", {H});
  const Mat img_w = w.matrix("img_in.weight", H, C);
  const Vec img_b = w.vector("img_in.bias", {H});
  std::vector<MainBlock> blocks;
  for (int i = 0; i < c.num_layers; ++i) {
    const std::string p = "transformer_blocks." + std::to_string(i) + ".";
    blocks.push_back({w.vector(p + "scale_shift_table", {6, H}), w.vector(p + "norm1.weight", {H}),
                      w.vector(p + "norm2.weight", {H}),
                      load_attention(w, p + "attn.", H, c.num_attention_heads, c.num_key_value_heads),
                      load_ff(w, p + "ff.", H, c.intermediate_size)});
  }
  const Vec final_table = w.vector("final_layer.scale_shift_table", {2, H});
  const Vec final_norm = w.vector("final_layer.norm.weight", {H});
  const Mat final_w = w.matrix("final_layer.linear.weight", C, H);
  const Vec final_b = w.vector("final_layer.linear.bias", {C});

  // Rotary tables over all L + N rows (shared by the batch).
  const Rope rope = make_rope(in.position_ids, c.axes_dims_rope, c.rope_theta);
  if (trace) {
    // Fixture layout: (S, d), each angle repeated for its channel pair.
    Tensor cs({L + N, d}), sn({L + N, d});
    for (int64_t s = 0; s < L + N; ++s)
      for (int64_t k = 0; k < d / 2; ++k)
        for (int64_t r = 0; r < 2; ++r) {
          cs.data[size_t(s * d + 2 * k + r)] = static_cast<float>(rope.cos.at(s, k));
          sn.data[size_t(s * d + 2 * k + r)] = static_cast<float>(rope.sin.at(s, k));
        }
    (*trace)["rotary_emb.cos"] = cs;
    (*trace)["rotary_emb.sin"] = sn;
  }

  Tensor out({B, N, C});
  for (int64_t b = 0; b < B; ++b) {
    // 1. temb and temb_mod.
    const Mat e = row_matrix(timestep_embedding(in.timestep.data[size_t(b)], c.timestep_embed_dim));
    const Mat temb = linear(map(linear(e, time_l1, &time_b1), gelu_tanh), time_l2, &time_b2);
    const Mat temb_mod = linear(map(temb, gelu_tanh), mod_w, &mod_b);
    put_trace(trace, "time_embed", {B, 1, H}, b, temb);
    put_trace(trace, "time_mod_proj", {B, 1, 6 * H}, b, temb_mod);

    // Text key validity of this sample (nullptr when no mask was given: no masking at all).
    std::vector<bool> text_valid(static_cast<size_t>(L), true);
    if (in.encoder_attention_mask)
      for (int64_t l = 0; l < L; ++l)
        text_valid[size_t(l)] = in.encoder_attention_mask->data[size_t(b * L + l)] != 0;
    const std::vector<bool>* text_mask = in.encoder_attention_mask ? &text_valid : nullptr;

    // 2. Text fusion: each token's nl tapped layers form a sequence for the layerwise blocks (no mask, no
    // rope), then the projector mixes the layers into one row per token.
    Mat y(L, Dt);
    for (int64_t l = 0; l < L; ++l) {
      Mat t(nl, Dt);
      const float* src = &in.encoder_hidden_states.data[size_t((b * L + l) * nl * Dt)];
      for (int64_t i = 0; i < nl * Dt; ++i) t.v[size_t(i)] = src[i];
      for (const TextBlock& blk : layerwise) text_block(t, blk, c, nullptr);
      for (int64_t n = 0; n < nl; ++n)
        for (int64_t i = 0; i < Dt; ++i) y.at(l, i) += projector[size_t(n)] * t.at(n, i);
    }
    // Refiner blocks: over the L tokens of the sample, padded tokens invalid as keys.
    for (const TextBlock& blk : refiner) text_block(y, blk, c, text_mask);
    put_trace(trace, "text_fusion", {B, L, Dt}, b, y);

    // 3. txt_in and img_in, concatenated text first.
    const Mat txt =
        linear(map(linear(rms_norm(y, txt_norm, c.norm_eps), txt_l1, &txt_b1), gelu_tanh), txt_l2, &txt_b2);
    Mat hs(N, C);
    for (int64_t i = 0; i < N * C; ++i) hs.v[size_t(i)] = in.hidden_states.data[size_t(b * N * C + i)];
    const Mat img = linear(hs, img_w, &img_b);
    put_trace(trace, "txt_in", {B, L, H}, b, txt);
    put_trace(trace, "img_in", {B, N, H}, b, img);
    Mat x(L + N, H);
    std::copy(txt.v.begin(), txt.v.end(), x.v.begin());
    std::copy(img.v.begin(), img.v.end(), x.v.begin() + static_cast<std::ptrdiff_t>(txt.v.size()));

    // 4. Main blocks: mask' = text mask followed by N valid image keys.
    std::vector<bool> key_valid = text_valid;
    key_valid.resize(static_cast<size_t>(L + N), true);
    const std::vector<bool>* main_mask = in.encoder_attention_mask ? &key_valid : nullptr;
    for (size_t i = 0; i < blocks.size(); ++i) {
      main_block(x, blocks[i], temb_mod.v, c, main_mask, rope);
      put_trace(trace, "transformer_blocks." + std::to_string(i), {B, L + N, H}, b, x);
    }

    // 5. Final layer on the image rows, modulated by temb (not temb_mod).
    Mat xi(N, H);
    std::copy(x.v.begin() + static_cast<std::ptrdiff_t>(L * H), x.v.end(), xi.v.begin());
    Mat h = rms_norm(xi, final_norm, c.norm_eps);
    for (int64_t s = 0; s < N; ++s)
      for (int64_t i = 0; i < H; ++i) {
        const double scale = temb.v[size_t(i)] + final_table[size_t(i)];
        const double shift = temb.v[size_t(i)] + final_table[size_t(H + i)];
        h.at(s, i) = (1.0 + scale) * h.at(s, i) + shift;
      }
    const Mat o = linear(h, final_w, &final_b);
    put_trace(trace, "final_layer", {B, N, C}, b, o);
    for (int64_t i = 0; i < N * C; ++i) out.data[size_t(b * N * C + i)] = static_cast<float>(o.v[size_t(i)]);
  }
  return out;
}

}  // namespace krea2::test
