#include "tensor/decode.h"

#include "tensor/quant_blocks.h"

namespace krea2 {

void decode_row(DType t, const void* row, int64_t n, float* out) {
  decode_row_reference(t, row, n, out);
}

}  // namespace krea2
