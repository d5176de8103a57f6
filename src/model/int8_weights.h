// int8 compute's weights: any stored Linear weight quantized per output row (Model::with_compute,
// TextEncoder::with_compute).
#pragma once
#include <cstddef>
#include <functional>

#include "ops/linear.h"

namespace krea2 {

// Already int8 with a scale per output row (int8 convrot files): used as stored.
bool is_int8_ready(const WeightMatrix& w);

// w replaced by per-row int8 codes of its dequantized rows (rotated by the convrot rotation of `group`
// inputs first when group > 0), in memory from arena(bytes): s = max |w| / 127, codes rounded half-even.
void quantize_weight_rows_int8(WeightMatrix& w, int64_t group,
                               const std::function<std::byte*(size_t)>& arena);

}  // namespace krea2
