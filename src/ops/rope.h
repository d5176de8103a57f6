// 3-axis interleaved rotary embedding: angles from float64 frequencies, cos/sin rounded to float32.
#pragma once
#include <cstdint>
#include <vector>

namespace krea2 {

// cos/sin of head_dim/2 angles per row: angle k acts on channel pair (2k, 2k+1) of each head.
struct RopeTable {
  int64_t rows = 0;
  int64_t half = 0;             // head_dim / 2
  std::vector<float> cos, sin;  // (rows, half)
};

// positions: (rows, 3) float ids; axes_dims sums to head_dim, each even.
RopeTable make_rope_table(const float* positions, int64_t rows, const std::vector<int>& axes_dims,
                          double theta);

// For each row r and each of `heads` heads of width 2*half at x + r*ldx + h*2*half: rotate pairs in place.
void apply_rope(float* x, int64_t rows, int64_t ldx, int64_t heads, const RopeTable& table,
                int64_t table_row0 = 0);

// Per-head RMSNorm (zero-centred weight of head_dim) followed by rope when `table` is given; in place.
void head_norm_rope(float* x, int64_t rows, int64_t ldx, int64_t heads, int64_t head_dim, const float* weight,
                    float eps, const RopeTable* table);

// Scalar reference: rotate one row's heads with angles computed directly in float64.
void apply_rope_reference(float* x, int64_t rows, int64_t ldx, int64_t heads, const float* positions,
                          const std::vector<int>& axes_dims, double theta);

}  // namespace krea2
