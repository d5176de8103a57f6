// CPU ops against their scalar references: linear (all dtypes and paths), RMSNorm, rotary embedding, head
// norm + rope, activations and the fused element-wise steps, dtype conversions and bulk widening.
//
// Tolerances. u = 2^-24 is the float32 unit roundoff. A float32 sum of K terms computed in any order
// (sequential, blocked, SIMD lanes, FMA) is off from the exact sum by at most ~(K - 1) u sum|terms| (Higham,
// gamma_{K-1}); with random-sign terms the typical error is ~sqrt(K) u rms(term). The references accumulate
// in double and round once, so each per-element bound below is that worst case plus a few u for the
// surrounding roundings. Every bound is far below what a real bug (a dropped term, a wrong stride, a missing
// `1 +`, a misplaced eps, a wrong angle) moves an output by: such a bug moves it by the size of one term or
// more.
#include <gtest/gtest.h>
#include <immintrin.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "krea2/config.h"
#include "krea2/error.h"
#include "ops/activations.h"
#include "ops/linear.h"
#include "ops/norm.h"
#include "ops/rope.h"
#include "ops/row_kernels.h"
#include "support/scoped_isa.h"
#include "support/test_util.h"
#include "tensor/convert.h"

namespace krea2 {
namespace {

constexpr double kU = 1.0 / 16777216.0;  // 2^-24
const float kNaN = std::numeric_limits<float>::quiet_NaN();

uint32_t bits_of(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}
float from_bits(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

// Hardware (F16C) conversions: an independent reference for the software half-float conversions.
float hw_f16_to_f32(uint16_t h) {
  return _cvtsh_ss(h);
}
uint16_t hw_f32_to_f16(float f) {
  return _cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT);
}
bool f16_is_nan(uint16_t h) {
  return (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu) != 0;
}

// ---- linear
// ---------------------------------------------------------------------------------------------------

// A weight stored as `dtype` at byte offset `offset` of its buffer (offset != 0 makes the data misaligned),
// with its values decoded independently of the library (bit shift for BF16, F16C for F16).
struct TestWeight {
  std::vector<unsigned char> buffer;
  std::vector<float> values;  // decoded, (rows, cols)
  WeightMatrix matrix;
};

TestWeight make_weight(DType dtype, int64_t rows, int64_t cols, size_t offset, uint64_t seed) {
  TestWeight w;
  const size_t n = size_t(rows * cols);
  std::vector<float> raw = test::random_floats(n, seed, 0.5f);
  w.buffer.assign(n * dtype_size(dtype) + offset + 8, 0);
  unsigned char* p = w.buffer.data() + offset;
  w.values.resize(n);
  for (size_t i = 0; i < n; ++i) {
    if (dtype == DType::F32) {
      std::memcpy(p + 4 * i, &raw[i], 4);
      w.values[i] = raw[i];
    } else if (dtype == DType::BF16) {
      uint16_t h = f32_to_bf16(raw[i]);
      std::memcpy(p + 2 * i, &h, 2);
      w.values[i] = from_bits(uint32_t(h) << 16);
    } else {
      uint16_t h = f32_to_f16(raw[i]);
      std::memcpy(p + 2 * i, &h, 2);
      w.values[i] = hw_f16_to_f32(h);
    }
  }
  w.matrix = {dtype, rows, cols, p};
  return w;
}

struct WeightKind {
  DType dtype;
  size_t offset;
  const char* name;
};
// Every kind takes the packed GEMM by default. Under a PanelGuard (OpenBLAS), aligned F32 goes to sgemm
// directly and misaligned F32, BF16 and F16 are widened a panel at a time first.
const WeightKind kWeightKinds[] = {
    {DType::F32, 0, "F32"},
    {DType::F32, 2, "F32 misaligned"},
    {DType::BF16, 0, "BF16"},
    {DType::F16, 1, "F16 odd address"},
};

constexpr float kYPad = 12345.0f;  // sentinel in the y padding: must survive

// Runs linear() (plain and accumulate=true) and linear_reference() on one case and checks every element
// against the worst-case bound
//   |y - ref| <= (K + 3) u (sum_i |x_i w_i| + |bias| + |y_before|)
// (K products + bias + the accumulated value: K + 2 terms summed in float32, plus the reference's own final
// rounding). Typical error is ~u * |y| independent of K, so the aggregate relative L2 must also stay under
// 1e-6 (~16 u).
void check_linear(const WeightKind& kind, int64_t M, int64_t K, int64_t N, bool with_bias, uint64_t seed) {
  SCOPED_TRACE(std::string(kind.name) + " M=" + std::to_string(M) + " K=" + std::to_string(K) +
               " N=" + std::to_string(N) + (with_bias ? " bias" : "") +
               " panel=" + std::to_string(linear_panel_elements()));
  const int64_t ldx = K + 3, ldy = N + 5;
  TestWeight w = make_weight(kind.dtype, N, K, kind.offset, seed);
  // The x padding is NaN: reading past K in a row would poison the result.
  std::vector<float> x(size_t(M * ldx), kNaN);
  std::vector<float> xv = test::random_floats(size_t(M * K), seed + 1);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t i = 0; i < K; ++i) x[size_t(m * ldx + i)] = xv[size_t(m * K + i)];
  std::vector<float> bias = test::random_floats(size_t(N), seed + 2);
  const float* b = with_bias ? bias.data() : nullptr;

  std::vector<float> ref(size_t(M * ldy), kYPad);
  linear_reference(x.data(), M, ldx, w.matrix, b, ref.data(), ldy);
  std::vector<double> abs_terms(size_t(M * N));
  for (int64_t m = 0; m < M; ++m)
    for (int64_t o = 0; o < N; ++o) {
      double a = with_bias ? std::fabs(double(bias[size_t(o)])) : 0.0;
      for (int64_t i = 0; i < K; ++i)
        a += std::fabs(double(xv[size_t(m * K + i)]) * double(w.values[size_t(o * K + i)]));
      abs_terms[size_t(m * N + o)] = a;
    }

