// random_quantized_model: full-size random models in any stored format, made in seconds. Each weight's rows
// come from a pool of random Gaussian rows (std 1 / sqrt(in), so activations keep their scale), encoded once
// per pool row and copied out, so the cost is the copy, not the quantizer; "F32" gives the very float32
// weights every other recipe encodes.
#include <cmath>
#include <cstring>

#include "krea2/error.h"
#include "krea2/quantize.h"
#include "model/model_impl.h"
#include "model/weight_encode.h"
#include "tensor/random.h"

namespace krea2 {

namespace {

constexpr int64_t kPoolRows = 128;

// Row o of a matrix takes pool row pool_row(o): a fixed scatter, so neighbouring rows differ.
int64_t pool_row(int64_t o, int64_t pool) {
  return (o * 40503 + 17) % pool;
}

std::vector<float> gaussian_rows(int64_t n, int64_t cols, uint64_t key) {
  std::vector<float> v(size_t(n * cols));
  const float sd = 1.0f / std::sqrt(float(std::max<int64_t>(cols, 1)));
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n * cols; ++i) {
    // Box-Muller on two counter uniforms mapped to (0, 1].
    const float u1 = 0.5f * (counter_uniform(key, uint64_t(2 * i)) + 1.0f) + 1e-7f;
    const float u2 = 0.5f * (counter_uniform(key, uint64_t(2 * i + 1)) + 1.0f);
    v[size_t(i)] = sd * std::sqrt(-2.0f * std::log(std::min(u1, 1.0f))) * std::cos(6.2831853f * u2);
  }
  return v;
}

}  // namespace

Model random_quantized_model(const Config& config, const std::string& recipe_name, uint64_t seed) {
  config.validate();
  const QuantRecipe recipe = quant_recipe(recipe_name);
  auto impl = std::make_shared<ModelImpl>();
  impl->config = config;
  uint64_t key = counter_key(seed + 1);
  visit_weights(impl->weights, config, [&](ParamSlot& s) {
    key += 0x9e3779b97f4a7c15ull;
    if (s.vector) {
      s.vector->resize(size_t(shape_numel(s.shape)));
      for (size_t i = 0; i < s.vector->size(); ++i) (*s.vector)[i] = 0.1f * counter_uniform(key, i);
      return;
    }
    WeightMatrix& w = *s.matrix;
    w = WeightMatrix{};
    w.rows = s.shape[0];
    w.cols = s.shape[1];
    RowEncoding enc;
    enc.dtype = recipe_weight_type(recipe, s.name, w.rows, w.cols);
    enc.rotation_group = enc.dtype == DType::I8 ? recipe.rotation_group : 0;
    const int64_t pool = std::min(kPoolRows, w.rows);
    const std::vector<float> rows = gaussian_rows(pool, w.cols, key);
    if (enc.dtype == DType::F8_E4M3 || enc.dtype == DType::F8_E5M2) {
      float max_abs = 0;
      for (float x : rows) max_abs = std::max(max_abs, std::fabs(x));
      enc.scale = fp8_tensor_scale(enc.dtype, max_abs);
      w.scale = enc.scale;
    }
    const int64_t row_bytes = dtype_row_bytes(enc.dtype, w.cols);
    std::vector<std::byte> encoded(static_cast<size_t>(pool * row_bytes));
    std::vector<float> pool_scales(static_cast<size_t>(pool));
    encode_rows(enc, rows.data(), pool, w.cols, encoded.data(), pool_scales.data());
    std::byte* data = impl->new_arena(size_t(w.rows * row_bytes));
#pragma omp parallel for schedule(static)
    for (int64_t o = 0; o < w.rows; ++o)
      std::memcpy(data + o * row_bytes, encoded.data() + pool_row(o, pool) * row_bytes, size_t(row_bytes));
    w.dtype = enc.dtype;
    w.data = data;
    if (enc.dtype == DType::I8) {
      auto* scales = reinterpret_cast<float*>(impl->new_arena(size_t(w.rows) * sizeof(float)));
      for (int64_t o = 0; o < w.rows; ++o) scales[o] = pool_scales[size_t(pool_row(o, pool))];
      w.row_scales = scales;
      w.rotation_group = enc.rotation_group;
    }
  });
  return Model(impl);
}

}  // namespace krea2
