// TextEncoder::load: find the weights (a Qwen3-VL folder, a pipeline root's text_encoder/, a single
// safetensors file, a GGUF), recognise the naming scheme, settle the config (config.json, GGUF metadata, or
// the tensor shapes) and the default taps (the pipeline's model_index.json), then bind every parameter.
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "io/gguf.h"
#include "krea2/error.h"
#include "krea2/text_encoder.h"
#include "model/int8_weights.h"
#include "model/weight_binding.h"
#include "tensor/quant_blocks.h"
#include "text/encoder_names.h"
#include "text/encoder_weights.h"

namespace krea2 {

namespace fs = std::filesystem;

namespace {

constexpr TextEncoderNames kAllNames[] = {TextEncoderNames::kHub, TextEncoderNames::kBare,
                                          TextEncoderNames::kComfy, TextEncoderNames::kGguf,
                                          TextEncoderNames::kPlain};

TextEncoderNames detect_names(const Checkpoint& ckpt) {
  for (TextEncoderNames n : kAllNames)
    if (ckpt.find(text_encoder_checkpoint_name("layers.0.self_attn.q_proj.weight", n))) return n;
  throw Error(
      ckpt.source() +
      ": not a Qwen3 / Qwen3-VL text encoder: no 'model.language_model.layers.0.self_attn.q_proj.weight' "
      "(transformers), 'language_model.layers.0...', 'model.layers.0...' (ComfyUI) or "
      "'blk.0.attn_q.weight' (GGUF)" +
      std::string(ckpt.tensors().empty() ? " (it holds no tensors)" : ""));
}

const TensorView* find(const Checkpoint& ckpt, TextEncoderNames names, const std::string& name) {
  return ckpt.find(text_encoder_checkpoint_name(name, names));
}

// The config a single file implies: sizes from the tensor shapes, eps and theta Qwen3-VL's unless a GGUF's
// metadata says otherwise.
TextEncoderConfig config_from_shapes(const Checkpoint& ckpt, TextEncoderNames names,
                                     std::vector<std::string>& defaulted) {
  auto shape = [&](const std::string& name, size_t rank) -> const Shape& {
    const TensorView* t = find(ckpt, names, name);
    if (!t)
      throw Error(ckpt.source() + ": missing tensor '" + text_encoder_checkpoint_name(name, names) + "'");
    if (t->shape.size() != rank)
      throw Error(ckpt.source() + ": tensor '" + t->name + "' has shape " + shape_str(t->shape) +
                  ", expected " + std::to_string(rank) + " dimensions");
    return t->shape;
  };
  TextEncoderConfig c;
  const Shape& embed = shape("embed_tokens.weight", 2);
  c.vocab_size = embed[0];
  c.hidden_size = embed[1];
  c.head_dim = shape("layers.0.self_attn.q_norm.weight", 1)[0];
  if (c.head_dim <= 0) throw Error(ckpt.source() + ": q_norm has no elements");
  c.num_heads = shape("layers.0.self_attn.q_proj.weight", 2)[0] / c.head_dim;
  c.num_kv_heads = shape("layers.0.self_attn.k_proj.weight", 2)[0] / c.head_dim;
  c.intermediate_size = shape("layers.0.mlp.gate_proj.weight", 2)[0];
  int64_t layers = 0;
  while (layers < 1024 && find(ckpt, names, "layers." + std::to_string(layers) + ".self_attn.q_proj.weight"))
    ++layers;
  c.num_layers = layers;
  defaulted = {"rms_norm_eps", "rope_theta"};
  return c;
}

// llama.cpp's metadata for qwen3 / qwen3vl: <arch>.block_count, .embedding_length, ...
void apply_gguf_metadata(const GgufFile& g, TextEncoderConfig& c, std::vector<std::string>& defaulted,
                         int& keys_read) {
  const std::string arch = g.get_string("general.architecture").value_or("");
  if (arch.empty()) return;
  auto take_int = [&](const char* key, int64_t& v) {
    if (auto x = g.get_int(arch + "." + key)) v = *x, ++keys_read;
  };
  take_int("block_count", c.num_layers);
  take_int("embedding_length", c.hidden_size);
  take_int("feed_forward_length", c.intermediate_size);
  take_int("attention.head_count", c.num_heads);
  take_int("attention.head_count_kv", c.num_kv_heads);
  take_int("attention.key_length", c.head_dim);
  auto erase = [&](const char* key) { std::erase(defaulted, std::string(key)); };
  if (auto x = g.get_float(arch + ".attention.layer_norm_rms_epsilon"))
    c.rms_norm_eps = *x, ++keys_read, erase("rms_norm_eps");
  if (auto x = g.get_float(arch + ".rope.freq_base")) c.rope_theta = *x, ++keys_read, erase("rope_theta");
  if (auto x = g.get_int_array(arch + ".rope.dimension_sections")) {
    c.mrope_section.clear();
    for (int64_t s : *x)
      if (s > 0) c.mrope_section.push_back(s);
    ++keys_read;
  }
}

// The pipeline root a text_encoder/ folder sits in holds model_index.json with the taps.
std::vector<int> read_taps(const fs::path& index_path, int64_t num_layers) {
  std::ifstream in(index_path, std::ios::binary);
  if (!in) throw Error(index_path.string() + ": cannot open");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw Error(index_path.string() + ": not valid JSON: " + e.what());
  }
  std::vector<int> taps;
  if (!j.is_object() || !j.contains("text_encoder_select_layers")) return taps;
  const auto& v = j["text_encoder_select_layers"];
  if (!v.is_array() || v.empty())
    throw Error(index_path.string() + ": 'text_encoder_select_layers' must be a non-empty array of integers");
  for (const auto& x : v) {
    if (!x.is_number_integer() || x.get<int64_t>() < 0 || x.get<int64_t>() > num_layers)
      throw Error(index_path.string() + ": 'text_encoder_select_layers' entries must be integers in 0.." +
                  std::to_string(num_layers) + " (the encoder's hidden states), found " + x.dump());
    taps.push_back(x.get<int>());
  }
  return taps;
}

void bind(TextEncoderImpl& m, TextEncoderNames names) {
  const Checkpoint& ckpt = *m.checkpoint;
  std::set<std::string> used;
  std::vector<std::string> problems;
  WeightBinder binder(
      ckpt, [&](size_t bytes) { return m.new_arena(bytes); }, used, problems);
  visit_text_weights(m.weights, m.config, [&](ParamSlot& slot) {
    const std::string name = text_encoder_checkpoint_name(slot.name, names);
    const TensorView* t = binder.find(name, slot.shape);
    if (!t) return;
    if (slot.matrix) return binder.matrix(*t, name, slot.shape[0], slot.shape[1], *slot.matrix);
    binder.vector(*t, name, *slot.vector);
  });
  std::vector<std::string> unexpected;
  for (const TensorView* t : ckpt.tensors()) {
    if (used.count(t->name)) continue;
    if (is_ignorable_text_encoder_extra(t->name, names))
      m.load_info.ignored_tensors.push_back(t->name);
    else
      unexpected.push_back(t->name);
  }
  if (!unexpected.empty()) {
    std::string list;
    for (size_t i = 0; i < unexpected.size() && i < 10; ++i) list += (i ? ", " : "") + unexpected[i];
    if (unexpected.size() > 10) list += ", ...";
    problems.push_back(std::to_string(unexpected.size()) +
                       " unexpected tensor(s) not used by this config: '" + list + "'");
  }
  throw_binding_problems(ckpt.source() + " (" + text_encoder_names_description(names) +
                             "): the text encoder's tensors do not match its config",
                         problems);
}

std::string describe_quantization(const TextEncoderImpl& m) {
  std::set<std::string> kinds;
  visit_text_weights(const_cast<TextEncoderWeights&>(m.weights), m.config, [&](ParamSlot& s) {
    if (!s.matrix) return;
    const DType t = s.matrix->dtype;
    if (t == DType::I8) kinds.insert("int8 per row");
    if (t == DType::F8_E4M3 || t == DType::F8_E5M2) kinds.insert("fp8");
    if (dtype_is_block(t)) kinds.insert("ggml blocks");
  });
  std::string s;
  for (const std::string& k : kinds) s += (s.empty() ? "" : ", ") + k;
  return s.empty() ? "none" : s;
}

}  // namespace

