#include "lora/delta_math.h"

#include <algorithm>

#include "lora/resolve.h"
#include "ops/gemm.h"
#include "ops/linear.h"

namespace krea2 {

namespace {

// c (m x n) = a (m x k) b (k x n), through the project's GEMM (float32, whatever the caller's compute mode).
std::vector<float> matmul(const float* a, const float* b, int64_t m, int64_t k, int64_t n) {
  std::vector<float> bt(size_t(n * k));
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = 0; j < n; ++j) bt[size_t(j * k + i)] = b[i * n + j];
  std::vector<float> c(size_t(m * n));
  const GemmComputeScope f32(Compute::kF32);
  LinearScratch scratch;
  linear(a, m, k, WeightMatrix{DType::F32, n, k, bt.data()}, nullptr, c.data(), n, scratch);
  return c;
}

// One Kronecker factor W (o x i) as U (o x k) V (k x i): the decomposed pair, or a full W against an
// identity on its shorter side.
struct Factor {
  int64_t o = 0, i = 0, k = 0;
  std::vector<float> u, v;
};

Factor kron_factor(const TensorView* full, const TensorView* a, const TensorView* b) {
  Factor f;
  if (!full) {
    f.o = a->shape[0];
    f.k = a->shape[1];
    f.i = b->shape[1];
    f.u = read_floats(*a);
    f.v = read_floats(*b);
    return f;
  }
  f.o = full->shape[0];
  f.i = full->shape[1];
  f.k = std::min(f.o, f.i);
  std::vector<float> eye(size_t(f.k * f.k), 0.0f);
  for (int64_t j = 0; j < f.k; ++j) eye[size_t(j * f.k + j)] = 1.0f;
  if (f.o <= f.i) {
    f.u = std::move(eye);
    f.v = read_floats(*full);
  } else {
    f.u = read_floats(*full);
    f.v = std::move(eye);
  }
  return f;
}

// One Kronecker factor as a dense (o x i) matrix.
std::vector<float> dense_factor(const TensorView* full, const TensorView* a, const TensorView* b) {
  if (full) return read_floats(*full);
  const std::vector<float> fa = read_floats(*a), fb = read_floats(*b);
  return matmul(fa.data(), fb.data(), a->shape[0], a->shape[1], b->shape[1]);
}

bool cheap(double k, int64_t out, int64_t in, double cost_limit) {
  return k * double(in + out) <= cost_limit * double(in) * double(out);
}

}  // namespace

std::vector<float> read_floats(const TensorView& t) {
  return to_float_tensor(t).data;
}

