// Encoders (tensor/quantize.h): legacy formats bit-identical to ggml / gguf-py, round trips within the
// format's step, the fixture blocks reproduced, K formats at least as accurate as ggml's reference
// quantizer (RMSE table and speed printed), fp8 codecs exhaustively, the Hadamard rotation and int8 convrot.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "krea2/error.h"
#include "support/ggml_reference_quant.h"
#include "support/test_util.h"
#include "tensor/convert.h"
#include "tensor/quant_blocks.h"
#include "tensor/quantize.h"

namespace krea2 {
namespace {

using test::ggml_ref::Rounding;

constexpr DType kLegacy[] = {DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1};
constexpr DType kKTypes[] = {DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K};

std::vector<uint8_t> quantize(DType t, const std::vector<float>& x) {
  std::vector<uint8_t> out(size_t(dtype_row_bytes(t, int64_t(x.size()))));
  quantize_row(t, x.data(), int64_t(x.size()), out.data());
  return out;
}

std::vector<uint8_t> reference(DType t, const std::vector<float>& x, Rounding r = Rounding::kGgufPy) {
  std::vector<uint8_t> out(size_t(dtype_row_bytes(t, int64_t(x.size()))));
  test::ggml_ref::quantize(t, x.data(), int64_t(x.size()), out.data(), r);
  return out;
}

std::vector<float> decode(DType t, const std::vector<uint8_t>& bytes, int64_t n) {
  std::vector<float> out(static_cast<size_t>(n));
  decode_row_reference(t, bytes.data(), n, out.data());
  return out;
}

float half_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32(h);
}

// Seconds of CPU time of this thread: the speed figures stay meaningful on a busy machine.
double thread_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

std::vector<float> gaussian(size_t n, uint64_t seed, float sigma = 1.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g(0.0f, sigma);
  std::vector<float> v(n);
  for (auto& x : v) x = g(rng);
  return v;
}

std::vector<float> student_t(size_t n, uint64_t seed, float dof) {
  std::mt19937_64 rng(seed);
  std::student_t_distribution<float> t(dof);
  std::vector<float> v(n);
  for (auto& x : v) x = t(rng);
  return v;
}

// ---------------------------------------------------------------------------------------------------------
// Legacy formats: bit identity.

// Blocks of 32 meant to hit every rule of the legacy quantizers.
std::vector<float> legacy_cases() {
  std::vector<float> v;
  auto add = [&](const std::vector<float>& b) { v.insert(v.end(), b.begin(), b.end()); };
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<float> u01(0.0f, 1.0f);
  for (float sigma : {1.0f, 1e-3f, 37.0f, 1e-6f, 3e-5f})
    add(gaussian(32 * 200, 11 + uint64_t(sigma * 1e6), sigma));
  add(test::random_floats(32 * 200, 12, 1.0f));
  for (int i = 0; i < 32 * 100; ++i) v.push_back(u01(rng) * 0.5f + 0.25f);  // all positive
  for (int i = 0; i < 32 * 100; ++i) v.push_back(-u01(rng) - 2.0f);         // all negative
  for (float c : {0.0f, 1.0f, -1.0f, 3.5f, -1e-3f, 65504.0f}) add(std::vector<float>(32, c));
  std::vector<float> z(32, 0.0f);
  z[0] = -0.0f;  // -0 first (documented: ggml's rule, not numpy's)
  add(z);
  // Largest |x| twice with opposite signs: the first one sets the sign.
  for (int first_neg = 0; first_neg < 2; ++first_neg) {
    std::vector<float> b = gaussian(32, 99 + uint64_t(first_neg));
    for (auto& x : b) x = std::fmin(std::fmax(x, -1.9f), 1.9f);
    b[3] = first_neg ? -2.0f : 2.0f;
    b[20] = -b[3];
    add(b);
  }
  // Exact ties: d = 1 (max -8 / -16, amax 127, range 15 / 31) and values on half-integers.
  for (float top : {-8.0f, -16.0f, 127.0f}) {
    for (int rep = 0; rep < 4; ++rep) {
      std::vector<float> b(32);
      b[0] = top;
      for (int i = 1; i < 32; ++i) b[i] = float(int(u01(rng) * 2 * std::fabs(top)) - std::fabs(top)) + 0.5f;
      for (auto& x : b) x = std::fmin(std::fmax(x, -std::fabs(top)), std::fabs(top));
      b[0] = top;
      add(b);
    }
  }
  for (int rep = 0; rep < 8; ++rep) {  // min 0, max 15 / 31: (x - min) id on half-integers
    std::vector<float> b(32);
    const float range = rep % 2 ? 31.0f : 15.0f;
    for (int i = 0; i < 32; ++i) b[i] = float(int(u01(rng) * range)) + 0.5f;
    b[0] = 0.0f;
    b[1] = range;
    add(b);
  }
  // Near-ties at generic scales: values k + 1/2 steps from the grid, a few ulps either side, so that where
  // float32 rounds (once or twice) decides the code.
  for (int rep = 0; rep < 3000; ++rep) {
    std::vector<float> b(32);
    const float scale = std::ldexp(1.0f + u01(rng), int(u01(rng) * 20) - 10);
    const int kind = rep % 3;  // 0: Q4_0-like max -8 d, 1: Q5_0-like, 2: Q8_0-like
    const float top = kind == 0 ? 8.0f : kind == 1 ? 16.0f : 127.0f;
    b[0] = -top * scale;
    for (int i = 1; i < 32; ++i) {
      const float k = float(int(u01(rng) * (2 * top - 1)) - top + 1) + 0.5f;
      float x = k * scale;
      for (int s = int(u01(rng) * 7) - 3; s != 0; s += s > 0 ? -1 : 1)
        x = std::nextafter(x, s > 0 ? INFINITY : -INFINITY);
      b[i] = x;
    }
    add(b);
  }
  // The same for Q4_1 / Q5_1 (min 0, max = levels x scale): (x - min) id + 0.5 can only round differently
  // next to a power of two, so the values sit a few ulps from (2^j - 1/2) steps.
  for (int rep = 0; rep < 3000; ++rep) {
    std::vector<float> b(32);
    const float scale = std::ldexp(1.0f + u01(rng), int(u01(rng) * 20) - 10);
    const int levels = rep % 2 ? 31 : 15;
    b[0] = 0.0f;
    b[1] = float(levels) * scale;
    for (int i = 2; i < 32; ++i) {
      const int k = 1 << int(u01(rng) * (levels == 31 ? 5 : 4));  // 1 .. 16 (8)
      float x = (float(k) - 0.5f) * scale;
      for (int s = int(u01(rng) * 9) - 4; s != 0; s += s > 0 ? -1 : 1)
        x = std::nextafter(x, s > 0 ? INFINITY : -INFINITY);
      b[i] = x;
    }
    add(b);
  }
  // Extreme magnitudes: d overflows fp16 (stored inf, as ggml), d subnormal or zero in fp16.
  for (float sigma : {1e30f, 1e7f, 1e-8f, 1e-12f, 1e-30f})
    add(gaussian(32 * 4, 5 + uint64_t(-std::log10(sigma)), sigma));
  return v;
}

TEST(LegacyQuant, BitIdenticalToGgmlReference) {
  const std::vector<float> x = legacy_cases();
  for (DType t : kLegacy) {
    const auto ours = quantize(t, x), ref = reference(t, x);
    const int64_t bb = dtype_block_bytes(t), nb = int64_t(x.size()) / 32;
    int64_t bad = 0;
    for (int64_t i = 0; i < nb; ++i)
      if (std::memcmp(ours.data() + i * bb, ref.data() + i * bb, size_t(bb)) != 0 && bad++ < 3)
        ADD_FAILURE() << dtype_name(t) << " block " << i << " differs from the reference (first value "
                      << x[size_t(i) * 32] << ")";
    EXPECT_EQ(bad, 0) << dtype_name(t) << ": " << bad << " of " << nb << " blocks differ";
  }
}

// The near-tie blocks do separate the two places float32 can round; gguf-py's choice is the one we follow.
TEST(LegacyQuant, RoundingOnceOrTwiceMatters) {
  const std::vector<float> x = legacy_cases();
  for (DType t : {DType::Q4_0, DType::Q5_0, DType::Q4_1, DType::Q5_1}) {
    const auto ours = quantize(t, x);
    const auto once = reference(t, x, Rounding::kOnce), twice = reference(t, x, Rounding::kTwice);
    const bool gguf_once = t == DType::Q4_0 || t == DType::Q5_0;
    EXPECT_EQ(ours, gguf_once ? once : twice) << dtype_name(t);
    int64_t differ = 0;
    for (size_t i = 0; i < once.size(); ++i) differ += once[i] != twice[i];
    std::printf("%s: rounding once vs twice changes %lld of %zu bytes of the test blocks\n",
                std::string(dtype_name(t)).c_str(), (long long)differ, once.size());
    EXPECT_GT(differ, 0) << dtype_name(t) << ": the near-tie blocks do not test the rounding";
  }
}

// |decode(quantize(x)) - x| <= the step bound of each format (derived in the comments), block by block.
TEST(LegacyQuant, RoundTripWithinStep) {
  std::vector<float> x = gaussian(32 * 2000, 3);
  const auto more = test::random_floats(32 * 1000, 4, 5.0f);
  x.insert(x.end(), more.begin(), more.end());
  for (DType t : kLegacy) {
    const auto q = quantize(t, x);
    const auto y = decode(t, q, int64_t(x.size()));
    const int64_t bb = dtype_block_bytes(t);
    double worst = 0;
    for (size_t b = 0; b < x.size() / 32; ++b) {
      const float* xb = &x[b * 32];
      const uint8_t* qb = q.data() + b * size_t(bb);
      float mn = xb[0], mx = xb[0], amax = 0, smax = 0;
      for (int i = 0; i < 32; ++i) {
        mn = std::fmin(mn, xb[i]);
        mx = std::fmax(mx, xb[i]);
        if (std::fabs(xb[i]) > amax) {
          amax = std::fabs(xb[i]);
          smax = xb[i];
        }
      }
      const float dh = half_at(qb);
      double bound;  // the rounding error of the level at the exact d, + the levels times |d - fp16(d)|
      switch (t) {
        case DType::Q8_0: {  // q = round(x / d), |q| <= 127
          const double d = amax / 127.0;
          bound = d / 2 + 127 * std::fabs(d - dh);
          break;
        }
        case DType::Q4_0:
        case DType::Q5_0: {  // q - h = round-half-up(x / d) clamped to h - 1: the clamped side is off by <= d
          const double h = t == DType::Q4_0 ? 8 : 16, d = std::fabs(smax / h);
          bound = d + h * std::fabs(d - std::fabs(dh));
          break;
        }
        default: {  // Q4_1 / Q5_1: q = round-half-up((x - min) / d) <= levels - 1, never clamped; m =
                    // fp16(min)
          const double lv = t == DType::Q4_1 ? 15 : 31, d = (double(mx) - mn) / lv;
          bound = d / 2 + lv * std::fabs(d - dh) + std::fabs(double(mn) - half_at(qb + 2));
        }
      }
      bound = bound * (1 + 1e-6) + 1e-6 * amax;  // float32 evaluation
      for (int i = 0; i < 32; ++i) {
        const double err = std::fabs(double(y[b * 32 + i]) - xb[i]);
        worst = std::fmax(worst, err / bound);
        ASSERT_LE(err, bound) << dtype_name(t) << " block " << b << " element " << i;
      }
    }
    std::printf("%s: worst round-trip error %.3f of its bound\n", std::string(dtype_name(t)).c_str(), worst);
  }
}

// ---------------------------------------------------------------------------------------------------------
// The fixture's gguf-py blocks: requantizing their dequantized values gives the same bytes.

// The data of one tensor of a GGUF v3 file (a minimal reader: header, metadata skipped, tensor infos).
std::vector<uint8_t> gguf_tensor_bytes(const std::string& path, const std::string& name, int64_t nbytes) {
  std::ifstream f(path, std::ios::binary);
  std::vector<char> all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  size_t p = 0;
  auto take = [&](size_t n) {
    if (p + n > all.size()) throw std::runtime_error("truncated GGUF");
    const char* r = all.data() + p;
    p += n;
    return r;
  };
  auto u32 = [&] {
    uint32_t v;
    std::memcpy(&v, take(4), 4);
    return v;
  };
  auto u64 = [&] {
    uint64_t v;
    std::memcpy(&v, take(8), 8);
    return v;
  };
  auto str = [&] {
    const uint64_t n = u64();
    return std::string(take(n), n);
  };
  const size_t sizes[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
  std::function<void(uint32_t)> skip = [&](uint32_t type) {
    if (type == 8) {
      str();
    } else if (type == 9) {
      const uint32_t et = u32();
      const uint64_t n = u64();
      for (uint64_t i = 0; i < n; ++i) skip(et);
    } else {
      take(sizes[type]);
    }
  };
  if (std::string(take(4), 4) != "GGUF" || u32() != 3) throw std::runtime_error("not GGUF v3");
  const uint64_t nt = u64(), nkv = u64();
  uint64_t alignment = 32;
  for (uint64_t i = 0; i < nkv; ++i) {
    const std::string key = str();
    const uint32_t type = u32();
    if (key == "general.alignment" && type == 4)
      alignment = u32();
    else
      skip(type);
  }
  uint64_t offset = UINT64_MAX;
  for (uint64_t i = 0; i < nt; ++i) {
    const std::string n = str();
    const uint32_t nd = u32();
    for (uint32_t k = 0; k < nd; ++k) u64();
    u32();
    const uint64_t off = u64();
    if (n == name) offset = off;
  }
  if (offset == UINT64_MAX) throw std::runtime_error("no tensor " + name);
  const size_t start = (p + alignment - 1) / alignment * alignment + offset;
  if (start + size_t(nbytes) > all.size()) throw std::runtime_error("tensor past the end");
  return std::vector<uint8_t>(all.begin() + long(start), all.begin() + long(start) + nbytes);
}

TEST(LegacyQuant, RequantizingFixtureBlocksReproducesThem) {
  const std::string dir = test::fixture_dir("quant/gguf_kquants_medium");
  SafetensorsFile deq(dir + "/dequant_reference.safetensors");
  const std::string pre = "model.diffusion_model.";
  const std::pair<std::string, DType> cases[] = {
      {"first.weight", DType::Q8_0},
      {"txtfusion.layerwise_blocks.0.attn.wq.weight", DType::Q4_0},
      {"txtfusion.layerwise_blocks.0.attn.gate.weight", DType::Q4_1},
      {"txtfusion.layerwise_blocks.0.attn.wo.weight", DType::Q5_0},
      {"txtfusion.layerwise_blocks.0.mlp.gate.weight", DType::Q5_1},
  };
  for (const auto& [name, t] : cases) {
    const TensorView* v = deq.find(pre + name);
    ASSERT_NE(v, nullptr) << name;
    const Tensor w = to_float_tensor(*v);
    const auto stored =
        gguf_tensor_bytes(dir + "/krea2-gguf_kquants_medium.gguf", pre + name, dtype_row_bytes(t, w.numel()));
    // The dequantized values are what the file decodes to (a check of this test's reader).
    ASSERT_EQ(decode(t, stored, w.numel()), w.data) << name;
    const auto again = quantize(t, w.data);
    int64_t differ = 0;
    const int64_t bb = dtype_block_bytes(t);
    for (int64_t b = 0; b < w.numel() / 32; ++b)
      differ += std::memcmp(again.data() + b * bb, stored.data() + b * bb, size_t(bb)) != 0;
    EXPECT_EQ(differ, 0) << name << " (" << dtype_name(t) << "): " << differ << " of " << w.numel() / 32
                         << " blocks differ";
  }
}

// ---------------------------------------------------------------------------------------------------------
// K formats.

struct KStats {
  double rmse_ours = 0, rmse_ggml = 0, ns_ours = 0, ns_ggml = 0;
};

double rmse(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
  return std::sqrt(s / double(a.size()));
}

KStats compare_with_ggml(DType t, const std::vector<float>& x, int64_t row) {
  KStats s;
  const int64_t rows = int64_t(x.size()) / row, rb = dtype_row_bytes(t, row);
  std::vector<uint8_t> ours(size_t(rows * rb)), ref(size_t(rows * rb));
  const double t0 = thread_seconds();
  for (int64_t r = 0; r < rows; ++r) quantize_row(t, x.data() + r * row, row, ours.data() + r * rb);
  const double t1 = thread_seconds();
  for (int64_t r = 0; r < rows; ++r)
    test::ggml_ref::quantize(t, x.data() + r * row, row, ref.data() + r * rb, Rounding::kGgufPy);
  const double t2 = thread_seconds();
  const double n = double(x.size());
  s.ns_ours = (t1 - t0) * 1e9 / n;
  s.ns_ggml = (t2 - t1) * 1e9 / n;
  s.rmse_ours = rmse(decode(t, ours, int64_t(x.size())), x);
  s.rmse_ggml = rmse(decode(t, ref, int64_t(x.size())), x);
  return s;
}

// RMSE(ours) <= 1.02 RMSE(ggml's reference algorithm), 256 x 4096 weights each of N(0, 1), Student-t(4) and
// N(0, 0.02^2) (the size of real weights, where fp16 d of Q5_K / Q6_K is subnormal); prints the table and
// single-thread speeds.
TEST(KQuant, AtLeastAsAccurateAsGgml) {
  const int64_t row = 4096, rows = 256;
  const std::pair<const char*, std::vector<float>> dists[] = {
      {"N(0,1)", gaussian(size_t(row * rows), 21)},
      {"student-t4", student_t(size_t(row * rows), 22, 4.0f)},
      {"N(0,.02)", gaussian(size_t(row * rows), 23, 0.02f)},
  };
  std::printf("type  weights     RMSE ours    RMSE ggml    ours/ggml  ns/el ours  ns/el ggml\n");
  for (DType t : kKTypes)
    for (const auto& [what, x] : dists) {
      const KStats s = compare_with_ggml(t, x, row);
      std::printf("%-5s %-10s  %.6e  %.6e  %.4f     %7.1f     %7.1f\n", std::string(dtype_name(t)).c_str(),
                  what, s.rmse_ours, s.rmse_ggml, s.rmse_ours / s.rmse_ggml, s.ns_ours, s.ns_ggml);
      EXPECT_LE(s.rmse_ours, 1.02 * s.rmse_ggml) << dtype_name(t) << " " << what;
      EXPECT_GT(s.rmse_ours, 0.0);
    }
}

// One super-block's decoded grid: per element, the representable values are S q - M for the element's
// sub-block (S, M) and q in [qlo, qhi].
struct Grid {
  float S[16], M[16];
  int sub, qlo, qhi;
};

Grid parse_grid(DType t, const uint8_t* b) {
  Grid g{};
  switch (t) {
    case DType::Q2_K: {
      const float d = half_at(b + 80), dm = half_at(b + 82);
      g.sub = 16, g.qlo = 0, g.qhi = 3;
      for (int j = 0; j < 16; ++j) g.S[j] = d * float(b[j] & 15), g.M[j] = dm * float(b[j] >> 4);
      break;
    }
    case DType::Q3_K: {
      const float d = half_at(b + 108);
      g.sub = 16, g.qlo = -4, g.qhi = 3;
      for (int i = 0; i < 16; ++i) {
        const int lo = i < 8 ? b[96 + i] & 15 : b[96 + i - 8] >> 4;
        const int hi = (b[96 + 8 + i % 4] >> (2 * (i / 4))) & 3;
        g.S[i] = d * float((lo | hi << 4) - 32), g.M[i] = 0;
      }
      break;
    }
    case DType::Q4_K:
    case DType::Q5_K: {
      const float d = half_at(b), dm = half_at(b + 2);
      const uint8_t* s = b + 4;
      g.sub = 32, g.qlo = 0, g.qhi = t == DType::Q4_K ? 15 : 31;
      for (int j = 0; j < 8; ++j) {
        const int sc = j < 4 ? s[j] & 63 : (s[j + 4] & 15) | (s[j - 4] >> 6) << 4;
        const int mn = j < 4 ? s[j + 4] & 63 : (s[j + 4] >> 4) | (s[j] >> 6) << 4;
        g.S[j] = d * float(sc), g.M[j] = dm * float(mn);
      }
      break;
    }
    default: {  // Q6_K
      const float d = half_at(b + 208);
      g.sub = 16, g.qlo = -32, g.qhi = 31;
      for (int j = 0; j < 16; ++j) g.S[j] = d * float(int8_t(b[192 + j])), g.M[j] = 0;
    }
  }
  return g;
}

// Every element decodes to the grid value nearest to it (so its error is the distance from x to its
// sub-block's grid: at most half a step inside the grid's span), scales are finite and the affine formats'
// d, dmin are >= 0.
void check_k_blocks(DType t, const std::vector<float>& x, const std::string& what) {
  const auto q = quantize(t, x);
  const auto y = decode(t, q, int64_t(x.size()));
  const int64_t bb = dtype_block_bytes(t);
  for (size_t b = 0; b < x.size() / 256; ++b) {
    const uint8_t* qb = q.data() + b * size_t(bb);
    const int doff = t == DType::Q2_K ? 80 : t == DType::Q3_K ? 108 : t == DType::Q6_K ? 208 : 0;
    const float d = half_at(qb + doff);
    ASSERT_TRUE(std::isfinite(d)) << what << " block " << b;
    if (t == DType::Q2_K || t == DType::Q4_K || t == DType::Q5_K) {
      const float dm = half_at(qb + (t == DType::Q2_K ? 82 : 2));
      ASSERT_TRUE(std::isfinite(dm) && d >= 0 && dm >= 0) << what << " block " << b;
    }
    const Grid g = parse_grid(t, qb);
    for (int e = 0; e < 256; ++e) {
      const float xv = x[b * 256 + size_t(e)], yv = y[b * 256 + size_t(e)];
      ASSERT_TRUE(std::isfinite(yv)) << what;
      const float S = g.S[e / g.sub], M = g.M[e / g.sub];
      double nearest = INFINITY;
      for (int k = g.qlo; k <= g.qhi; ++k) nearest = std::fmin(nearest, std::fabs(double(S) * k - M - xv));
      const double tol = 1e-6 * (std::fabs(xv) + std::fabs(M) + std::fabs(S) * g.qhi) + 1e-30;
      ASSERT_LE(std::fabs(double(yv) - xv), nearest + tol) << what << " block " << b << " element " << e;
    }
  }
}

TEST(KQuant, BlocksDecodeToTheirNearestGridValues) {
  std::vector<std::pair<std::string, std::vector<float>>> cases;
  cases.push_back({"gaussian", gaussian(256 * 64, 31)});
  cases.push_back({"student-t2", student_t(256 * 64, 32, 2.0f)});
  cases.push_back({"uniform", test::random_floats(256 * 64, 33, 1.0f)});
  std::vector<float> mixed = gaussian(256 * 16, 34);
  for (size_t i = 0; i < mixed.size(); ++i) {
    if (i % 256 < 32) mixed[i] = 0;                           // zero sub-blocks
    if (i % 256 >= 64 && i % 256 < 80) mixed[i] *= 1e-4f;     // tiny sub-blocks next to large ones
    if (i % 512 == 300) mixed[i] = 40;                        // spikes
    if (i % 1024 >= 768) mixed[i] = std::fabs(mixed[i]) + 1;  // all positive
  }
  cases.push_back({"mixed", mixed});
  for (float sigma : {1e-7f, 3e-5f, 1e4f, 1e9f})
    cases.push_back({"sigma " + std::to_string(sigma), gaussian(256 * 8, 35, sigma)});
  for (const auto& [what, x] : cases)
    for (DType t : kKTypes) check_k_blocks(t, x, std::string(dtype_name(t)) + " " + what);
}

// Zeros decode to zeros; a constant block to the constant within what fp16 can hold. The first encoding
// tried (d = fitted scale / code range, nearest codes, the last level) is off by at most (levels x codes) x
// |d - fp16(d)| <= nq cmax max(2^-11 |d|, 2^-25) per element (fp16 normal / subnormal), i.e. <= 2^-11 |c| +
// nq cmax 2^-25 (twice that with a min as well); every later encoding is kept only if it is better, and a
// constant block has one error for all its elements.
TEST(KQuant, ZeroAndConstantBlocks) {
  const std::pair<DType, double> range[] = {{DType::Q2_K, 3 * 15},
                                            {DType::Q3_K, 4 * 32},
                                            {DType::Q4_K, 15 * 63},
                                            {DType::Q5_K, 31 * 63},
                                            {DType::Q6_K, 32 * 128}};
  for (const auto& [t, nqc] : range) {
    const auto z = decode(t, quantize(t, std::vector<float>(512, 0.0f)), 512);
    for (float v : z) ASSERT_EQ(v, 0.0f) << dtype_name(t);
    for (float c : {1.0f, -1.0f, 0.3f, -2.7e-3f, 1234.5f, 1e-5f}) {
      const auto y = decode(t, quantize(t, std::vector<float>(256, c)), 256);
      const double bound = 2 * (std::fabs(c) * std::ldexp(1.0, -11) + nqc * std::ldexp(1.0, -25));
      for (float v : y) ASSERT_NEAR(v, c, bound) << dtype_name(t) << " " << c;
    }
  }
}

// Quantizing the whole model (12.9B weights) on 2 cores must take minutes: < 2 us per element here is a
// generous bound (the figures are printed by AtLeastAsAccurateAsGgml; see also quantize_k.cpp).
TEST(KQuant, Speed) {
  const std::vector<float> x = gaussian(4096 * 16, 41);
  std::vector<uint8_t> out(x.size() * 4);
  for (DType t : {DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q2_K, DType::Q3_K,
                  DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::F16, DType::BF16}) {
    quantize_row(t, x.data(), 4096, out.data());  // warm up (page faults of out)
    const double t0 = thread_seconds();
    for (int64_t r = 0; r < 16; ++r) quantize_row(t, x.data() + r * 4096, 4096, out.data());
    const double ns = (thread_seconds() - t0) * 1e9 / double(x.size());
    std::printf("%-5s %8.1f ns/element  %8.2f M elements/s (one thread)\n",
                std::string(dtype_name(t)).c_str(), ns, 1e3 / ns);
    EXPECT_LT(ns, 2000.0) << dtype_name(t);
  }
}

// ---------------------------------------------------------------------------------------------------------
// quantize_row: plain types and argument checks.

TEST(QuantizeRow, PlainTypesAndErrors) {
  const std::vector<float> x = {1.0f, -2.5f, 1e-8f, 65519.0f, 65520.0f, 3.14159265f, -0.0f, 1e30f};
  std::vector<uint8_t> out(32);
  quantize_row(DType::F32, x.data(), 8, out.data());
  EXPECT_EQ(std::memcmp(out.data(), x.data(), 32), 0);
  quantize_row(DType::F16, x.data(), 8, out.data());
  quantize_row(DType::BF16, x.data(), 8, out.data() + 16);
  for (int i = 0; i < 8; ++i) {
    uint16_t h, b;
    std::memcpy(&h, out.data() + 2 * i, 2);
    std::memcpy(&b, out.data() + 16 + 2 * i, 2);
    EXPECT_EQ(h, f32_to_f16(x[size_t(i)]));
    EXPECT_EQ(b, f32_to_bf16(x[size_t(i)]));
  }
  EXPECT_THROW(quantize_row(DType::Q8_0, x.data(), 8, out.data()), Error);     // not a whole block
  EXPECT_THROW(quantize_row(DType::I8, x.data(), 8, out.data()), Error);       // not quantizable
  EXPECT_THROW(quantize_row(DType::F8_E4M3, x.data(), 8, out.data()), Error);  // fp8 needs a scale
  EXPECT_THROW(quantize_row(DType::F32, x.data(), -1, out.data()), Error);
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q5_0,
                  DType::Q5_1, DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K})
    EXPECT_TRUE(dtype_is_quantizable(t)) << dtype_name(t);
  for (DType t : {DType::F64, DType::I8, DType::U8, DType::BOOL, DType::F8_E4M3, DType::F8_E5M2})
    EXPECT_FALSE(dtype_is_quantizable(t)) << dtype_name(t);
  quantize_row(DType::Q4_K, x.data(), 0, out.data());  // an empty row is fine
}