TextEncoder::TextEncoder(std::shared_ptr<const TextEncoderImpl> impl) : impl_(std::move(impl)) {}

const TextEncoderConfig& TextEncoder::config() const {
  return impl_->config;
}
const TextEncoderLoadInfo& TextEncoder::load_info() const {
  return impl_->load_info;
}
const std::vector<int>& TextEncoder::default_taps() const {
  return impl_->default_taps;
}
Compute TextEncoder::compute() const {
  return impl_->compute;
}

int64_t TextEncoder::parameter_count() const {
  int64_t n = 0;
  visit_text_weights(const_cast<TextEncoderWeights&>(impl_->weights), impl_->config,
                     [&](ParamSlot& s) { n += shape_numel(s.shape); });
  return n;
}

TextEncoder TextEncoder::load(const std::string& path, const TextEncoderLoadOptions& options) {
  const fs::path p(path);
  if (!fs::exists(p)) throw Error(path + ": no such file or folder");
  // A pipeline root holds the encoder in text_encoder/.
  fs::path folder = fs::is_directory(p / "text_encoder") ? p / "text_encoder" : p;
  auto impl = std::make_shared<TextEncoderImpl>();
  if (options.verbose) std::fprintf(stderr, "loading text encoder %s\n", folder.string().c_str());
  impl->checkpoint = std::make_unique<Checkpoint>(Checkpoint::open(folder.string()));
  const Checkpoint& ckpt = *impl->checkpoint;
  const TextEncoderNames names = detect_names(ckpt);
  TextEncoderLoadInfo& info = impl->load_info;
  info.file_format = ckpt.describe();
  info.names = text_encoder_names_description(names);
  const bool single_file = fs::is_regular_file(p);
  const fs::path config_path = fs::path(ckpt.folder()) / "config.json";
  // A single file may sit beside its config.json (a text_encoder/ folder's weights named directly); one that
  // is not a Qwen3 config (a transformer's) is not used.
  bool config_beside = fs::exists(config_path);
  if (single_file && config_beside) try {
      (void)TextEncoderConfig::from_json_file(config_path.string());
    } catch (const Error&) {
      config_beside = false;
    }
  if (config_beside) {
    impl->config = TextEncoderConfig::from_json_file(config_path.string());
    info.config_source = config_path.string();
  } else {
    std::vector<std::string> defaulted;
    TextEncoderConfig c = config_from_shapes(ckpt, names, defaulted);
    int keys = 0;
    if (ckpt.gguf()) apply_gguf_metadata(*ckpt.gguf(), c, defaulted, keys);
    try {
      c.validate();
    } catch (const Error& e) {
      throw Error(ckpt.source() + ": " + e.what());
    }
    impl->config = c;
    info.config_source =
        keys ? "GGUF metadata (" + std::to_string(keys) + " keys) + tensor shapes" : "tensor shapes";
    if (!defaulted.empty()) {
      info.config_source += "; Qwen3-VL-4B defaults for";
      for (const std::string& k : defaulted) info.config_source += " " + k;
    }
  }
  // Taps: model_index.json of the pipeline root (the parent of text_encoder/, or the folder given).
  impl->default_taps = default_text_encoder_taps();
  info.taps_source = "Krea 2's default (2, 5, ..., 35)";
  const fs::path enc_folder(ckpt.folder());
  for (const fs::path& root : {enc_folder.parent_path(), enc_folder, p}) {
    const fs::path index = root / "model_index.json";
    if (!fs::is_regular_file(index)) continue;
    std::vector<int> taps = read_taps(index, impl->config.num_layers);
    if (taps.empty()) continue;
    impl->default_taps = std::move(taps);
    info.taps_source = index.string();
    break;
  }
  bind(*impl, names);
  info.quantization = describe_quantization(*impl);
  if (!info.ignored_tensors.empty() && options.warnings)
    options.warnings->push_back(ckpt.source() + ": note: ignored " +
                                std::to_string(info.ignored_tensors.size()) +
                                " tensor(s) the text path never reads (vision tower, LM head)");
  const TextEncoder encoder(impl);
  return options.compute == Compute::kF32 ? encoder : encoder.with_compute(options.compute);
}

TextEncoder TextEncoder::with_compute(Compute mode) const {
  const std::shared_ptr<const TextEncoderImpl> root = impl_->base ? impl_->base : impl_;
  auto impl = std::make_shared<TextEncoderImpl>();
  impl->config = root->config;
  impl->load_info = root->load_info;
  impl->default_taps = root->default_taps;
  impl->weights = root->weights;
  impl->compute = mode;
  impl->base = root;
  if (mode == Compute::kInt8)
    visit_text_weights(impl->weights, impl->config, [&](ParamSlot& s) {
      // The embedding is looked up, not multiplied: it keeps its stored format.
      if (!s.matrix || s.matrix == &impl->weights.embed || is_int8_ready(*s.matrix)) return;
      quantize_weight_rows_int8(*s.matrix, 0, [&](size_t bytes) { return impl->new_arena(bytes); });
    });
  return TextEncoder(impl);
}

}  // namespace krea2
