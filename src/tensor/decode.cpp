// The dispatch point of decode_row: one table, built on first use, maps each dtype to the fastest kernel
// this build and CPU offer (AVX2 + FMA + F16C is the build floor; wider instruction sets add their own
// kernel files and pick here). Anything without a kernel, and every malformed call (n <= 0, a partial
// block), goes to the reference, which also produces its errors.
#include "tensor/decode.h"

#include <array>

#include "tensor/decode_avx2.h"
#include "tensor/quant_blocks.h"

namespace krea2 {

namespace {

struct Entry {
  DecodeRowKernel kernel = nullptr;
  int64_t block_mask = 0;  // block elements - 1 (powers of two), so the hot path checks n without a division
};

// Indexed by the DType's underlying value; sized for every value the enum can hold.
using Table = std::array<Entry, 256>;

Table build_table() {
  Table table{};
  for (int i = 0; i < int(table.size()); ++i) {
    const auto t = static_cast<DType>(i);
    const int64_t be = dtype_block_elements(t);
    if (be <= 0 || (be & (be - 1)) != 0) continue;
    table[size_t(i)] = Entry{decode_row_kernel_avx2(t), be - 1};
  }
  return table;
}

}  // namespace

void decode_row(DType t, const void* row, int64_t n, float* out) {
  static const Table table = build_table();
  const Entry& e = table[static_cast<uint8_t>(t)];
  if (e.kernel != nullptr && n > 0 && (n & e.block_mask) == 0) {
    e.kernel(static_cast<const uint8_t*>(row), n, out);
    return;
  }
  decode_row_reference(t, row, n, out);
}

}  // namespace krea2