// Non-finite inputs give unspecified codes but must not crash (nor convert NaN to an integer: the
// conversions are guarded); the block scales of the K formats stay finite.
TEST(QuantizeRow, NonFiniteInputsAreSafe) {
  std::vector<float> x = gaussian(512, 81);
  x[3] = NAN;
  x[100] = INFINITY;
  x[300] = -INFINITY;
  x[301] = NAN;
  std::vector<uint8_t> out(4096);
  for (DType t : {DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1,
                  DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K})
    quantize_row(t, x.data(), 512, out.data());
  for (DType t : kKTypes) {
    quantize_row(t, x.data(), 512, out.data());
    std::vector<float> y(512);
    decode_row_reference(t, out.data(), 512, y.data());
    for (float v : y) EXPECT_TRUE(std::isfinite(v)) << dtype_name(t);
  }
  std::vector<int8_t> q(512);
  quantize_int8_convrot_row(x.data(), 512, 16, q.data());
  std::vector<uint8_t> c(512);
  quantize_fp8_scaled(DType::F8_E4M3, x.data(), 512, c.data());
}

// ---------------------------------------------------------------------------------------------------------
// fp8.

using Encoder = uint8_t (*)(float);
using Decoder = float (*)(uint8_t);

struct Fp8 {
  const char* name;
  Encoder enc;
  Decoder dec;
  uint8_t max_code;
};
const Fp8 kFp8[] = {{"e4m3", f32_to_f8_e4m3, f8_e4m3_to_f32, 0x7E},
                    {"e5m2", f32_to_f8_e5m2, f8_e5m2_to_f32, 0x7B}};

