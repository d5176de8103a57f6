#include "ops/row_kernels.h"

namespace krea2 {

const RowKernels& row_kernels(Isa isa) {
  return isa == Isa::kAvx512 ? kRowKernelsAvx512 : kRowKernelsAvx2;
}

const RowKernels& row_kernels() {
  return row_kernels(active_isa());
}

}  // namespace krea2
