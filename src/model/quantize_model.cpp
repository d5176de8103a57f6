// quantize_model: a loaded model (any stored type) written as GGUF or ComfyUI fp8 / int8 safetensors, one
// tensor at a time: each weight is dequantized a block of rows at a time, re-encoded and streamed out.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "io/gguf_writer.h"
#include "io/safetensors_stream.h"
#include "krea2/error.h"
#include "krea2/quantize.h"
#include "lora/lora_state.h"
#include "model/model_impl.h"
#include "model/names.h"
#include "model/weight_encode.h"
#include "ops/weight_decode.h"

namespace krea2 {

namespace {

constexpr int64_t kRowsPerChunk = 256;

// One parameter as it will be written.
struct OutTensor {
  std::string name;  // original Krea name
  Shape shape;       // torch order; modulation tables flat, as the original files store them
  const ParamSlot* slot;
  RowEncoding encoding;
};

// llama.cpp's general.file_type for a recipe ("mostly Q4_K_M" = 15, ...).
uint32_t gguf_file_type(const std::string& recipe) {
  const std::pair<const char*, uint32_t> types[] = {
      {"F32", 0},     {"F16", 1},     {"Q4_0", 2},    {"Q4_1", 3},    {"Q8_0", 7},
      {"Q5_0", 8},    {"Q5_1", 9},    {"Q3_K_S", 11}, {"Q3_K_M", 12}, {"Q4_K_S", 14},
      {"Q4_K_M", 15}, {"Q5_K_S", 16}, {"Q5_K_M", 17}, {"Q6_K", 18},   {"BF16", 32},
  };
  for (const auto& [name, id] : types)
    if (recipe == name) return id;
  return 0;
}

void set_config_metadata(GgufWriter& w, const Config& c) {
  const nlohmann::json j = nlohmann::json::parse(c.to_json_text());
  for (const auto& [key, value] : j.items()) {
    if (key.empty() || key[0] == '_') continue;
    const std::string k = "krea2." + key;
    if (value.is_array()) {
      std::vector<int32_t> v;
      for (const auto& x : value) v.push_back(x.get<int32_t>());
      w.set_i32_array(k, v);
    } else if (value.is_number_integer()) {
      w.set_u32(k, value.get<uint32_t>());
    } else {
      w.set_f32(k, value.get<float>());
    }
  }
}

// Streams the rows of one weight, re-encoded; emit(bytes, n) receives them a chunk at a time. Returns the row
// scales (I8) for the caller to write after the weight.
template <class Emit>
std::vector<float> encode_matrix(const WeightMatrix& w, RowEncoding enc, Emit&& emit) {
  const int64_t row_bytes = dtype_row_bytes(enc.dtype, w.cols);
  std::vector<float> rows(size_t(std::min(kRowsPerChunk, w.rows) * w.cols));
  std::vector<std::byte> out(size_t(std::min(kRowsPerChunk, w.rows) * row_bytes));
  std::vector<float> row_scales(enc.dtype == DType::I8 ? size_t(w.rows) : 0);
  auto decode_chunk = [&](int64_t r0, int64_t n) {
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < n; ++r) decode_weight_segment(w, r0 + r, 0, w.cols, rows.data() + r * w.cols);
  };
  if (enc.dtype == DType::F8_E4M3 || enc.dtype == DType::F8_E5M2) {  // the per-tensor scale needs max |w|
    float max_abs = 0;
    for (int64_t r0 = 0; r0 < w.rows; r0 += kRowsPerChunk) {
      const int64_t n = std::min(kRowsPerChunk, w.rows - r0);
      decode_chunk(r0, n);
      for (int64_t i = 0; i < n * w.cols; ++i) max_abs = std::max(max_abs, std::fabs(rows[size_t(i)]));
    }
    enc.scale = fp8_tensor_scale(enc.dtype, max_abs);
    row_scales.assign(1, enc.scale);
  }
  for (int64_t r0 = 0; r0 < w.rows; r0 += kRowsPerChunk) {
    const int64_t n = std::min(kRowsPerChunk, w.rows - r0);
    decode_chunk(r0, n);
    encode_rows(enc, rows.data(), n, w.cols, out.data(),
                row_scales.empty() ? nullptr : row_scales.data() + r0);
    emit(out.data(), size_t(n * row_bytes));
  }
  return row_scales;
}

std::vector<OutTensor> plan(ModelImpl& m, std::vector<ParamSlot>& slots, const QuantRecipe& recipe,
                            int64_t rotation_group) {
  visit_weights(m.weights, m.config, [&](ParamSlot& s) { slots.push_back(s); });
  std::vector<OutTensor> out;
  for (const ParamSlot& s : slots) {
    OutTensor t{checkpoint_names(s.name, CheckpointFormat::kKrea)[0], s.shape, &s, {}};
    if (s.name.find("scale_shift_table") != std::string::npos) t.shape = {shape_numel(s.shape)};
    if (s.matrix) {
      QuantRecipe r = recipe;
      r.rotation_group = rotation_group;
      t.encoding.dtype = recipe_weight_type(r, s.name, s.shape[0], s.shape[1]);
      t.encoding.rotation_group = t.encoding.dtype == DType::I8 ? rotation_group : 0;
    }
    out.push_back(std::move(t));
  }
  return out;
}

void write_gguf(ModelImpl& m, const std::vector<OutTensor>& tensors, const std::string& output,
                const QuantizeOptions& options) {
  GgufWriter w(output);
  w.set_string("general.architecture", "krea2");
  w.set_string("general.name", std::filesystem::path(output).stem().string());
  w.set_u32("general.quantization_version", 2);
  w.set_u32("general.file_type", gguf_file_type(options.recipe));
  set_config_metadata(w, m.config);
  for (const OutTensor& t : tensors) w.add_tensor(t.name, t.encoding.dtype, t.shape);
  int64_t done = 0;
  for (const OutTensor& t : tensors) {
    if (t.slot->matrix) {
      encode_matrix(*t.slot->matrix, t.encoding,
                    [&](const std::byte* p, size_t n) { w.write_tensor_chunk(t.name, p, n); });
    } else {
      w.write_tensor(t.name, t.slot->vector->data(), t.slot->vector->size() * sizeof(float));
    }
    if (options.progress) options.progress(++done, int64_t(tensors.size()), t.name);
  }
  w.finish();
}

void write_comfy(ModelImpl& m, const std::vector<OutTensor>& tensors, const std::string& output,
                 const QuantizeOptions& options) {
  SafetensorsStreamWriter w(output);
  w.set_metadata("config", m.config.to_json_text());
  w.set_metadata("format", "pt");
  struct Quantized {
    std::string scale_name, quant_name, quant_json;
    Shape scale_shape;
  };
  std::vector<Quantized> extra(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const OutTensor& t = tensors[i];
    const DType stored = t.slot->matrix ? t.encoding.dtype : DType::F32;
    w.add_tensor(t.name, stored, t.shape);
    if (stored != DType::I8 && stored != DType::F8_E4M3 && stored != DType::F8_E5M2) continue;
    const QuantCompanionNames names = quant_companion_names(t.name);
    Quantized& q = extra[i];
    q.scale_name = names.weight_scale[0];
    q.quant_name = names.comfy_quant;
    if (stored == DType::I8) {
      q.scale_shape = {t.shape[0], 1};
      q.quant_json = nlohmann::json{{"format", "int8_tensorwise"},
                                    {"convrot", true},
                                    {"convrot_groupsize", t.encoding.rotation_group}}
                         .dump();
    } else {
      q.quant_json = nlohmann::json{{"format", "float8_e4m3fn"}}.dump();
    }
    w.add_tensor(q.scale_name, DType::F32, q.scale_shape);
    w.add_tensor(q.quant_name, DType::U8, {int64_t(q.quant_json.size())});
  }
  int64_t done = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const OutTensor& t = tensors[i];
    if (!t.slot->matrix) {
      w.write_chunk(t.name, t.slot->vector->data(), t.slot->vector->size() * sizeof(float));
    } else {
      std::vector<float> scales = encode_matrix(
          *t.slot->matrix, t.encoding, [&](const std::byte* p, size_t n) { w.write_chunk(t.name, p, n); });
      if (!extra[i].scale_name.empty()) {
        w.write_chunk(extra[i].scale_name, scales.data(), scales.size() * sizeof(float));
        w.write_chunk(extra[i].quant_name, extra[i].quant_json.data(), extra[i].quant_json.size());
      }
    }
    if (options.progress) options.progress(++done, int64_t(tensors.size()), t.name);
  }
  w.finish();
}

}  // namespace

void quantize_model(const Model& model, const std::string& output, const QuantizeOptions& options) {
  check_no_runtime_lora(model.impl(), "quantize to " + output);
  const QuantRecipe recipe = quant_recipe(options.recipe);
  if (recipe.file == QuantRecipe::File::kComfyInt8) {
    int64_t g = options.rotation_group;
    while (g > 1 && g % 4 == 0) g /= 4;
    if (options.rotation_group < 4 || g != 1)
      throw Error("int8-convrot: the rotation group must be a power of 4 (4, 16, 64, ...), found " +
                  std::to_string(options.rotation_group));
  }
  auto& m = const_cast<ModelImpl&>(model.impl());  // visit_weights takes a mutable struct; nothing is changed
  std::vector<ParamSlot> slots;
  slots.reserve(1024);
  const std::vector<OutTensor> tensors = plan(m, slots, recipe, options.rotation_group);
  if (recipe.file == QuantRecipe::File::kGguf) {
    write_gguf(m, tensors, output, options);
  } else {
    write_comfy(m, tensors, output, options);
  }
}

}  // namespace krea2