  const std::vector<float> y0 = test::random_floats(size_t(M * N), seed + 3);
  for (bool accumulate : {false, true}) {
    SCOPED_TRACE(accumulate ? "accumulate" : "overwrite");
    std::vector<float> y(size_t(M * ldy), kYPad);
    if (accumulate)
      for (int64_t m = 0; m < M; ++m)
        for (int64_t o = 0; o < N; ++o) y[size_t(m * ldy + o)] = y0[size_t(m * N + o)];
    LinearScratch scratch;
    linear(x.data(), M, ldx, w.matrix, b, y.data(), ldy, scratch, accumulate);

    std::vector<float> got_dense, ref_dense;
    int bad = 0;
    for (int64_t m = 0; m < M; ++m) {
      for (int64_t o = 0; o < N; ++o) {
        double expect = ref[size_t(m * ldy + o)];
        double terms = abs_terms[size_t(m * N + o)];
        if (accumulate) {
          expect += double(y0[size_t(m * N + o)]);
          terms += std::fabs(double(y0[size_t(m * N + o)]));
        }
        const double tol = double(K + 3) * kU * terms + 1e-30;
        const float got = y[size_t(m * ldy + o)];
        if (!(std::fabs(double(got) - expect) <= tol) && bad++ < 5)
          ADD_FAILURE() << "y[" << m << ", " << o << "] = " << got << ", reference " << expect << ", bound "
                        << tol;
        got_dense.push_back(got);
        ref_dense.push_back(float(expect));
      }
      for (int64_t o = N; o < ldy; ++o)
        if (y[size_t(m * ldy + o)] != kYPad && bad++ < 5)
          ADD_FAILURE() << "padding of y row " << m << " written";
    }
    EXPECT_EQ(bad, 0);
    EXPECT_LE(test::rel_l2(got_dense.data(), ref_dense.data(), got_dense.size()), 1e-6);
  }
}

// Selects OpenBLAS (F32 direct, BF16/F16 widened a panel at a time) with a given panel size; restores both
// however the test exits.
class PanelGuard {
 public:
  explicit PanelGuard(int64_t elements) : saved_(linear_panel_elements()), saved_backend_(linear_backend()) {
    set_linear_panel_elements(elements);
    set_linear_backend(LinearBackend::kOpenBlas);
  }
  ~PanelGuard() {
    set_linear_panel_elements(saved_);
    set_linear_backend(saved_backend_);
  }

 private:
  int64_t saved_;
  LinearBackend saved_backend_;
};

TEST(Linear, WeightAtDecodesEveryDtype) {
  for (const auto& kind : kWeightKinds) {
    SCOPED_TRACE(kind.name);
    TestWeight w = make_weight(kind.dtype, 5, 9, kind.offset, 7);
    for (int64_t o = 0; o < 5; ++o)
      for (int64_t i = 0; i < 9; ++i) EXPECT_EQ(weight_at(w.matrix, o, i), w.values[size_t(o * 9 + i)]);
  }
}

// M = 1, 3, 4 take the direct path (M <= 4); M = 5, 64, 300 go through sgemm.
TEST(Linear, MatchesReferenceAllDtypesShapesAndFlags) {
  uint64_t seed = 100;
  for (const auto& kind : kWeightKinds)
    for (int64_t M : {1, 3, 4, 5, 64, 300})
      for (int64_t K : {1, 7, 64, 513})
        for (bool bias : {false, true}) check_linear(kind, M, K, 37, bias, seed++);
}

TEST(Linear, SmallPanelsGiveTheSameResult) {
  const int64_t before = linear_panel_elements();
  {
    // 100 elements: 14 rows per panel at K = 7 (3 panels, the last partial), one row per panel at K = 64 and
    // 513 (37 panels).
    PanelGuard guard(100);
    ASSERT_EQ(linear_panel_elements(), 100);
    uint64_t seed = 5000;
    for (const auto& kind : kWeightKinds)
      for (int64_t M : {5, 300})  // the panel loop only serves M > 4
        for (int64_t K : {7, 64, 513}) check_linear(kind, M, K, 37, K != 64, seed++);
  }
  EXPECT_EQ(linear_panel_elements(), before);
}

TEST(Linear, PanelBoundariesInsideARow) {
  // Panel sizes that do not divide the row count, and a panel of exactly one row.
  for (int64_t panel : {int64_t(1), int64_t(64), int64_t(64 * 10), int64_t(64 * 36), int64_t(64 * 37 + 1)}) {
    PanelGuard guard(panel);
    for (const auto& kind : kWeightKinds) check_linear(kind, 9, 64, 37, true, uint64_t(panel));
  }
}

TEST(Linear, ZeroInnerDimensionGivesBias) {
  std::vector<float> bias = {1.5f, -2.0f, 0.25f};
  float dummy = 0;
  WeightMatrix w{DType::F32, 3, 0, &dummy};
  for (int64_t M : {1, 8}) {
    std::vector<float> y(size_t(M * 3), 7.0f);
    LinearScratch scratch;
    linear(nullptr, M, 0, w, bias.data(), y.data(), 3, scratch, false);
    for (int64_t m = 0; m < M; ++m)
      for (int o = 0; o < 3; ++o) EXPECT_EQ(y[size_t(m * 3 + o)], bias[size_t(o)]);
    linear(nullptr, M, 0, w, bias.data(), y.data(), 3, scratch, true);
    for (int64_t m = 0; m < M; ++m)
      for (int o = 0; o < 3; ++o) EXPECT_EQ(y[size_t(m * 3 + o)], 2 * bias[size_t(o)]);
  }
}

// The element-wise passes run through the ISA's row kernels (ops/row_kernels.h): their tests below
// (TEST_P(ElementwiseIsa, ...)) run at every level this CPU supports, the others are skipped with the reason.
class ElementwiseIsa : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override {
    if (!isa_supported(GetParam()))
      GTEST_SKIP() << "the " << isa_name(GetParam())
                   << " element-wise row kernels are not tested on this machine: " << isa_missing(GetParam());
    isa_.emplace(GetParam());
    ASSERT_STREQ(row_kernels().name, isa_name(GetParam()));
  }
  std::optional<test::ScopedIsa> isa_;
};

// ---- rms_norm
// -------------------------------------------------------------------------------------------------