TEST(Fp8, EveryCodeRoundTripsAndEveryMidpointTiesToEven) {
  for (const Fp8& f : kFp8) {
    for (int c = 0; c < 256; ++c) {
      const float v = f.dec(uint8_t(c));
      if (std::isnan(v) || std::isinf(v)) continue;
      EXPECT_EQ(f.enc(v), c == 0x80 ? 0x80 : c) << f.name << " code " << c;
    }
    // Positive codes 0 .. max are increasing; between neighbours a and a + 1 (both signs) the midpoint goes
    // to the even code, the floats just below / above it to a / a + 1.
    for (int a = 0; a < f.max_code; ++a) {
      const float lo = f.dec(uint8_t(a)), hi = f.dec(uint8_t(a + 1));
      ASSERT_LT(lo, hi) << f.name;
      const float mid = (lo + hi) / 2;  // exact: fp8 values have few bits
      ASSERT_EQ(double(mid), (double(lo) + hi) / 2);
      for (int sign = 0; sign < 2; ++sign) {
        const float s = sign ? -1.0f : 1.0f;
        const int sb = sign ? 0x80 : 0;
        const int even = (a % 2 == 0 ? a : a + 1) | sb;
        EXPECT_EQ(f.enc(s * mid), even) << f.name << " midpoint of " << a << ", " << a + 1;
        EXPECT_EQ(f.enc(s * std::nextafter(mid, -INFINITY)), a | sb) << f.name << " below midpoint " << a;
        EXPECT_EQ(f.enc(s * std::nextafter(mid, INFINITY)), (a + 1) | sb)
            << f.name << " above midpoint " << a;
      }
    }
  }
}

