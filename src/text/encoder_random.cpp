// TextEncoder::random: deterministic random weights of any config (tests, benchmarks at full size).
#include <cmath>

#include "krea2/error.h"
#include "krea2/text_encoder.h"
#include "tensor/convert.h"
#include "tensor/random.h"
#include "text/encoder_weights.h"

namespace krea2 {

TextEncoder TextEncoder::random(const TextEncoderConfig& config, DType weight_dtype, uint64_t seed) {
  config.validate();
  if (weight_dtype != DType::F32 && weight_dtype != DType::BF16 && weight_dtype != DType::F16)
    throw Error("random text encoder: dtype must be F32, BF16 or F16, found " +
                std::string(dtype_name(weight_dtype)));
  auto impl = std::make_shared<TextEncoderImpl>();
  impl->config = config;
  impl->default_taps.clear();
  for (int t : default_text_encoder_taps())
    if (t <= config.num_layers) impl->default_taps.push_back(t);
  if (impl->default_taps.empty()) impl->default_taps = {int(config.num_layers)};
  impl->load_info.config_source = "random weights";
  impl->load_info.quantization = "none";
  uint64_t stream = seed * 0x2545f4914f6cdd1dull + 7;
  TextEncoderWeights& w = impl->weights;
  visit_text_weights(w, config, [&](ParamSlot& s) {
    stream += 0x9e3779b97f4a7c15ull;
    const int64_t n = shape_numel(s.shape);
    if (s.vector) {
      // Plain-weight norms: around 1.
      s.vector->resize(size_t(n));
      float* v = s.vector->data();
      const uint64_t key = stream;
#pragma omp parallel for schedule(static) if (n > 65536)
      for (int64_t i = 0; i < n; ++i) v[i] = 1.0f + 0.1f * counter_uniform(key, uint64_t(i));
      return;
    }
    WeightMatrix& m = *s.matrix;
    m = WeightMatrix{};
    m.dtype = weight_dtype;
    m.rows = s.shape[0];
    m.cols = s.shape[1];
    // Variance 1 / in for the products (outputs keep the inputs' scale), 1 for the embedding rows.
    const float a = s.matrix == &w.embed ? 1.0f : std::sqrt(3.0f / float(m.cols));
    std::byte* arena = impl->new_arena(size_t(n) * dtype_size(weight_dtype));
    m.data = arena;
    const uint64_t key = stream;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      const float x = counter_uniform(key, uint64_t(i)) * a;
      if (weight_dtype == DType::F32)
        reinterpret_cast<float*>(arena)[i] = x;
      else if (weight_dtype == DType::BF16)
        reinterpret_cast<uint16_t*>(arena)[i] = f32_to_bf16(x);
      else
        reinterpret_cast<uint16_t*>(arena)[i] = f32_to_f16(x);
    }
  });
  return TextEncoder(impl);
}

}  // namespace krea2