// Bound per element, relative to |(1 + s) v| + |shift| with v = x * inv * (1 + w) in double:
//   sum of dim squares in float32: (dim - 1) u relative; /dim, +eps, sqrt (halves it), 1/: ~(dim/2 + 3) u on
//   inv; x * inv * (1 + w): 3 more roundings; (1 + s) * v + shift: 3 more. Total (dim/2 + 8) u.
// A misplaced eps or a missing `1 +` moves outputs by ~1e-5 .. 1e-1 relative; the small-magnitude rows (eps
// dominant) make an eps bug show even at large dim.
void check_rms_norm(int64_t rows, int64_t dim, bool modulated, bool in_place, double magnitude,
                    uint64_t seed) {
  SCOPED_TRACE("rows=" + std::to_string(rows) + " dim=" + std::to_string(dim) +
               (modulated ? " modulated" : "") + (in_place ? " in place" : "") +
               " magnitude=" + std::to_string(magnitude));
  const float eps = 1e-5f;
  const int64_t ldx = dim + 3, ldo = in_place ? ldx : dim + 7;
  std::vector<float> x(size_t(rows * ldx), kNaN);
  std::vector<float> xv = test::random_floats(size_t(rows * dim), seed);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < dim; ++i) x[size_t(r * ldx + i)] = float(xv[size_t(r * dim + i)] * magnitude);
  // Row 1 is all zeros: x * inv with inv = 1 / sqrt(eps) must stay finite (0, or shift when modulated).
  if (rows > 1)
    for (int64_t i = 0; i < dim; ++i) x[size_t(ldx + i)] = 0.0f;
  std::vector<float> weight = test::random_floats(size_t(dim), seed + 1, 0.5f);
  std::vector<float> scale = test::random_floats(size_t(dim), seed + 2, 0.5f);
  std::vector<float> shift = test::random_floats(size_t(dim), seed + 3, float(magnitude));
  const float* s = modulated ? scale.data() : nullptr;
  const float* t = modulated ? shift.data() : nullptr;

  std::vector<float> ref(size_t(rows * ldo), kYPad);
  rms_norm_reference(x.data(), rows, dim, ldx, weight.data(), eps, ref.data(), ldo, s, t);
  const std::vector<float> x_before = x;
  std::vector<float> out_buf(size_t(rows * ldo), kYPad);
  float* out = in_place ? x.data() : out_buf.data();
  rms_norm(x.data(), rows, dim, ldx, weight.data(), eps, out, ldo, s, t);

  int bad = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x_before.data() + r * ldx;
    double ss = 0;
    for (int64_t i = 0; i < dim; ++i) ss += double(xr[i]) * double(xr[i]);
    const double inv = 1.0 / std::sqrt(ss / double(dim) + double(eps));
    for (int64_t i = 0; i < dim; ++i) {
      const double v = double(xr[i]) * inv * (1.0 + double(weight[size_t(i)]));
      const double size = modulated
                              ? std::fabs((1.0 + scale[size_t(i)]) * v) + std::fabs(double(shift[size_t(i)]))
                              : std::fabs(v);
      const double tol = (double(dim) / 2 + 8) * kU * size + 1e-38;
      const float got = out[size_t(r * ldo + i)];
      const float want = ref[size_t(r * ldo + i)];
      if ((!std::isfinite(got) || !(std::fabs(double(got) - double(want)) <= tol)) && bad++ < 5)
        ADD_FAILURE() << "out[" << r << ", " << i << "] = " << got << ", reference " << want << ", bound "
                      << tol;
    }
    if (!in_place)
      for (int64_t i = dim; i < ldo; ++i)
        if (out[size_t(r * ldo + i)] != kYPad && bad++ < 5)
          ADD_FAILURE() << "padding of row " << r << " written";
  }
  EXPECT_EQ(bad, 0);
  if (rows > 1) {  // the zero row: exactly 0 (or exactly shift)
    for (int64_t i = 0; i < dim; ++i)
      EXPECT_EQ(out[size_t(ldo + i)], modulated ? shift[size_t(i)] : 0.0f) << i;
  }
}

TEST_P(ElementwiseIsa, RmsNormMatchesReference) {
  uint64_t seed = 1;
  for (int64_t dim : {1, 7, 64, 3072})
    for (int64_t rows : {3, 8})  // 8 x 3072 takes the parallel path (>= 16384 elements)
      for (bool modulated : {false, true})
        for (bool in_place : {false, true})
          for (double magnitude : {1.0, 1e-3, 1e16, 1e-20})
            check_rms_norm(rows, dim, modulated, in_place, magnitude, seed++);
}

// rms_norm_plain, weight * (x / rms(x)) (the text encoder's norm): the bound above, with one rounding fewer.
TEST_P(ElementwiseIsa, RmsNormPlainMatchesReference) {
  uint64_t seed = 50;
  for (int64_t dim : {1, 7, 64, 128, 2560}) {
    for (int64_t rows : {3, 8}) {  // 8 x 2560 takes the parallel path (>= 16384 elements)
      SCOPED_TRACE("rows=" + std::to_string(rows) + " dim=" + std::to_string(dim));
      const int64_t ldx = dim + 3, ldo = dim + 5;
      const float eps = 1e-6f;
      const std::vector<float> x = test::random_floats(size_t(rows * ldx), seed++);
      const std::vector<float> w = test::random_floats(size_t(dim), seed++, 2.0f);
      std::vector<float> got(size_t(rows * ldo), kYPad), want(size_t(rows * ldo), kYPad);
      rms_norm_plain(x.data(), rows, dim, ldx, w.data(), eps, got.data(), ldo);
      rms_norm_plain_reference(x.data(), rows, dim, ldx, w.data(), eps, want.data(), ldo);
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t i = 0; i < ldo; ++i) {
          const float g = got[size_t(r * ldo + i)], v = want[size_t(r * ldo + i)];
          if (i >= dim) {
            ASSERT_EQ(g, kYPad) << "padding of row " << r << " written";
            continue;
          }
          const double tol = (double(dim) / 2 + 8) * kU * std::fabs(double(v)) + 1e-38;
          ASSERT_LE(std::fabs(double(g) - double(v)), tol) << r << " " << i;
        }
      }
    }
  }
}

TEST_P(ElementwiseIsa, RmsNormZeroRowIsFinite) {
  std::vector<float> x(64, 0.0f), w(64, 0.3f), out(64, kNaN);
  rms_norm(x.data(), 1, 64, 64, w.data(), 1e-5f, out.data(), 64);
  for (float v : out) EXPECT_EQ(v, 0.0f);
  rms_norm(x.data(), 1, 64, 64, w.data(), 1e-5f, x.data(), 64);
  for (float v : x) EXPECT_EQ(v, 0.0f);
}

TEST_P(ElementwiseIsa, RmsNormConstantRowIsOnePlusWeight) {
  // x = c everywhere: mean(x^2) = c^2, so out = c / sqrt(c^2 + eps) * (1 + w); with c = 4 that is 4/sqrt(16 +
  // eps).
  std::vector<float> x(100, 4.0f), w = test::random_floats(100, 3, 0.5f), out(100);
  rms_norm(x.data(), 1, 100, 100, w.data(), 1e-5f, out.data(), 100);
  const double f = 4.0 / std::sqrt(16.0 + 1e-5);
  for (size_t i = 0; i < 100; ++i) EXPECT_NEAR(out[i], f * (1.0 + w[i]), 60 * kU * 1.5) << i;
}

