// See step_math.h. GCC contracts a + b * c into an FMA across statements by default (-ffp-contract=fast) when
// FMA is enabled, so contraction is switched off for these two functions; clang follows the STDC pragma.
#include "sampler/step_math.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#define KREA2_NO_FP_CONTRACT
#elif defined(__GNUC__)
#define KREA2_NO_FP_CONTRACT __attribute__((optimize("fp-contract=off")))
#else
#define KREA2_NO_FP_CONTRACT
#endif

namespace krea2::sampler {

KREA2_NO_FP_CONTRACT void combine_guidance(float* cond, const float* uncond, size_t n, float g) {
  for (size_t i = 0; i < n; ++i) {
    const float diff = cond[i] - uncond[i];
    const float scaled = g * diff;
    cond[i] = cond[i] + scaled;
  }
}

KREA2_NO_FP_CONTRACT void euler_step(float* x, const float* v, size_t n, float sigma, float sigma_next) {
  const float dt = sigma_next - sigma;
  for (size_t i = 0; i < n; ++i) {
    const float delta = dt * v[i];
    x[i] = x[i] + delta;
  }
}

}  // namespace krea2::sampler
