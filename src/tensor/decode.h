// Fast decoding of stored weight rows to float32: the one entry point the matrix products use while they pack
// a weight panel (and the few-row products use per row). Bit-identical to decode_row_reference.
#pragma once
#include <cstdint>

#include "krea2/tensor.h"

namespace krea2 {

// Elements [0, n) of a row stored as t (see dtype_is_decodable; n a multiple of dtype_block_elements(t))
// as float32 into out.
void decode_row(DType t, const void* row, int64_t n, float* out);

}  // namespace krea2