// ---- rope
// ---------------------------------------------------------------------------------------------------

// Positions: integer grid ids and arbitrary fractional values up to 200 (large angles).
std::vector<float> make_positions(int64_t rows, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(0.0f, 200.0f);
  std::vector<float> p(size_t(rows * 3));
  for (int64_t r = 0; r < rows; ++r)
    for (int a = 0; a < 3; ++a) p[size_t(r * 3 + a)] = (r % 2 == 0) ? float((r * (a + 1)) % 201) : u(rng);
  p[0] = p[1] = p[2] = 0.0f;  // the text rows' position
  return p;
}

std::vector<int> axes_of(const Config& c) {
  return c.axes_dims_rope;
}

bool axes_valid(const std::vector<int>& axes) {
  Config c;
  c.axes_dims_rope = axes;
  c.attention_head_dim = 0;
  for (int d : axes) c.attention_head_dim += d;
  c.num_attention_heads = 1;
  c.num_key_value_heads = 1;
  try {
    c.validate();
    return true;
  } catch (const Error&) {
    return false;
  }
}

TEST(Rope, TableMatchesSpecAngles) {
  // cos/sin of p[:, j] * theta^(-2i/aj) in float64, rounded to float32 (SPEC "Rotary embedding"), computed
  // here independently; pow rounding may differ in the last double bit, hence one float ulp of slack.
  const std::vector<int> axes = {32, 48, 48};
  for (double theta : {1000.0, 10000.0}) {
    const int64_t rows = 41;
    std::vector<float> pos = make_positions(rows, 9);
    RopeTable t = make_rope_table(pos.data(), rows, axes, theta);
    ASSERT_EQ(t.rows, rows);
    ASSERT_EQ(t.half, 64);
    for (int64_t r = 0; r < rows; ++r) {
      int64_t k = 0;
      for (int j = 0; j < 3; ++j)
        for (int i = 0; i < axes[size_t(j)] / 2; ++i, ++k) {
          const double angle = double(pos[size_t(r * 3 + j)]) * std::pow(theta, -2.0 * i / axes[size_t(j)]);
          EXPECT_NEAR(t.cos[size_t(r * 64 + k)], float(std::cos(angle)), 2 * kU) << r << " " << k;
          EXPECT_NEAR(t.sin[size_t(r * 64 + k)], float(std::sin(angle)), 2 * kU) << r << " " << k;
        }
    }
  }
}

// Rotating a pair with float32 cos/sin: two products and a sum in float32 (3 roundings) vs the reference's
// double arithmetic rounded once: |err| <= 4 u (|a| + |b|) per element. A wrong angle, pair or head offset is
// O(|a|).
void check_rope(const std::vector<int>& axes, double theta, int64_t rows, int64_t heads, uint64_t seed) {
  SCOPED_TRACE("axes=(" + std::to_string(axes[0]) + "," + std::to_string(axes[1]) + "," +
               std::to_string(axes[2]) + ") theta=" + std::to_string(theta) +
               " rows=" + std::to_string(rows) + " heads=" + std::to_string(heads));
  int64_t head_dim = 0;
  for (int d : axes) head_dim += d;
  const int64_t ldx = heads * head_dim + 5;
  std::vector<float> pos = make_positions(rows, seed);
  std::vector<float> x = test::random_floats(size_t(rows * ldx), seed + 1);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = heads * head_dim; i < ldx; ++i) x[size_t(r * ldx + i)] = kYPad;
  std::vector<float> got = x, want = x;
  RopeTable table = make_rope_table(pos.data(), rows, axes, theta);
  apply_rope(got.data(), rows, ldx, heads, table);
  apply_rope_reference(want.data(), rows, ldx, heads, pos.data(), axes, theta);
  int bad = 0;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t k = 0; k < head_dim / 2; ++k) {
        const size_t i = size_t(r * ldx + h * head_dim + 2 * k);
        const double tol = 4 * kU * (std::fabs(x[i]) + std::fabs(x[i + 1]));
        for (size_t e : {i, i + 1})
          if (!(std::fabs(double(got[e]) - double(want[e])) <= tol) && bad++ < 5)
            ADD_FAILURE() << "row " << r << " head " << h << " channel " << e - size_t(r * ldx + h * head_dim)
                          << ": " << got[e] << " vs " << want[e];
      }
    for (int64_t i = heads * head_dim; i < ldx; ++i)
      if (got[size_t(r * ldx + i)] != kYPad && bad++ < 5)
        ADD_FAILURE() << "padding of row " << r << " written";
  }
  EXPECT_EQ(bad, 0);

  // table_row0: rotating rows [5, rows) with the table offset by 5 gives the same rows.
  if (rows > 5) {
    std::vector<float> part = x;
    apply_rope(part.data() + 5 * ldx, rows - 5, ldx, heads, table, 5);
    for (int64_t i = 5 * ldx; i < rows * ldx; ++i) ASSERT_EQ(part[size_t(i)], got[size_t(i)]) << i;
  }
}

TEST_P(ElementwiseIsa, RopeMatchesReference) {
  uint64_t seed = 11;
  for (double theta : {1000.0, 10000.0}) {
    check_rope({4, 2, 2}, theta, 7, 4, seed++);
    check_rope({32, 48, 48}, theta, 40, 3, seed++);  // 40 * 3 * 64 > 8192: parallel path
    check_rope({32, 48, 48}, theta, 201, 1, seed++);
  }
}

TEST_P(ElementwiseIsa, RopeZeroAxis) {
  // Config validation accepts a 0-dim axis (even, >= 0); that axis then contributes no angle.
  ASSERT_TRUE(axes_valid({0, 8, 8}));
  for (double theta : {1000.0, 10000.0}) check_rope({0, 8, 8}, theta, 9, 2, 77);
  // The axis with 0 dims ignores its position: changing p[:, 0] changes nothing.
  std::vector<float> pos = make_positions(6, 5), pos2 = pos;
  for (int64_t r = 0; r < 6; ++r) pos2[size_t(r * 3)] += 17.0f;
  RopeTable a = make_rope_table(pos.data(), 6, {0, 8, 8}, 1000.0);
  RopeTable b = make_rope_table(pos2.data(), 6, {0, 8, 8}, 1000.0);
  EXPECT_EQ(a.cos, b.cos);
  EXPECT_EQ(a.sin, b.sin);
}

TEST_P(ElementwiseIsa, RopePositionZeroIsIdentity) {
  std::vector<float> pos(3 * 4, 0.0f);
  RopeTable t = make_rope_table(pos.data(), 4, axes_of(Config{}), 1000.0);
  std::vector<float> x = test::random_floats(4 * 256, 3), y = x;
  apply_rope(y.data(), 4, 256, 2, t);
  EXPECT_EQ(x, y);
}

