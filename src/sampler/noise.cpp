// Seeded Gaussian noise. Our own generator so that a seed gives the same noise with every compiler and
// standard library (std::normal_distribution is implementation-defined): xoshiro256** (Blackman & Vigna)
// seeded through splitmix64, uniforms from the top 53 bits, Box-Muller in float64, rounded to float32 (which
// hides the last-bit differences libm implementations may have in log/cos/sin). It is not torch.randn: to
// reproduce a diffusers run, pass its noise with --noise.
#include <cmath>
#include <numbers>

#include "krea2/sampler.h"

namespace krea2 {
namespace {

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

class Xoshiro256 {
 public:
  explicit Xoshiro256(uint64_t seed) {
    for (auto& word : s_) word = splitmix64(seed);  // never all zero
  }
  uint64_t next() {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  // Uniform in (0, 1]: never 0, so log() below is finite.
  double uniform_open0() { return static_cast<double>((next() >> 11) + 1) * 0x1.0p-53; }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

 private:
  uint64_t s_[4];
};

}  // namespace

Tensor gaussian_noise(const Shape& shape, uint64_t seed) {
  Tensor out(shape);
  Xoshiro256 rng(seed);
  const size_t n = out.data.size();
  for (size_t i = 0; i < n; i += 2) {
    // Box-Muller: two independent normals per pair of uniforms.
    const double radius = std::sqrt(-2.0 * std::log(rng.uniform_open0()));
    const double angle = 2.0 * std::numbers::pi * rng.uniform();
    out.data[i] = static_cast<float>(radius * std::cos(angle));
    if (i + 1 < n) out.data[i + 1] = static_cast<float>(radius * std::sin(angle));
  }
  return out;
}

}  // namespace krea2