TEST(Fp8, SaturationNanInfinity) {
  EXPECT_EQ(f32_to_f8_e4m3(448.0f), 0x7E);
  EXPECT_EQ(f32_to_f8_e4m3(463.99f), 0x7E);
  EXPECT_EQ(f32_to_f8_e4m3(464.0f), 0x7E);
  EXPECT_EQ(f32_to_f8_e4m3(500.0f), 0x7E);
  EXPECT_EQ(f32_to_f8_e4m3(-1e30f), 0xFE);
  EXPECT_EQ(f32_to_f8_e4m3(INFINITY), 0x7E);
  EXPECT_EQ(f32_to_f8_e4m3(-INFINITY), 0xFE);
  EXPECT_EQ(f32_to_f8_e4m3(NAN), 0x7F);
  EXPECT_EQ(f32_to_f8_e4m3(-NAN), 0xFF);
  EXPECT_EQ(f32_to_f8_e4m3(1.0f), 0x38);
  EXPECT_EQ(f32_to_f8_e4m3(-0.0f), 0x80);
  EXPECT_EQ(f32_to_f8_e4m3(std::ldexp(1.0f, -10)), 0x00);  // half the smallest subnormal: ties to 0
  EXPECT_EQ(f32_to_f8_e4m3(std::ldexp(1.5f, -10)), 0x01);
  EXPECT_EQ(f32_to_f8_e5m2(57344.0f), 0x7B);
  EXPECT_EQ(f32_to_f8_e5m2(61439.0f), 0x7B);
  EXPECT_EQ(f32_to_f8_e5m2(61440.0f), 0x7B);
  EXPECT_EQ(f32_to_f8_e5m2(1e30f), 0x7B);
  EXPECT_EQ(f32_to_f8_e5m2(-1e30f), 0xFB);
  EXPECT_EQ(f32_to_f8_e5m2(INFINITY), 0x7C);
  EXPECT_EQ(f32_to_f8_e5m2(-INFINITY), 0xFC);
  EXPECT_EQ(f32_to_f8_e5m2(NAN), 0x7F);
  EXPECT_EQ(f32_to_f8_e5m2(-NAN), 0xFF);
  EXPECT_TRUE(std::isnan(f8_e5m2_to_f32(0x7F)) && std::isnan(f8_e4m3_to_f32(0xFF)));
  EXPECT_EQ(f32_to_f8_e5m2(std::ldexp(1.0f, -17)), 0x00);
  EXPECT_EQ(f32_to_f8_e5m2(std::ldexp(3.0f, -17)), 0x02);  // 1.5 steps: tie to the even code 2
}