// head_norm_rope vs rms_norm_reference per head followed by apply_rope_reference. Bound: the norm's
// (hd/2 + 8) u relative error carried through the rotation, plus the rotation's 4 u, on |a'| + |b'| of the
// normed pair: (hd/2 + 16) u (|a'| + |b'|).
void check_head_norm_rope(const std::vector<int>& axes, int64_t rows, int64_t heads, bool with_rope,
                          uint64_t seed) {
  int64_t hd = 0;
  for (int d : axes) hd += d;
  SCOPED_TRACE("head_dim=" + std::to_string(hd) + " rows=" + std::to_string(rows) +
               " heads=" + std::to_string(heads) + (with_rope ? " rope" : " no rope"));
  const float eps = 1e-5f;
  const double theta = 1000.0;
  const int64_t ldx = heads * hd + 3;
  std::vector<float> x = test::random_floats(size_t(rows * ldx), seed, 3.0f);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = heads * hd; i < ldx; ++i) x[size_t(r * ldx + i)] = kYPad;
  std::vector<float> weight = test::random_floats(size_t(hd), seed + 1, 0.5f);
  std::vector<float> pos = make_positions(rows, seed + 2);

  std::vector<float> normed = x;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t h = 0; h < heads; ++h) {
      float* p = normed.data() + r * ldx + h * hd;
      rms_norm_reference(p, 1, hd, hd, weight.data(), eps, p, hd);
    }
  std::vector<float> want = normed;
  if (with_rope) apply_rope_reference(want.data(), rows, ldx, heads, pos.data(), axes, theta);

  std::vector<float> got = x;
  RopeTable table = make_rope_table(pos.data(), rows, axes, theta);
  head_norm_rope(got.data(), rows, ldx, heads, hd, weight.data(), eps, with_rope ? &table : nullptr);

  int bad = 0;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t k = 0; k < hd / 2; ++k) {
        const size_t i = size_t(r * ldx + h * hd + 2 * k);
        const double tol = (double(hd) / 2 + 16) * kU * (std::fabs(normed[i]) + std::fabs(normed[i + 1]));
        for (size_t e : {i, i + 1})
          if (!(std::fabs(double(got[e]) - double(want[e])) <= tol) && bad++ < 5)
            ADD_FAILURE() << "row " << r << " head " << h << " element " << e << ": " << got[e] << " vs "
                          << want[e];
      }
    for (int64_t i = heads * hd; i < ldx; ++i)
      if (got[size_t(r * ldx + i)] != kYPad && bad++ < 5)
        ADD_FAILURE() << "padding of row " << r << " written";
  }
  EXPECT_EQ(bad, 0);
}

TEST_P(ElementwiseIsa, HeadNormRopeMatchesNormThenRopeReferences) {
  uint64_t seed = 300;
  for (bool rope : {true, false}) {
    check_head_norm_rope({4, 2, 2}, 5, 4, rope, seed++);
    check_head_norm_rope({4, 6, 6}, 13, 3, rope, seed++);
    check_head_norm_rope({32, 48, 48}, 40, 4, rope, seed++);  // 40 * 4 * 128 > 8192: parallel path
  }
}

// ---- activations
// --------------------------------------------------------------------------------------------

std::vector<float> activation_grid() {
  std::vector<float> xs;
  for (int i = 0; i <= 40 * 1024; ++i) xs.push_back(-20.0f + float(i) / 1024.0f);  // exact floats, step 2^-10
  std::vector<float> r = test::random_floats(20000, 42, 20.0f);
  xs.insert(xs.end(), r.begin(), r.end());
  for (float v : {1e-30f, -1e-30f, 1e-8f, -1e-8f, 0.0f, -0.0f}) xs.push_back(v);
  return xs;
}

// sigmoid = 1 / (1 + expf(-x)) and silu = x / (1 + expf(-x)): expf within 1 ulp (2u), then 1 + e, the
// division:
// <= 4u relative; 8u leaves margin. (No cancellation: 1 + e > 1.)
TEST(Activations, SigmoidAndSiluRelative) {
  for (float x : activation_grid()) {
    const double s = sigmoid_reference(x), si = silu_reference(x);
    EXPECT_LE(std::fabs(double(sigmoid(x)) - s), 8 * kU * std::fabs(s)) << x;
    EXPECT_LE(std::fabs(double(silu(x)) - si), 8 * kU * std::fabs(si)) << x;
  }
}

// The 8-lane path of the in-place ops (sigmoid8: e = e^-|x| by Cody-Waite + degree-7 polynomial, ~2 ulp, then
// 1 + e and one division): within 8u relative wherever the result is a normal float, over [-20, 20] densely
// and out to the ends of the range. Below -87 e^-|x| is flushed to 0, so sigmoid and silu give exactly 0
// there (the true values are below 1.7e-38). Infinities saturate (silu(-inf) = -inf * 0 is NaN) and NaN stays
// NaN.
TEST_P(ElementwiseIsa, ActivationsVectorSigmoidAndSiluOverTheWholeRange) {
  std::vector<float> xs = activation_grid();
  for (float v : {30.0f, 60.0f, 86.9f, 87.0f, 87.1f, 88.7f, 89.0f, 100.0f, 1e4f, 1e30f}) {
    xs.push_back(v);
    xs.push_back(-v);
  }
  const float inf = std::numeric_limits<float>::infinity();
  xs.insert(xs.end(), {inf, -inf, kNaN});
  while (xs.size() % 8 != 0) xs.push_back(0.5f);  // all through the vector path, no scalar tail
  const int64_t n = int64_t(xs.size());
  std::vector<float> sig(xs.size(), 1.0f), si = xs, ones(xs.size(), 1.0f);
  sigmoid_gate_inplace(sig.data(), n, xs.data(), n, 1, n);
  swiglu_inplace(si.data(), n, ones.data(), n, 1, n);
  for (size_t i = 0; i < xs.size(); ++i) {
    const float x = xs[i];
    SCOPED_TRACE(x);
    if (std::isnan(x)) {
      EXPECT_TRUE(std::isnan(sig[i]) && std::isnan(si[i]));
    } else if (x == -inf) {  // silu = -inf * 0, NaN as in upstream's x * sigmoid(x)
      EXPECT_EQ(sig[i], 0.0f);
      EXPECT_TRUE(std::isnan(si[i]));
    } else if (x < -87.0f) {
      EXPECT_EQ(sig[i], 0.0f);
      EXPECT_EQ(si[i], 0.0f);
    } else if (x == inf) {
      EXPECT_EQ(sig[i], 1.0f);
      EXPECT_EQ(si[i], inf);
    } else {
      const double s = sigmoid_reference(x), l = silu_reference(x);
      EXPECT_LE(std::fabs(double(sig[i]) - s), 8 * kU * std::fabs(s));
      EXPECT_LE(std::fabs(double(si[i]) - l), 8 * kU * std::fabs(l));
    }
  }
}

