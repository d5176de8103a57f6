// Rotate-half rotary embedding of the Qwen3 / Llama decoders (the text encoder): angle k of head_dim / 2
// acts on the channel pair (k, k + head_dim / 2) of each head; 1-D positions. (The Krea transformer's own
// rope, ops/rope.h, rotates interleaved pairs over 3 axes.)
#pragma once
#include <cstdint>
#include <vector>

namespace krea2 {

// cos/sin of head_dim / 2 angles per row, as transformers computes them in float32: inv_freq[k] =
// 1 / theta^(2k / head_dim) rounded to float, angle = float(pos) * inv_freq[k] rounded to float.
struct HalfRopeTable {
  int64_t rows = 0;
  int64_t half = 0;
  std::vector<float> cos, sin;  // (rows, half)
};
HalfRopeTable make_half_rope_table(const int32_t* positions, int64_t rows, int64_t head_dim, double theta);

// Per head of x (rows of `heads` heads of head_dim, row stride ldx): plain-weight RMSNorm over the head
// (weight * x / rms), then the rotation: out[k] = x[k] cos - x[k + h] sin, out[k + h] = x[k + h] cos + x[k]
// sin. In place; one pass over x.
void head_norm_rope_half(float* x, int64_t rows, int64_t ldx, int64_t heads, int64_t head_dim,
                         const float* weight, float eps, const HalfRopeTable& table);

// Scalar reference (double arithmetic; angles from the same float32 rule).
void head_norm_rope_half_reference(float* x, int64_t rows, int64_t ldx, int64_t heads, int64_t head_dim,
                                   const float* weight, float eps, const int32_t* positions, double theta);

}  // namespace krea2