TEST(Fp8, ScaledQuantization) {
  const std::vector<float> w = gaussian(4096, 51, 0.02f);
  std::vector<uint8_t> c(w.size());
  for (DType t : {DType::F8_E4M3, DType::F8_E5M2}) {
    const bool e4 = t == DType::F8_E4M3;
    const float scale = quantize_fp8_scaled(t, w.data(), int64_t(w.size()), c.data());
    float amax = 0;
    for (float v : w) amax = std::fmax(amax, std::fabs(v));
    EXPECT_EQ(scale, amax / (e4 ? 448.0f : 57344.0f));
    for (size_t i = 0; i < w.size(); ++i) {
      ASSERT_EQ(c[i], e4 ? f32_to_f8_e4m3(w[i] / scale) : f32_to_f8_e5m2(w[i] / scale));
      const float back = (e4 ? f8_e4m3_to_f32(c[i]) : f8_e5m2_to_f32(c[i])) * scale;
      // Relative step 2^-3 (2^-2) for normals: error <= half of it, or half a subnormal step.
      const double rel = e4 ? 1.0 / 16 : 1.0 / 8, sub = scale * std::ldexp(1.0, e4 ? -10 : -17);
      ASSERT_LE(std::fabs(double(back) - w[i]), rel * std::fabs(w[i]) + sub);
    }
    std::vector<float> zeros(64, 0.0f);
    EXPECT_EQ(quantize_fp8_scaled(t, zeros.data(), 64, c.data()), 1.0f);
    for (int i = 0; i < 64; ++i) EXPECT_EQ(c[size_t(i)], 0);
  }
  EXPECT_THROW(quantize_fp8_scaled(DType::BF16, w.data(), 4, c.data()), Error);
}