// gelu_tanh = 0.5 x (1 + tanh(k (x + c x^3))): the argument carries ~8u relative (roundings and the float k,
// c), tanh moves by |arg| sech^2(arg) * 8u <= 4u absolute plus its own ~2 ulp, and 1 + tanh cancels for x <<
// 0, so the error is absolute in (1 + tanh): |err| <= 0.5 |x| * 16u + 4u |ref|. Relative precision is lost
// only where upstream's float32 formula loses it too (the negative tail, where the value is tiny). Swapping
// in the erf GELU or dropping the cubic term moves values by >= 1e-4 near |x| ~ 1.
TEST(Activations, GeluTanh) {
  for (float x : activation_grid()) {
    const double g = gelu_tanh_reference(x);
    EXPECT_LE(std::fabs(double(gelu_tanh(x)) - g), 8 * kU * std::fabs(double(x)) + 4 * kU * std::fabs(g))
        << x;
  }
  // Positive x: plain relative accuracy.
  for (float x = 0.25f; x <= 20.0f; x += 0.125f)
    EXPECT_LE(std::fabs(double(gelu_tanh(x)) - gelu_tanh_reference(x)), 8 * kU * gelu_tanh_reference(x)) << x;
}

TEST(Activations, FiniteAtExtremes) {
  for (float x : {-1e30f, -1e13f, -1e4f, -100.0f, -89.0f, -88.0f, 88.0f, 89.0f, 100.0f, 1e4f, 1e13f, 1e30f}) {
    EXPECT_TRUE(std::isfinite(sigmoid(x))) << x;
    EXPECT_TRUE(std::isfinite(silu(x))) << x;
    EXPECT_TRUE(std::isfinite(gelu_tanh(x))) << x;
  }
  EXPECT_EQ(sigmoid(-200.0f), 0.0f);
  EXPECT_EQ(sigmoid(200.0f), 1.0f);
  EXPECT_EQ(silu(200.0f), 200.0f);
  EXPECT_EQ(gelu_tanh(200.0f), 200.0f);
  EXPECT_EQ(gelu_tanh(-200.0f), 0.0f);
}

TEST(Activations, GeluInplaceMatchesScalar) {
  for (int64_t n : {int64_t(1), int64_t(17), int64_t(40000)}) {  // 40000 > 2^15: parallel path
    std::vector<float> x = test::random_floats(size_t(n), uint64_t(n), 6.0f), y = x;
    gelu_tanh_inplace(y.data(), n);
    for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(y[i], gelu_tanh(x[i])) << i;
  }
}

struct Strided {
  int64_t rows, dim, ld;
  std::vector<float> v;
  Strided(int64_t rows_, int64_t dim_, int64_t ld_, uint64_t seed, float scale)
      : rows(rows_), dim(dim_), ld(ld_), v(test::random_floats(size_t(rows_ * ld_), seed, scale)) {
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t i = dim; i < ld; ++i) v[size_t(r * ld + i)] = kYPad;
  }
  float& at(int64_t r, int64_t i) { return v[size_t(r * ld + i)]; }
  bool padding_intact() const {
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t i = dim; i < ld; ++i)
        if (v[size_t(r * ld + i)] != kYPad) return false;
    return true;
  }
};

// silu(a) * b: silu within 8u (above), one more rounding: 10u relative to the double value.
TEST_P(ElementwiseIsa, ActivationsSwigluInplace) {
  for (auto [rows, dim] : {std::pair<int64_t, int64_t>{3, 7}, {64, 600}}) {  // 64 * 600 > 2^15: parallel
    Strided a(rows, dim, dim + 3, 1, 10.0f), b(rows, dim, dim + 5, 2, 3.0f);
    Strided a0 = a;
    swiglu_inplace(a.v.data(), a.ld, b.v.data(), b.ld, rows, dim);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t i = 0; i < dim; ++i) {
        const double want = silu_reference(a0.at(r, i)) * double(b.at(r, i));
        ASSERT_LE(std::fabs(double(a.at(r, i)) - want), 10 * kU * std::fabs(want)) << r << " " << i;
      }
    EXPECT_TRUE(a.padding_intact());
  }
}

TEST_P(ElementwiseIsa, ActivationsSigmoidGateInplace) {
  for (auto [rows, dim] : {std::pair<int64_t, int64_t>{3, 7}, {64, 600}}) {
    Strided o(rows, dim, dim + 2, 3, 5.0f), g(rows, dim, dim + 4, 4, 10.0f);
    Strided o0 = o;
    sigmoid_gate_inplace(o.v.data(), o.ld, g.v.data(), g.ld, rows, dim);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t i = 0; i < dim; ++i) {
        const double want = double(o0.at(r, i)) * sigmoid_reference(g.at(r, i));
        ASSERT_LE(std::fabs(double(o.at(r, i)) - want), 10 * kU * std::fabs(want)) << r << " " << i;
      }
    EXPECT_TRUE(o.padding_intact());
  }
}

// x + gate * y: one product and one sum (or one FMA): <= 2u (|x| + |gate y|). Without gate: one sum, exact
// match.
TEST_P(ElementwiseIsa, ActivationsGatedResidual) {
  for (auto [rows, dim] : {std::pair<int64_t, int64_t>{3, 7}, {64, 600}}) {
    for (bool gated : {true, false}) {
      Strided x(rows, dim, dim + 1, 5, 2.0f), y(rows, dim, dim + 6, 6, 2.0f);
      std::vector<float> gate = test::random_floats(size_t(dim), 7, 1.5f);
      Strided x0 = x;
      gated_residual(x.v.data(), x.ld, y.v.data(), y.ld, gated ? gate.data() : nullptr, rows, dim);
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t i = 0; i < dim; ++i) {
          if (!gated) {
            ASSERT_EQ(x.at(r, i), x0.at(r, i) + y.at(r, i)) << r << " " << i;
            continue;
          }
          const double gy = double(gate[size_t(i)]) * double(y.at(r, i));
          const double want = double(x0.at(r, i)) + gy;
          ASSERT_LE(std::fabs(double(x.at(r, i)) - want),
                    2 * kU * (std::fabs(double(x0.at(r, i))) + std::fabs(gy)))
              << r << " " << i;
        }
      EXPECT_TRUE(x.padding_intact());
    }
  }
}

