// Vae::random: deterministic random weights of any config (tests, benchmarks at full size). Conv weights
// uniform with variance 1 / fan_in (fan_in = in x k x k of the live slice), gammas near 1, small biases, so
// activations stay O(1) through the whole decoder.
#include <cmath>

#include "krea2/error.h"
#include "tensor/convert.h"
#include "tensor/random.h"
#include "vae/vae_weights.h"

namespace krea2 {

namespace {

float round_to(float x, DType t) {
  if (t == DType::BF16) return bf16_to_f32(f32_to_bf16(x));
  if (t == DType::F16) return f16_to_f32(f32_to_f16(x));
  return x;
}

}  // namespace

Vae Vae::random(const VaeConfig& config, DType weight_dtype, uint64_t seed) {
  config.validate();
  if (weight_dtype != DType::F32 && weight_dtype != DType::BF16 && weight_dtype != DType::F16)
    throw Error("random VAE: dtype must be F32, BF16 or F16, found " + std::string(dtype_name(weight_dtype)));
  auto impl = std::make_shared<VaeImpl>();
  impl->config = config;
  impl->load_info.file_format = "random weights (" + std::string(dtype_name(weight_dtype)) + ")";
  impl->load_info.config_source = "given";
  uint64_t stream = seed * 0x2545f4914f6cdd1dull + 11;
  visit_vae_weights(impl->weights, config, [&](VaeParamSlot& s) {
    stream += 0x9e3779b97f4a7c15ull;
    const uint64_t key = stream;
    if (s.vector) {
      const int64_t n = shape_numel(s.shape);
      const bool is_gamma = s.local.find("gamma") != std::string::npos;
      s.vector->resize(size_t(n));
      for (int64_t i = 0; i < n; ++i) {
        const float u = counter_uniform(key, uint64_t(i));
        (*s.vector)[size_t(i)] = round_to(is_gamma ? 1.0f + 0.1f * u : 0.02f * u, weight_dtype);
      }
      return;
    }
    VaeConv& c = *s.conv;
    const int64_t n = c.out * c.kernel * c.kernel * c.in;
    const float a = std::sqrt(3.0f / float(c.in * c.kernel * c.kernel));
    float* w = impl->new_floats(size_t(n));
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; ++i) w[i] = round_to(a * counter_uniform(key, uint64_t(i)), weight_dtype);
    c.weight = w;
  });
  pack_vae_convs(impl->weights);
  return Vae(impl);
}

}  // namespace krea2