// The fixture's scaled fp8 weights: quantizing their dequantized values reproduces the codes and the scale.
TEST(Fp8, RequantizingFixtureReproducesIt) {
  SafetensorsFile f(test::fixture_dir("quant/fp8_scaled_small") + "/krea2-small-fp8-comfy-quant.safetensors");
  int tensors = 0, scales_exact = 0;
  for (const TensorView& v : f.tensors()) {
    if (v.dtype != DType::F8_E4M3 && v.dtype != DType::F8_E5M2) continue;
    const std::string base = v.name.substr(0, v.name.size() - std::string("weight").size());
    const TensorView* sv = f.find(base + "weight_scale");
    ASSERT_NE(sv, nullptr) << v.name;
    float scale;
    std::memcpy(&scale, sv->data, 4);
    const auto* codes = reinterpret_cast<const uint8_t*>(v.data);
    std::vector<float> w(size_t(v.numel()));
    for (size_t i = 0; i < w.size(); ++i)
      w[i] = (v.dtype == DType::F8_E4M3 ? f8_e4m3_to_f32(codes[i]) : f8_e5m2_to_f32(codes[i])) * scale;
    std::vector<uint8_t> again(w.size());
    const float s = quantize_fp8_scaled(v.dtype, w.data(), int64_t(w.size()), again.data());
    EXPECT_NEAR(s, scale, 2e-7 * scale) << v.name;
    scales_exact += s == scale;
    EXPECT_EQ(std::memcmp(again.data(), codes, w.size()), 0) << v.name;
    ++tensors;
  }
  EXPECT_GT(tensors, 10);
  std::printf("fp8 fixture: %d tensors, codes equal in all; scale bit-equal in %d\n", tensors, scales_exact);
}

