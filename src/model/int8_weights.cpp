#include "model/int8_weights.h"

#include <omp.h>

#include <algorithm>
#include <vector>

#include "ops/int8_activations.h"
#include "ops/weight_decode.h"

namespace krea2 {

bool is_int8_ready(const WeightMatrix& w) {
  return w.dtype == DType::I8 && w.row_scales != nullptr && w.scale == 1.0f;
}

// Rows decoded to float32 a few at a time, then the same rule as the activations.
void quantize_weight_rows_int8(WeightMatrix& w, int64_t group,
                               const std::function<std::byte*(size_t)>& arena) {
  const int64_t R = w.rows, K = w.cols;
  auto* codes = reinterpret_cast<int8_t*>(arena(size_t(R * K)));
  auto* scales = reinterpret_cast<float*>(arena(size_t(R) * sizeof(float)));
  constexpr int64_t kRows = 16;
#pragma omp parallel
  {
    std::vector<float> rows(size_t(kRows * K));
#pragma omp for schedule(dynamic)
    for (int64_t r0 = 0; r0 < R; r0 += kRows) {
      const int64_t n = std::min(kRows, R - r0);
      for (int64_t i = 0; i < n; ++i) decode_weight_segment(w, r0 + i, 0, K, rows.data() + i * K);
      quantize_activations_i8(rows.data(), n, K, K, group, codes + r0 * K, scales + r0);
    }
  }
  w = WeightMatrix{DType::I8, R, K, codes, 1.0f, scales, group};
}

}  // namespace krea2
