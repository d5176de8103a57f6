// Dequantizing a weight's stored rows to float32: the decoded values (tensor/decode.h) times the per-tensor
// and per-row scales, rotated back for int8 convrot. Every product that reads a non-plain weight goes through
// decode_weight_segment while it packs, so no float32 copy of a weight ever exists.
#pragma once
#include <cstdint>

#include "ops/linear.h"

namespace krea2 {

// Checks that the kernels can read w (decodable dtype, cols a whole number of blocks, a rotation only on I8
// with a group that is a power of 4 dividing cols, row_scales present for I8); throws std::invalid_argument
// naming `what` otherwise.
void check_weight_matrix(const WeightMatrix& w, const char* what);

// out[0, n) = dequantized w[row, k0 .. k0 + n). Any k0, n inside the row; fastest when k0 and n are
// multiples of the block (and of the rotation group).
void decode_weight_segment(const WeightMatrix& w, int64_t row, int64_t k0, int64_t n, float* out);

// The same from the plain scalar reference decoders (tests).
void decode_weight_row_reference(const WeightMatrix& w, int64_t row, float* out);

}  // namespace krea2
