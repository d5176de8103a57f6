// The run-time adapter terms inside linear() / linear_many() (ops/weight_delta.h) against plain float64
// math, on every path: few rows (direct) and many (packed GEMM, OpenBLAS), several products over one x,
// accumulate, a merged weight at another scale, a quantized weight, and the float32 terms under bf16 compute.
// Also the exact low-rank forms of LoHa and LoKr against their dense deltas.
#include <gtest/gtest.h>

#include <cmath>

#include "lora/adapter.h"
#include "lora/delta_math.h"
#include "ops/gemm.h"
#include "ops/weight_decode.h"
#include "ops/weight_delta.h"
#include "support/test_util.h"
#include "tensor/quantize.h"

namespace krea2 {
namespace {

using test::random_floats;

// y = x W0^T + bias + s (x W0'^T...) in float64, with W0 read through the decoder.
std::vector<double> reference(const std::vector<float>& x, int64_t M, const WeightMatrix& w0,
                              const std::vector<float>& dense_delta, const WeightDelta* lr, float s,
                              const float* bias) {
  const int64_t N = w0.rows, K = w0.cols;
  std::vector<float> row(static_cast<size_t>(K));
  std::vector<double> y(static_cast<size_t>(M * N), 0.0);
  for (int64_t o = 0; o < N; ++o) {
    decode_weight_segment(w0, o, 0, K, row.data());
    for (int64_t m = 0; m < M; ++m) {
      double acc = bias ? bias[o] : 0.0;
      for (int64_t k = 0; k < K; ++k) {
        double wk = row[size_t(k)];
        if (!dense_delta.empty()) wk += double(s) * dense_delta[size_t(o * K + k)];
        acc += double(x[size_t(m * K + k)]) * wk;
      }
      if (lr)
        for (int64_t r = 0; r < lr->rank; ++r) {
          double t = 0;
          for (int64_t k = 0; k < K; ++k) t += double(x[size_t(m * K + k)]) * lr->a[r * K + k];
          acc += double(s) * t * lr->b[o * lr->rank + r];
        }
      y[size_t(m * N + o)] = acc;
    }
  }
  return y;
}

double rel(const float* got, const std::vector<double>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    num += (got[i] - ref[i]) * (got[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  return std::sqrt(num / den);
}

struct Layer {
  int64_t N, K, R;
  std::vector<float> w, a, b, bias;
  WeightDelta delta;
  WeightMatrix matrix;
  Layer(int64_t n, int64_t k, int64_t r, uint64_t seed)
      : N(n),
        K(k),
        R(r),
        w(random_floats(size_t(n * k), seed)),
        a(random_floats(size_t(r * k), seed + 1)),
        b(random_floats(size_t(n * r), seed + 2, 0.3f)),
        bias(random_floats(size_t(n), seed + 3)) {
    delta = WeightDelta{R, a.data(), b.data(), nullptr};
    matrix = WeightMatrix{DType::F32, N, K, w.data()};
    matrix.delta = &delta;
  }
};

TEST(LoraApply, LinearEveryPathAndScale) {
  for (LinearBackend backend : {LinearBackend::kPackedGemm, LinearBackend::kOpenBlas})
    for (int64_t M : {1, 3, 4, 5, 37, 200})
      for (float s : {1.0f, 0.5f, 0.0f, -1.25f})
        for (bool accumulate : {false, true})
          for (bool with_bias : {true, false}) {
            set_linear_backend(backend);
            Layer l(70, 48, 5, uint64_t(M));
            const std::vector<float> x = random_floats(size_t(M * l.K), 99);
            std::vector<float> y(size_t(M * l.N), accumulate ? 0.5f : -7.0f);
            LinearScratch scratch;
            const float* bias = with_bias ? l.bias.data() : nullptr;
            {
              const WeightDeltaScaleScope scale(s);
              linear(x.data(), M, l.K, l.matrix, bias, y.data(), l.N, scratch, accumulate);
            }
            const WeightMatrix plain{DType::F32, l.N, l.K, l.w.data()};
            std::vector<double> ref = reference(x, M, plain, {}, &l.delta, s, bias);
            if (accumulate)
              for (double& v : ref) v += 0.5;
            EXPECT_LE(rel(y.data(), ref), 2e-6) << "M " << M << " s " << s << " backend " << int(backend)
                                                << " accumulate " << accumulate << " bias " << with_bias;
          }
  set_linear_backend(LinearBackend::kPackedGemm);
}

TEST(LoraApply, LinearManyMixesWeightsWithAndWithoutTerms) {
  for (int64_t M : {2, 50}) {
    Layer q(64, 40, 4, 1), k(32, 40, 8, 2), v(48, 40, 3, 3);
    v.matrix.delta = nullptr;  // no adapter on this one
    const std::vector<float> x = random_floats(size_t(M * 40), 7);
    std::vector<float> yq(size_t(M * 64)), yk(size_t(M * 32)), yv(size_t(M * 48));
    LinearScratch scratch;
    const WeightDeltaScaleScope scale(0.7f);
    linear_many(x.data(), M, 40,
                {{&q.matrix, yq.data(), 64}, {&k.matrix, yk.data(), 32}, {&v.matrix, yv.data(), 48}},
                scratch);
    for (auto [l, y] : {std::pair{&q, &yq}, std::pair{&k, &yk}, std::pair{&v, &yv}}) {
      const WeightMatrix plain{DType::F32, l->N, l->K, l->w.data()};
      EXPECT_LE(
          rel(y->data(), reference(x, M, plain, {}, l->matrix.delta ? &l->delta : nullptr, 0.7f, nullptr)),
          2e-6)
          << "M " << M << " N " << l->N;
    }
  }
}

// A merged weight W = W0 + D (float32 copy) with `unmerged` = W0, on a quantized W0; at s != 1 the product
// is x W0^T + s x D^T, plus the low-rank term; accumulate adds onto y.
TEST(LoraApply, MergedWeightAtAnotherScaleOnQ8) {
  const int64_t N = 64, K = 64;
  const std::vector<float> w0f = random_floats(size_t(N * K), 5);
  std::vector<uint8_t> q8(size_t(N * dtype_row_bytes(DType::Q8_0, K)));
  for (int64_t o = 0; o < N; ++o)
    quantize_row(DType::Q8_0, w0f.data() + o * K, K, q8.data() + o * dtype_row_bytes(DType::Q8_0, K));
  const WeightMatrix w0{DType::Q8_0, N, K, q8.data()};
  const std::vector<float> dd = random_floats(size_t(N * K), 6, 0.2f);
  std::vector<float> merged(size_t(N * K));
  for (int64_t o = 0; o < N; ++o) decode_weight_segment(w0, o, 0, K, merged.data() + o * K);
  for (size_t i = 0; i < merged.size(); ++i) merged[i] += dd[i];
  Layer l(N, K, 3, 8);
  l.delta.unmerged = &w0;
  WeightMatrix m{DType::F32, N, K, merged.data()};
  m.delta = &l.delta;
  for (int64_t M : {3, 40})
    for (float s : {1.0f, 0.25f, 0.0f}) {
      const std::vector<float> x = random_floats(size_t(M * K), 11);
      std::vector<float> y(size_t(M * N), 1.0f);  // accumulate onto ones
      LinearScratch scratch;
      {
        const WeightDeltaScaleScope scale(s);
        linear(x.data(), M, K, m, l.bias.data(), y.data(), N, scratch, true);
      }
      std::vector<double> ref = reference(x, M, w0, dd, &l.delta, s, l.bias.data());
      for (double& v : ref) v += 1.0;
      EXPECT_LE(rel(y.data(), ref), 2e-6) << "M " << M << " s " << s;
    }
}

// Under bf16 compute the layer's own product rounds its operands, the adapter terms do not: the difference
// with and without the term is the float32 low-rank product.
TEST(LoraApply, TermsStayFloat32UnderBf16Compute) {
  const int64_t M = 30;
  Layer l(64, 64, 4, 21);
  const std::vector<float> x = random_floats(size_t(M * 64), 22);
  std::vector<float> with(size_t(M * 64)), without(size_t(M * 64));
  LinearScratch scratch;
  const GemmComputeScope bf16(Compute::kBf16);
  linear(x.data(), M, 64, l.matrix, nullptr, with.data(), 64, scratch);
  const WeightMatrix plain{DType::F32, 64, 64, l.w.data()};
  linear(x.data(), M, 64, plain, nullptr, without.data(), 64, scratch);
  const std::vector<float> zeros(64 * 64, 0.0f);
  const WeightMatrix zero{DType::F32, 64, 64, zeros.data()};
  std::vector<double> term = reference(x, M, zero, {}, &l.delta, 1.0f, nullptr);
  std::vector<float> diff(with.size());
  for (size_t i = 0; i < diff.size(); ++i) diff[i] = with[i] - without[i];
  EXPECT_LE(rel(diff.data(), term), 1e-5);
}

// LoHa and LoKr: the exact low-rank form B A equals the dense delta.
TEST(LoraApply, LowRankFormsOfLohaAndLokrAreExact) {
  const int64_t out = 24, in = 20;
  std::vector<std::vector<float>> data;
  std::vector<TensorView> views;
  auto view = [&](const std::string& name, Shape shape) {
    data.push_back(random_floats(size_t(shape_numel(shape)), data.size() + 40));
    views.push_back({name, DType::F32, shape, reinterpret_cast<const std::byte*>(data.back().data()),
                     data.back().size() * 4});
  };
  data.reserve(16);
  views.reserve(16);
  view("m.hada_w1_a", {out, 3});
  view("m.hada_w1_b", {3, in});
  view("m.hada_w2_a", {out, 2});
  view("m.hada_w2_b", {2, in});
  view("m.alpha", {});
  view("k.lokr_w1", {4, 5});
  view("k.lokr_w2_a", {6, 2});
  view("k.lokr_w2_b", {2, 4});
  view("j.lokr_w1_a", {3, 1});
  view("j.lokr_w1_b", {1, 4});
  view("j.lokr_w2", {8, 5});
  LoraAdapterImpl adapter;
  parse_adapter(views, {}, "test", adapter);
  ASSERT_EQ(adapter.entries.size(), 3u);
  for (const AdapterEntry& e : adapter.entries) {
    const std::optional<LowRank> lr = low_rank_delta(e, out, in, 0.7, 1e9);
    ASSERT_TRUE(lr) << e.stem;
    std::vector<float> dense(size_t(out * in), 0.0f);
    add_dense_delta(e, out, in, 0.7, dense.data());
    double num = 0, den = 0;
    for (int64_t o = 0; o < out; ++o)
      for (int64_t i = 0; i < in; ++i) {
        double v = 0;
        for (int64_t r = 0; r < lr->rank; ++r)
          v += double(lr->b[size_t(o * lr->rank + r)]) * lr->a[size_t(r * in + i)];
        num += (v - dense[size_t(o * in + i)]) * (v - dense[size_t(o * in + i)]);
        den += double(dense[size_t(o * in + i)]) * dense[size_t(o * in + i)];
      }
    EXPECT_LE(std::sqrt(num / den), 1e-6) << e.stem;
    EXPECT_GT(den, 0) << e.stem;
    // Too costly a form is left to merging.
    EXPECT_FALSE(low_rank_delta(e, out, in, 0.7, 1e-3)) << e.stem;
  }
}

}  // namespace
}  // namespace krea2
