// Counter-based uniform numbers (splitmix64 of key + index): element i depends only on (key, i), so large
// buffers fill in parallel and reproducibly. For random weights and benchmark inputs, not for anything
// statistical.
#pragma once
#include <cstdint>

namespace krea2 {

// Uniform in [-1, 1).
inline float counter_uniform(uint64_t key, uint64_t index) {
  uint64_t z = key + index * 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return float(z >> 40) * (2.0f / 16777216.0f) - 1.0f;
}

// The key the benchmarks derive from a small seed (spreads consecutive seeds apart).
inline uint64_t counter_key(uint64_t seed) {
  return seed * 0xd1342543de82ef95ull;
}

}  // namespace krea2
