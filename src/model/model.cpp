// Model: construction from random weights, parameter listing, saving, and TextContext helpers.
#include "krea2/model.h"

#include <filesystem>
#include <fstream>
#include <random>

#include "io/safetensors.h"
#include "lora/lora_state.h"
#include "model/model_impl.h"
#include "tensor/convert.h"
#include "tensor/random.h"

namespace krea2 {

Model::Model(std::shared_ptr<const ModelImpl> impl) : impl_(std::move(impl)) {}

const Config& Model::config() const {
  return impl_->config;
}

const LoadInfo& Model::load_info() const {
  return impl_->load_info;
}

std::vector<TensorView> Model::parameters() const {
  std::vector<TensorView> out;
  // visit_weights takes a mutable struct; the visitor only reads.
  auto& w = const_cast<ModelWeights&>(impl_->weights);
  visit_weights(w, impl_->config, [&](ParamSlot& s) {
    TensorView v;
    v.name = s.name;
    v.shape = s.shape;
    if (s.matrix) {
      v.dtype = s.matrix->dtype;
      v.data = static_cast<const std::byte*>(s.matrix->data);
    } else {
      v.dtype = DType::F32;
      v.data = reinterpret_cast<const std::byte*>(s.vector->data());
    }
    v.nbytes = s.matrix ? size_t(s.matrix->rows * s.matrix->row_bytes()) : size_t(v.numel()) * sizeof(float);
    out.push_back(std::move(v));
  });
  return out;
}

int64_t Model::parameter_count() const {
  int64_t n = 0;
  for (const auto& p : parameters()) n += p.numel();
  return n;
}

std::map<DType, int64_t> Model::bytes_per_dtype() const {
  std::map<DType, int64_t> m;
  for (const auto& p : parameters()) m[p.dtype] += int64_t(p.nbytes);
  return m;
}

void Model::save(const std::string& folder) const {
  check_no_runtime_lora(*impl_, "save " + folder);
  std::filesystem::create_directories(folder);
  std::vector<TensorToWrite> tensors;
  for (const auto& p : parameters()) tensors.push_back({p.name, p.dtype, p.shape, p.data});
  write_safetensors(folder + "/diffusion_pytorch_model.safetensors", tensors, {{"format", "pt"}});
  const std::string tmp = folder + "/config.json.tmp";
  {
    std::ofstream f(tmp);
    f << impl_->config.to_json_text();
    if (!f) throw Error(tmp + ": write failed");
  }
  std::filesystem::rename(tmp, folder + "/config.json");
}

namespace {

// Fills n values uniform in [-a, a) from counter_uniform, in parallel and
// reproducibly.
template <class Store>
void fill_uniform(int64_t n, float a, uint64_t seed, Store store) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    store(i, counter_uniform(seed, uint64_t(i)) * a);
  }
}

}  // namespace

Model Model::random(const Config& config, DType weight_dtype, uint64_t seed) {
  config.validate();
  if (weight_dtype != DType::F32 && weight_dtype != DType::BF16 && weight_dtype != DType::F16)
    throw Error("random weights: dtype must be F32, BF16 or F16, found " +
                std::string(dtype_name(weight_dtype)));
  auto impl = std::make_shared<ModelImpl>();
  impl->config = config;
  uint64_t stream = seed * 0x2545f4914f6cdd1dull + 1;
  visit_weights(impl->weights, config, [&](ParamSlot& s) {
    stream += 0x9e3779b97f4a7c15ull;
    if (s.vector) {
      // Norm weights, biases, tables: small values around 0 (zero-centred norms stay near 1x).
      s.vector->resize(size_t(shape_numel(s.shape)));
      float* v = s.vector->data();
      fill_uniform(shape_numel(s.shape), 0.1f, stream, [v](int64_t i, float x) { v[i] = x; });
      return;
    }
    WeightMatrix& w = *s.matrix;
    w.dtype = weight_dtype;
    w.rows = s.shape[0];
    w.cols = s.shape[1];
    const int64_t n = w.rows * w.cols;
    // Uniform with variance 1/in: outputs keep the scale of the inputs.
    const float a = std::sqrt(3.0f / float(std::max<int64_t>(w.cols, 1)));
    std::byte* arena = impl->new_arena(size_t(n) * dtype_size(weight_dtype));
    w.data = arena;
    if (weight_dtype == DType::F32) {
      auto* p = reinterpret_cast<float*>(arena);
      fill_uniform(n, a, stream, [p](int64_t i, float x) { p[i] = x; });
    } else if (weight_dtype == DType::BF16) {
      auto* p = reinterpret_cast<uint16_t*>(arena);
      fill_uniform(n, a, stream, [p](int64_t i, float x) { p[i] = f32_to_bf16(x); });
    } else {
      auto* p = reinterpret_cast<uint16_t*>(arena);
      fill_uniform(n, a, stream, [p](int64_t i, float x) { p[i] = f32_to_f16(x); });
    }
  });
  return Model(impl);
}

TextContext TextContext::concat(const TextContext& a, const TextContext& b) {
  if (a.batch && b.batch && a.rows.shape.size() == 2 && b.rows.shape.size() == 2 &&
      a.rows.dim(1) != b.rows.dim(1))
    throw Error("TextContext::concat: hidden sizes differ");
  TextContext c;
  c.batch = a.batch + b.batch;
  c.text_len = std::max(a.text_len, b.text_len);
  c.lengths = a.lengths;
  c.lengths.insert(c.lengths.end(), b.lengths.begin(), b.lengths.end());
  const int64_t width = a.batch ? a.rows.dim(1) : b.rows.dim(1);
  c.rows = Tensor(
      {a.rows.numel() / std::max<int64_t>(width, 1) + b.rows.numel() / std::max<int64_t>(width, 1), width});
  std::copy(a.rows.data.begin(), a.rows.data.end(), c.rows.data.begin());
  std::copy(b.rows.data.begin(), b.rows.data.end(), c.rows.data.begin() + a.rows.numel());
  c.positions = Tensor({c.rows.dim(0), 3});
  std::copy(a.positions.data.begin(), a.positions.data.end(), c.positions.data.begin());
  std::copy(b.positions.data.begin(), b.positions.data.end(), c.positions.data.begin() + a.positions.numel());
  c.key_valid = a.key_valid;
  c.key_valid.insert(c.key_valid.end(), b.key_valid.begin(), b.key_valid.end());
  c.token_index = a.token_index;
  c.token_index.insert(c.token_index.end(), b.token_index.begin(), b.token_index.end());
  return c;
}

}  // namespace krea2
