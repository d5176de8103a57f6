// The AVX2 + FMA + F16C row decoders behind decode_row (tensor/decode.h). Private to src/tensor: the
// dispatch in decode.cpp is the only caller, and later instruction sets add their own files beside this one.
#pragma once
#include <cstdint>

#include "krea2/tensor.h"

namespace krea2 {

// Decodes n elements of a row (n > 0 and a whole number of blocks: the caller checks) to float32.
// Reads exactly dtype_row_bytes(t, n) bytes from any alignment and writes exactly n floats.
using DecodeRowKernel = void (*)(const uint8_t* row, int64_t n, float* out);

// The AVX2 kernel for t, bit-identical to decode_row_reference on every input; nullptr where there is none
// (the caller falls back to the reference).
DecodeRowKernel decode_row_kernel_avx2(DType t);

}  // namespace krea2