// ---- dtype conversions
// --------------------------------------------------------------------------------------

// Round-to-nearest-even to bf16, stated independently: pick the nearer of the two bf16 neighbours (by exact
// distance in double; the neighbour past the largest finite value is +-inf and stands for +-2^128), ties to
// the even bit pattern.
uint16_t bf16_rne_reference(float f) {
  const uint32_t b = bits_of(f);
  const uint16_t lo = uint16_t(b >> 16), hi = uint16_t(lo + 1);
  auto value = [](uint16_t h) {
    if ((h & 0x7f80u) == 0x7f80u) return std::ldexp((h & 0x8000u) ? -1.0 : 1.0, 128);
    return double(from_bits(uint32_t(h) << 16));
  };
  const double dlo = std::fabs(double(f) - value(lo)), dhi = std::fabs(double(f) - value(hi));
  if (dlo < dhi) return lo;
  if (dhi < dlo) return hi;
  return (lo & 1u) ? hi : lo;
}

TEST(Convert, Bf16RoundToNearestEvenTies) {
  EXPECT_EQ(f32_to_bf16(from_bits(0x3f808000u)), 0x3f80u);  // tie, lower is even
  EXPECT_EQ(f32_to_bf16(from_bits(0x3f818000u)), 0x3f82u);  // tie, upper is even
  EXPECT_EQ(f32_to_bf16(from_bits(0x3f808001u)), 0x3f81u);  // just above the tie
  EXPECT_EQ(f32_to_bf16(from_bits(0x3f807fffu)), 0x3f80u);  // just below
  EXPECT_EQ(f32_to_bf16(from_bits(0xbf808000u)), 0xbf80u);  // negative tie
  EXPECT_EQ(f32_to_bf16(from_bits(0xbf818000u)), 0xbf82u);
  EXPECT_EQ(f32_to_bf16(from_bits(0x3f80ffffu)), 0x3f81u);
  EXPECT_EQ(f32_to_bf16(from_bits(0x3fffffffu)), 0x4000u);  // carry into the exponent
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80u);
  EXPECT_EQ(f32_to_bf16(0.0f), 0x0000u);
  EXPECT_EQ(f32_to_bf16(-0.0f), 0x8000u);
  EXPECT_EQ(f32_to_bf16(from_bits(0x00008000u)), 0x0000u);  // subnormal tie to even (0)
  EXPECT_EQ(f32_to_bf16(from_bits(0x00018000u)), 0x0002u);
  EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::infinity()), 0x7f80u);
  EXPECT_EQ(f32_to_bf16(-std::numeric_limits<float>::infinity()), 0xff80u);
  EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::max()), 0x7f80u);  // rounds up to inf
  EXPECT_EQ(f32_to_bf16(from_bits(0x7f7f7fffu)), 0x7f7fu);             // largest value that stays finite
}

TEST(Convert, Bf16NanStaysNan) {
  for (uint32_t b :
       {0x7f800001u, 0x7fc00000u, 0x7f80ffffu, 0xff800001u, 0x7fffffffu, 0xffc00000u, 0x7f810000u}) {
    const uint16_t h = f32_to_bf16(from_bits(b));
    EXPECT_TRUE(std::isnan(bf16_to_f32(h))) << std::hex << b << " -> " << h;
    EXPECT_EQ(h & 0x8000u, (b >> 16) & 0x8000u) << std::hex << b;  // sign kept
  }
}

TEST(Convert, Bf16MatchesRoundToNearestEverywhere) {
  // Every upper half with the interesting lower halves, and a strided sweep of all 2^32 patterns.
  int bad = 0;
  auto check = [&](uint32_t b) {
    const float f = from_bits(b);
    if (std::isnan(f)) return;
    const uint16_t got = f32_to_bf16(f), want = bf16_rne_reference(f);
    if (got != want && bad++ < 10) ADD_FAILURE() << std::hex << b << ": " << got << " vs " << want;
  };
  for (uint32_t hi = 0; hi < 0x10000u; ++hi)
    for (uint32_t lo : {0x0000u, 0x0001u, 0x7fffu, 0x8000u, 0x8001u, 0xffffu}) check((hi << 16) | lo);
  for (uint64_t b = 0; b < (uint64_t(1) << 32); b += 4099) check(uint32_t(b));
  EXPECT_EQ(bad, 0);
  // bf16 -> f32 is exact: back to the same bits.
  for (uint32_t h = 0; h < 0x10000u; ++h) {
    const float f = bf16_to_f32(uint16_t(h));
    if (!std::isnan(f)) {
      ASSERT_EQ(f32_to_bf16(f), h);
    }
  }
}

TEST(Convert, F16ToF32MatchesHardwareForAllHalves) {
  for (uint32_t h = 0; h < 0x10000u; ++h) {
    const float got = f16_to_f32(uint16_t(h)), want = hw_f16_to_f32(uint16_t(h));
    if (f16_is_nan(uint16_t(h))) {
      ASSERT_TRUE(std::isnan(got)) << std::hex << h;
    } else {
      ASSERT_EQ(bits_of(got), bits_of(want)) << std::hex << h;
    }
  }
}

TEST(Convert, F16RoundTripAllHalves) {
  for (uint32_t h = 0; h < 0x10000u; ++h) {
    const uint16_t back = f32_to_f16(f16_to_f32(uint16_t(h)));
    if (f16_is_nan(uint16_t(h))) {
      ASSERT_TRUE(f16_is_nan(back)) << std::hex << h << " -> " << back;
      ASSERT_EQ(back & 0x8000u, h & 0x8000u) << std::hex << h;
    } else {
      ASSERT_EQ(back, h) << std::hex << h;
    }
  }
}

TEST(Convert, F32ToF16MatchesHardwareRounding) {
  int bad = 0;
  auto check = [&](uint32_t b) {
    const float f = from_bits(b);
    const uint16_t got = f32_to_f16(f), want = hw_f32_to_f16(f);
    const bool ok = std::isnan(f) ? f16_is_nan(got) : got == want;
    if (!ok && bad++ < 10) ADD_FAILURE() << std::hex << b << " (" << f << "): " << got << " vs " << want;
  };
  for (uint64_t b = 0; b < (uint64_t(1) << 32); b += 257) check(uint32_t(b));
  // Dense around the half range: every float whose low 13 bits sit at or next to a rounding boundary.
  for (uint32_t e = 0x30000000u; e < 0x48000000u; e += 0x2000u)
    for (uint32_t lo : {0x0000u, 0x0fffu, 0x1000u, 0x1001u, 0x1fffu}) {
      check(e | lo);
      check(0x80000000u | e | lo);
    }
  EXPECT_EQ(bad, 0);
}