// ---------------------------------------------------------------------------------------------------------
// Hadamard rotation and int8 convrot.

// Dense H_G = kron(H4, ..., H4) / sqrt(G), built by Kronecker products.
std::vector<double> dense_hadamard(int64_t G) {
  const double h4[16] = {1, 1, 1, -1, 1, 1, -1, 1, 1, -1, 1, 1, -1, 1, 1, 1};
  std::vector<double> h = {1.0};
  int64_t n = 1;
  while (n < G) {
    std::vector<double> k(size_t(16 * n * n));
    for (int64_t i = 0; i < 4; ++i)
      for (int64_t j = 0; j < 4; ++j)
        for (int64_t a = 0; a < n; ++a)
          for (int64_t b = 0; b < n; ++b)
            k[size_t((i * n + a) * 4 * n + j * n + b)] = h4[i * 4 + j] * h[size_t(a * n + b)];
    h.swap(k);
    n *= 4;
  }
  for (auto& v : h) v /= std::sqrt(double(G));
  return h;
}

TEST(Hadamard, MatchesDenseMatrixAndIsAnInvolution) {
  for (int64_t G : {4, 16, 64, 256}) {
    const std::vector<double> H = dense_hadamard(G);
    for (int64_t i = 0; i < G; ++i)  // orthogonal: H H = I (H symmetric)
      for (int64_t j = 0; j < G; ++j) {
        double s = 0;
        for (int64_t k = 0; k < G; ++k) s += H[size_t(i * G + k)] * H[size_t(k * G + j)];
        ASSERT_NEAR(s, i == j ? 1.0 : 0.0, 1e-12);
        ASSERT_EQ(H[size_t(i * G + j)], H[size_t(j * G + i)]);
      }
    const int64_t n = 3 * G;
    const std::vector<float> x = gaussian(size_t(n), 61 + uint64_t(G));
    std::vector<float> y = x;
    hadamard_rotate(y.data(), n, G);
    for (int64_t g = 0; g < n; g += G)
      for (int64_t j = 0; j < G; ++j) {
        double ref = 0;  // (x R)_j = sum_i x_i H_ij
        for (int64_t i = 0; i < G; ++i) ref += double(x[size_t(g + i)]) * H[size_t(i * G + j)];
        ASSERT_NEAR(y[size_t(g + j)], ref, 1e-6 * std::sqrt(double(G))) << "G " << G;
      }
    hadamard_rotate(y.data(), n, G);
    for (int64_t i = 0; i < n; ++i) ASSERT_NEAR(y[size_t(i)], x[size_t(i)], 2e-6) << "G " << G;
  }
  std::vector<float> x(48);
  EXPECT_THROW(hadamard_rotate(x.data(), 48, 8), Error);   // not a power of 4
  EXPECT_THROW(hadamard_rotate(x.data(), 48, 64), Error);  // does not divide
  hadamard_rotate(x.data(), 48, 1);                        // G = 1 = 4^0: the identity
}

