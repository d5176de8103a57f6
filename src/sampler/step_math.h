// The per-step float32 arithmetic of the pipeline loop, kept apart so it is compiled without FMA contraction:
// torch runs `a + b * c` as two rounded operations, and fusing them would move results by an ulp.
#pragma once
#include <cstddef>

namespace krea2::sampler {

// Krea's guidance: v[i] = cond[i] + g * (cond[i] - uncond[i]), written into `cond`.
void combine_guidance(float* cond, const float* uncond, size_t n, float g);

// The Euler update of FlowMatchEulerDiscreteScheduler.step: x[i] = x[i] + (sigma_next - sigma) * v[i].
void euler_step(float* x, const float* v, size_t n, float sigma, float sigma_next);

}  // namespace krea2::sampler