TEST(Convert, F16SubnormalsAndOverflow) {
  const float tiny = std::ldexp(1.0f, -24);  // smallest f16 subnormal
  EXPECT_EQ(f32_to_f16(tiny), 0x0001u);
  EXPECT_EQ(f32_to_f16(-tiny), 0x8001u);
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -25)), 0x0000u);                        // tie -> even (0)
  EXPECT_EQ(f32_to_f16(std::nextafter(std::ldexp(1.0f, -25), 1.0f)), 0x0001u);  // just above the tie
  EXPECT_EQ(f32_to_f16(3 * std::ldexp(1.0f, -25)), 0x0002u);                    // 1.5 ulp: tie -> even (2)
  EXPECT_EQ(f32_to_f16(1023 * tiny), 0x03ffu);                                  // largest subnormal
  EXPECT_EQ(f32_to_f16(1023.5f * tiny), 0x0400u);                               // tie up into the normals
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -14)), 0x0400u);                        // smallest normal
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -30)), 0x0000u);                        // underflow to zero
  EXPECT_EQ(f32_to_f16(-std::ldexp(1.0f, -30)), 0x8000u);                       // keeps the sign
  EXPECT_EQ(f32_to_f16(std::numeric_limits<float>::denorm_min()), 0x0000u);
  EXPECT_EQ(f16_to_f32(0x0001u), tiny);
  EXPECT_EQ(f16_to_f32(0x03ffu), 1023 * tiny);
  EXPECT_EQ(f16_to_f32(0x8001u), -tiny);
  // Normal-range ties: 1 + 2^-11 sits halfway between 0x3c00 and 0x3c01 (even: down), 1 + 3 * 2^-11 between
  // 0x3c01 and 0x3c02 (even: up).
  EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(1.0f, -11)), 0x3c00u);
  EXPECT_EQ(f32_to_f16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02u);
  EXPECT_EQ(f32_to_f16(-(1.0f + 3 * std::ldexp(1.0f, -11))), 0xbc02u);
  EXPECT_EQ(f32_to_f16(std::nextafter(1.0f + std::ldexp(1.0f, -11), 2.0f)), 0x3c01u);
  EXPECT_EQ(f32_to_f16(2.0f - std::ldexp(1.0f, -12)), 0x4000u);  // tie at the top of a binade carries
  // Overflow: 65504 is the largest half; 65520 is the tie with 2^16 and rounds to inf (even).
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7bffu);
  EXPECT_EQ(f32_to_f16(65519.996f), 0x7bffu);
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00u);
  EXPECT_EQ(f32_to_f16(-65520.0f), 0xfc00u);
  EXPECT_EQ(f32_to_f16(1e6f), 0x7c00u);
  EXPECT_EQ(f32_to_f16(std::numeric_limits<float>::max()), 0x7c00u);
  EXPECT_EQ(f32_to_f16(std::numeric_limits<float>::infinity()), 0x7c00u);
  EXPECT_EQ(f32_to_f16(-std::numeric_limits<float>::infinity()), 0xfc00u);
  EXPECT_TRUE(f16_is_nan(f32_to_f16(kNaN)));
  EXPECT_TRUE(f16_is_nan(f32_to_f16(from_bits(0x7f800001u))));  // payload only in the low bits
  EXPECT_TRUE(std::isinf(f16_to_f32(0x7c00u)));
  EXPECT_TRUE(std::isnan(f16_to_f32(0x7c01u)));
}

// widen_to_f32 from a source at every byte offset 0..7, for lengths around the 8-wide SIMD body. The element
// after the end of dst must stay untouched.
TEST(Convert, WidenToF32AllDtypesUnaligned) {
  const std::vector<float> vals = [] {
    std::vector<float> v = test::random_floats(1100, 17, 100.0f);
    const float specials[] = {0.0f, -0.0f, 1.0f, 65504.0f, 1e-7f, 3e-39f, -2.5f, 1e30f};
    for (size_t i = 0; i < 8; ++i) v[i * 37] = specials[i];
    return v;
  }();
  for (DType dtype : {DType::F32, DType::BF16, DType::F16, DType::F64}) {
    const size_t esize = dtype_size(dtype);
    for (size_t n : {size_t(0), size_t(1), size_t(3), size_t(7), size_t(8), size_t(9), size_t(15), size_t(16),
                     size_t(17), size_t(63), size_t(1027)}) {
      // Encode the elements and what each must widen to.
      std::vector<unsigned char> enc(n * esize);
      std::vector<float> want(n);
      for (size_t i = 0; i < n; ++i) {
        const float v = vals[i];
        if (dtype == DType::F32) {
          std::memcpy(&enc[i * 4], &v, 4);
          want[i] = v;
        } else if (dtype == DType::BF16) {
          const uint16_t h = uint16_t(bits_of(v) >> 16);  // truncation: any bf16 pattern will do
          std::memcpy(&enc[i * 2], &h, 2);
          want[i] = from_bits(uint32_t(h) << 16);
        } else if (dtype == DType::F16) {
          const uint16_t h = hw_f32_to_f16(v / 8.0f);
          std::memcpy(&enc[i * 2], &h, 2);
          want[i] = hw_f16_to_f32(h);
        } else {
          const double d = double(v) * (1.0 + 1e-12) + 1e-300;  // needs rounding to float
          std::memcpy(&enc[i * 8], &d, 8);
          want[i] = static_cast<float>(d);
        }
      }
      for (size_t offset = 0; offset < 8; ++offset) {
        SCOPED_TRACE(std::string(dtype_name(dtype)) + " n=" + std::to_string(n) +
                     " offset=" + std::to_string(offset));
        std::vector<unsigned char> buf(n * esize + 16, 0xab);
        if (n) std::memcpy(buf.data() + offset, enc.data(), enc.size());
        std::vector<float> dst(n + 1, kYPad);
        widen_to_f32(dtype, buf.data() + offset, dst.data(), n);
        for (size_t i = 0; i < n; ++i) ASSERT_EQ(bits_of(dst[i]), bits_of(want[i])) << i;
        EXPECT_EQ(dst[n], kYPad);
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Isa, ElementwiseIsa, ::testing::ValuesIn(kIsaLevels),
                         [](const ::testing::TestParamInfo<Isa>& info) {
                           return std::string(isa_name(info.param));
                         });

}  // namespace
}  // namespace krea2
