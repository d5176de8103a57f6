// The GEMM ceiling of `krea2 bench`: the microkernel's FLOP count per call is right (it cannot outrun the
// FMA loop that defines the peak) and the statistics are ordered.
#include <gtest/gtest.h>

#include "bench/kernel_ceiling.h"

namespace krea2 {
namespace {

TEST(KernelCeiling, OrderedStatisticsAndTheKernelNeverOutrunsTheFmaLoop) {
  KernelCeilingMeter meter(1);
  EXPECT_EQ(meter.result().kernel_median_gflops, 0.0);  // no round yet
  meter.measure(2);
  meter.measure(1);  // rounds taken at several moments add up
  EXPECT_EQ(meter.rounds(), 3);
  const KernelCeiling c = meter.result();
  EXPECT_GT(c.kernel_median_gflops, 0.0);
  EXPECT_LE(c.kernel_median_gflops, c.kernel_best_gflops);
  EXPECT_GT(c.fma_median_gflops, 0.0);
  EXPECT_LE(c.fma_median_gflops, c.fma_best_gflops);
  // The kernel issues the same FMAs plus loads, so it is at most as fast as the pure FMA loop; a FLOP count
  // off by 2x (or a kernel the compiler dropped) would read far above. The margin covers timing noise.
  EXPECT_LT(c.kernel_best_gflops, 1.3 * c.fma_best_gflops);
}

}  // namespace
}  // namespace krea2