std::optional<LowRank> low_rank_delta(const AdapterEntry& e, int64_t out, int64_t in, double scale,
                                      double cost_limit) {
  const float sf = float(scale * e.factor);
  LowRank lr;
  if (e.kind == DeltaKind::kLora) {
    lr.rank = e.rank;
    lr.a = read_floats(*e.down);
    lr.b = read_floats(*e.up);
    for (float& v : lr.b) v *= sf;
    return lr;
  }
  if (e.kind == DeltaKind::kLoha) {
    const int64_t r1 = e.hada[1]->shape[0], r2 = e.hada[3]->shape[0];
    if (!cheap(double(r1) * double(r2), out, in, cost_limit)) return std::nullopt;
    const std::vector<float> w1a = read_floats(*e.hada[0]), w1b = read_floats(*e.hada[1]);
    const std::vector<float> w2a = read_floats(*e.hada[2]), w2b = read_floats(*e.hada[3]);
    lr.rank = r1 * r2;
    lr.a.resize(size_t(lr.rank * in));
    lr.b.resize(size_t(out * lr.rank));
    for (int64_t i = 0; i < r1; ++i)
      for (int64_t j = 0; j < r2; ++j) {
        const int64_t k = i * r2 + j;
        for (int64_t c = 0; c < in; ++c)
          lr.a[size_t(k * in + c)] = w1b[size_t(i * in + c)] * w2b[size_t(j * in + c)];
        for (int64_t o = 0; o < out; ++o)
          lr.b[size_t(o * lr.rank + k)] = sf * w1a[size_t(o * r1 + i)] * w2a[size_t(o * r2 + j)];
      }
    return lr;
  }
  if (e.kind == DeltaKind::kLokr) {
    const LokrDims d = lokr_dims(e);
    const double k1 = e.lokr[kW1] ? double(std::min(d.o1, d.i1)) : double(e.lokr[kW1A]->shape[1]);
    const double k2 = e.lokr[kW2] ? double(std::min(d.o2, d.i2)) : double(e.lokr[kW2A]->shape[1]);
    if (!cheap(k1 * k2, out, in, cost_limit)) return std::nullopt;
    const Factor f1 = kron_factor(e.lokr[kW1], e.lokr[kW1A], e.lokr[kW1B]);
    const Factor f2 = kron_factor(e.lokr[kW2], e.lokr[kW2A], e.lokr[kW2B]);
    lr.rank = f1.k * f2.k;
    lr.a.resize(size_t(lr.rank * in));
    lr.b.resize(size_t(out * lr.rank));
    // A = kron(V1, V2) (k1 k2 x i1 i2), B = f kron(U1, U2) (o1 o2 x k1 k2).
    for (int64_t p = 0; p < f1.k; ++p)
      for (int64_t q = 0; q < f2.k; ++q) {
        const int64_t k = p * f2.k + q;
        for (int64_t c = 0; c < f1.i; ++c)
          for (int64_t x = 0; x < f2.i; ++x)
            lr.a[size_t(k * in + c * f2.i + x)] = f1.v[size_t(p * f1.i + c)] * f2.v[size_t(q * f2.i + x)];
        for (int64_t a = 0; a < f1.o; ++a)
          for (int64_t b = 0; b < f2.o; ++b)
            lr.b[size_t((a * f2.o + b) * lr.rank + k)] =
                sf * f1.u[size_t(a * f1.k + p)] * f2.u[size_t(b * f2.k + q)];
      }
    return lr;
  }
  return std::nullopt;
}

void add_dense_delta(const AdapterEntry& e, int64_t out, int64_t in, double scale, float* dst) {
  const float sf = float(scale * e.factor);
  const int64_t n = out * in;
  switch (e.kind) {
    case DeltaKind::kLora: {
      const std::vector<float> up = read_floats(*e.up), down = read_floats(*e.down);
      const std::vector<float> d = matmul(up.data(), down.data(), out, e.rank, in);
      for (int64_t i = 0; i < n; ++i) dst[i] += sf * d[size_t(i)];
      break;
    }
    case DeltaKind::kLoha: {
      std::vector<float> t[4];
      for (int j = 0; j < 4; ++j) t[j] = read_floats(*e.hada[j]);
      const std::vector<float> p1 = matmul(t[0].data(), t[1].data(), out, e.hada[1]->shape[0], in);
      const std::vector<float> p2 = matmul(t[2].data(), t[3].data(), out, e.hada[3]->shape[0], in);
      for (int64_t i = 0; i < n; ++i) dst[i] += sf * (p1[size_t(i)] * p2[size_t(i)]);
      break;
    }
    case DeltaKind::kLokr: {
      const LokrDims d = lokr_dims(e);
      const std::vector<float> w1 = dense_factor(e.lokr[kW1], e.lokr[kW1A], e.lokr[kW1B]);
      const std::vector<float> w2 = dense_factor(e.lokr[kW2], e.lokr[kW2A], e.lokr[kW2B]);
      for (int64_t a = 0; a < d.o1; ++a)
        for (int64_t b = 0; b < d.o2; ++b)
          for (int64_t c = 0; c < d.i1; ++c) {
            const float s = sf * w1[size_t(a * d.i1 + c)];
            float* row = dst + (a * d.o2 + b) * in + c * d.i2;
            for (int64_t x = 0; x < d.i2; ++x) row[x] += s * w2[size_t(b * d.i2 + x)];
          }
      break;
    }
    case DeltaKind::kDiff: {
      const std::vector<float> d = read_floats(*e.diff);
      for (int64_t i = 0; i < n; ++i) dst[i] += sf * d[size_t(i)];
      break;
    }
    default:
      break;
  }
}

}  // namespace krea2