TEST(Int8Convrot, FollowsTheDefinition) {
  const int64_t n = 512, G = 16;
  const std::vector<double> H = dense_hadamard(G);
  for (uint64_t seed = 0; seed < 8; ++seed) {
    const std::vector<float> w =
        seed % 2 ? student_t(size_t(n), 70 + seed, 3.0f) : gaussian(size_t(n), 70 + seed);
    std::vector<int8_t> q(static_cast<size_t>(n));
    const float s = quantize_int8_convrot_row(w.data(), n, G, q.data());
    std::vector<double> rot(static_cast<size_t>(n));
    double amax = 0;
    for (int64_t g = 0; g < n; g += G)
      for (int64_t j = 0; j < G; ++j) {
        double v = 0;
        for (int64_t i = 0; i < G; ++i) v += double(w[size_t(g + i)]) * H[size_t(i * G + j)];
        rot[size_t(g + j)] = v;
        amax = std::fmax(amax, std::fabs(v));
      }
    EXPECT_NEAR(s, amax / 127, 1e-6 * amax / 127);
    int ties = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double v = rot[size_t(i)] / (amax / 127);
      if (std::fabs(v - std::floor(v) - 0.5) < 1e-4) {
        ++ties;  // too close to a tie for a float64 re-derivation to decide
        continue;
      }
      ASSERT_EQ(q[size_t(i)], int8_t(std::nearbyint(v))) << i;
      ASSERT_LE(std::abs(int(q[size_t(i)])), 127);
    }
    EXPECT_LT(ties, 3);
  }
  // Exact ties round to even: W_rot = e0 (a rotated unit vector, rotated back) scaled to codes 127 and 2.5.
  std::vector<float> w(16, 0.0f);
  w[0] = 127.0f;
  w[1] = 2.5f;
  w[2] = -3.5f;
  hadamard_rotate(w.data(), 16, 16);  // w = v R, so w R = v
  std::vector<int8_t> q(16);
  const float s = quantize_int8_convrot_row(w.data(), 16, 16, q.data());
  EXPECT_EQ(s, 1.0f);
  EXPECT_EQ(q[0], 127);
  EXPECT_EQ(q[1], 2);
  EXPECT_EQ(q[2], -4);
  std::vector<float> zeros(32, 0.0f);
  std::vector<int8_t> qz(32, 5);
  EXPECT_EQ(quantize_int8_convrot_row(zeros.data(), 32, 16, qz.data()), 0.0f);
  for (int8_t v : qz) EXPECT_EQ(v, 0);
}

// The fixture's dequantized W = (Q s) R^T, requantized with G = 16, gives back Q and s.
TEST(Int8Convrot, RequantizingFixtureReproducesIt) {
  const std::string dir = test::fixture_dir("quant/int8_convrot_small");
  SafetensorsFile deq(dir + "/dequant_reference.safetensors");
  SafetensorsFile file(dir + "/krea2-int8_convrot_small.safetensors");
  int rows = 0, scales_exact = 0;
  double worst_rel = 0;
  for (const char* name : {"first.weight", "tmlp.0.weight", "txtfusion.layerwise_blocks.0.mlp.down.weight"}) {
    const TensorView* wv = deq.find(name);
    const TensorView* qv = file.find(name);
    const TensorView* sv = file.find(std::string(name, std::strlen(name) - 6) + "weight_scale");
    ASSERT_TRUE(wv && qv && sv) << name;
    ASSERT_EQ(qv->dtype, DType::I8);
    const Tensor w = to_float_tensor(*wv), s = to_float_tensor(*sv);
    const int64_t out = w.dim(0), in = w.dim(1);
    std::vector<int8_t> q(static_cast<size_t>(in));
    for (int64_t o = 0; o < out; ++o) {
      const float got = quantize_int8_convrot_row(w.ptr() + o * in, in, 16, q.data());
      ASSERT_EQ(std::memcmp(q.data(), qv->data + o * in, size_t(in)), 0) << name << " row " << o;
      const double rel = std::fabs(double(got) - s.data[size_t(o)]) / s.data[size_t(o)];
      worst_rel = std::fmax(worst_rel, rel);
      EXPECT_LE(rel, 4e-7) << name << " row " << o;
      scales_exact += got == s.data[size_t(o)];
      ++rows;
    }
  }
  std::printf("int8 convrot fixture: %d rows, codes equal in all; scale bit-equal in %d, worst rel %.2e\n",
              rows, scales_exact, worst_rel);
}

}  // namespace
}  // namespace krea2
