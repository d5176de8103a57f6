#include "ops/rope.h"

#include <cmath>

#include "ops/row_kernels.h"

namespace krea2 {

namespace {

// Angles of one row in float64, as upstream builds them per axis and concatenates.
void row_angles(const float* pos, const std::vector<int>& axes_dims, double theta, double* out) {
  int64_t k = 0;
  for (size_t axis = 0; axis < axes_dims.size(); ++axis) {
    const int dim = axes_dims[axis];
    for (int i = 0; i < dim / 2; ++i) {
      const double freq = 1.0 / std::pow(theta, double(2 * i) / double(dim));
      out[k++] = double(pos[axis]) * freq;
    }
  }
}

}  // namespace

RopeTable make_rope_table(const float* positions, int64_t rows, const std::vector<int>& axes_dims,
                          double theta) {
  RopeTable t;
  t.rows = rows;
  for (int d : axes_dims) t.half += d / 2;
  t.cos.resize(size_t(rows * t.half));
  t.sin.resize(size_t(rows * t.half));
  std::vector<double> angles(static_cast<size_t>(t.half));
  for (int64_t r = 0; r < rows; ++r) {
    row_angles(positions + 3 * r, axes_dims, theta, angles.data());
    for (int64_t k = 0; k < t.half; ++k) {
      t.cos[size_t(r * t.half + k)] = float(std::cos(angles[size_t(k)]));
      t.sin[size_t(r * t.half + k)] = float(std::sin(angles[size_t(k)]));
    }
  }
  return t;
}

void apply_rope(float* x, int64_t rows, int64_t ldx, int64_t heads, const RopeTable& table,
                int64_t table_row0) {
  const int64_t half = table.half;
  const RowKernels& k = row_kernels();
#pragma omp parallel for schedule(static) if (rows * heads * half > 8192)
  for (int64_t r = 0; r < rows; ++r) {
    const float* c = table.cos.data() + (table_row0 + r) * half;
    const float* s = table.sin.data() + (table_row0 + r) * half;
    for (int64_t h = 0; h < heads; ++h) k.rotate_pairs(x + r * ldx + h * 2 * half, c, s, half);
  }
}

void head_norm_rope(float* x, int64_t rows, int64_t ldx, int64_t heads, int64_t head_dim, const float* weight,
                    float eps, const RopeTable* table) {
  const RowKernels& k = row_kernels();
#pragma omp parallel for schedule(static) if (rows * heads * head_dim > 8192)
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t h = 0; h < heads; ++h) {
      float* xh = x + r * ldx + h * head_dim;
      k.norm(xh, head_dim, weight, eps, xh, nullptr, nullptr);
      if (table)
        k.rotate_pairs(xh, table->cos.data() + r * table->half, table->sin.data() + r * table->half,
                       table->half);
    }
  }
}

void apply_rope_reference(float* x, int64_t rows, int64_t ldx, int64_t heads, const float* positions,
                          const std::vector<int>& axes_dims, double theta) {
  int64_t half = 0;
  for (int d : axes_dims) half += d / 2;
  std::vector<double> angles(static_cast<size_t>(half));
  for (int64_t r = 0; r < rows; ++r) {
    row_angles(positions + 3 * r, axes_dims, theta, angles.data());
    for (int64_t h = 0; h < heads; ++h) {
      float* xh = x + r * ldx + h * 2 * half;
      for (int64_t k = 0; k < half; ++k) {
        const double c = float(std::cos(angles[size_t(k)])), s = float(std::sin(angles[size_t(k)]));
        const double a = xh[2 * k], b = xh[2 * k + 1];
        xh[2 * k] = float(a * c - b * s);
        xh[2 * k + 1] = float(b * c + a * s);
      }
    }
  }
}

}  // namespace krea2
