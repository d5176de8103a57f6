// Model::load: open the checkpoint (safetensors, sharded, GGUF), settle the config (config.json, GGUF
// metadata, or the tensor shapes), then bind every parameter the config implies to a checkpoint tensor,
// checking names, shapes and storage types, and picking up the quantization companions (ComfyUI scales,
// comfy_quant descriptions) of each weight.
#include <filesystem>
#include <set>
#include <sstream>
#include <stdexcept>

#include "krea2/model.h"
#include "model/comfy_quant.h"
#include "model/config_infer.h"
#include "model/gguf_config.h"
#include "model/model_impl.h"
#include "model/names.h"
#include "model/weight_binding.h"
#include "ops/weight_decode.h"
#include "tensor/quant_blocks.h"

namespace krea2 {

namespace fs = std::filesystem;

namespace {

struct FormatGuess {
  CheckpointFormat format;
  std::string prefix;
};

FormatGuess detect_format(const Checkpoint& ckpt) {
  const char* prefixes[] = {"", "model.diffusion_model.", "diffusion_model.", "model.", "transformer."};
  for (auto f : {CheckpointFormat::kDiffusers, CheckpointFormat::kKrea})
    for (const char* p : prefixes)
      if (ckpt.find(std::string(p) + format_probe_name(f))) return {f, p};
  throw Error(ckpt.source() + ": not a Krea 2 transformer checkpoint: found neither '" +
              format_probe_name(CheckpointFormat::kDiffusers) + "' (diffusers names) nor '" +
              format_probe_name(CheckpointFormat::kKrea) + "' (original Krea names)" +
              (ckpt.tensors().empty() ? " (it holds no tensors)" : ""));
}

// The tensor a diffusers parameter name maps to under `guess`, and its checkpoint name.
const TensorView* find_param(const Checkpoint& ckpt, const FormatGuess& guess, const std::string& name,
                             std::string* found_name = nullptr) {
  for (const auto& n : checkpoint_names(name, guess.format, guess.prefix))
    if (const TensorView* t = ckpt.find(n)) {
      if (found_name) *found_name = n;
      return t;
    }
  return nullptr;
}

std::string join(const std::vector<std::string>& names, size_t limit = 10) {
  std::string s;
  for (size_t i = 0; i < names.size() && i < limit; ++i) s += (i ? ", " : "") + names[i];
  if (names.size() > limit) s += ", ...";
  return s;
}

// Settles the config and records where it came from.
Config load_config(const Checkpoint& ckpt, const FormatGuess& guess, bool single_file,
                   const LoadOptions& options, LoadInfo& info) {
  const std::string config_path = ckpt.folder() + "/config.json";
  auto inferred = [&](bool validate) {
    return infer_config_from_shapes([&](const std::string& name) { return find_param(ckpt, guess, name); },
                                    ckpt.source(), validate);
  };
  if (ckpt.gguf()) {
    // A GGUF carries its config as krea2.* metadata, if at all; the shapes fill in whatever it lacks.
    InferredConfig from_shapes = inferred(false);
    std::vector<std::string> keys;
    Config c = apply_gguf_config_metadata(*ckpt.gguf(), from_shapes.config, &keys, options.warnings);
    if (keys.empty()) {
      try {
        c.validate();
      } catch (const Error& e) {
        throw Error(ckpt.source() + ": the config inferred from the tensor shapes is invalid: " + e.what());
      }
    }
    info.config_source =
        keys.empty() ? "tensor shapes" : "krea2.* metadata (" + std::to_string(keys.size()) + " keys)";
    for (const std::string& k : from_shapes.defaulted)
      if (std::find(keys.begin(), keys.end(), k) == keys.end()) info.config_defaulted.push_back(k);
    if (keys.size() < 17 && !keys.empty()) info.config_source += " + tensor shapes";
    return c;
  }
  if (fs::exists(config_path)) {
    info.config_source = config_path;
    return Config::from_json_file(config_path, options.warnings);
  }
  if (!single_file)
    throw Error(ckpt.folder() +
                ": no config.json (a diffusers model folder holds config.json beside the weights)");
  // Files krea2 quantize writes carry their config in the safetensors metadata.
  if (ckpt.files().size() == 1) {
    const auto& meta = ckpt.files()[0]->metadata();
    if (auto it = meta.find("config"); it != meta.end()) {
      info.config_source = "the file's __metadata__ \"config\"";
      return Config::from_json_text(it->second, ckpt.source() + " (__metadata__ config)", options.warnings);
    }
  }
  InferredConfig from_shapes = inferred(true);
  info.config_source = "tensor shapes (no config.json beside the file)";
  info.config_defaulted = from_shapes.defaulted;
  return from_shapes.config;
}

struct Binder {
  ModelImpl& m;
  const Checkpoint& ckpt;
  const FormatGuess& guess;
  std::set<std::string>& used;
  std::vector<std::string>& problems;
  WeightBinder bind{ckpt, [this](size_t bytes) { return m.new_arena(bytes); }, used, problems};

  void operator()(ParamSlot& slot) {
    std::string found_name;
    const TensorView* t = find_param(ckpt, guess, slot.name, &found_name);
    if (!t) {
      problems.push_back("missing tensor '" + checkpoint_names(slot.name, guess.format, guess.prefix)[0] +
                         "' (expected shape " + shape_str(slot.shape) + ")");
      return;
    }
    used.insert(found_name);
    // The original format stores modulation tables flat: accept any shape with the right element count there.
    const bool flat_ok =
        guess.format == CheckpointFormat::kKrea && slot.name.find("scale_shift_table") != std::string::npos;
    if (t->shape != slot.shape && !(flat_ok && t->numel() == shape_numel(slot.shape))) {
      problems.push_back("tensor '" + found_name + "': expected shape " + shape_str(slot.shape) + ", found " +
                         shape_str(t->shape));
      return;
    }
    if (slot.matrix) return bind.matrix(*t, found_name, slot.shape[0], slot.shape[1], *slot.matrix);
    bind.vector(*t, found_name, *slot.vector);
  }
};

void bind_all(ModelImpl& m, const FormatGuess& guess, const LoadOptions& options) {
  const Checkpoint& ckpt = *m.checkpoint;
  std::set<std::string> used;
  std::vector<std::string> problems;
  visit_weights(m.weights, m.config, Binder{m, ckpt, guess, used, problems});
  const std::string marker = scaled_fp8_marker_name(guess.prefix);
  if (ckpt.find(marker)) used.insert(marker);
  std::vector<std::string> unexpected;
  for (const TensorView* t : ckpt.tensors()) {
    if (used.count(t->name)) continue;
    if (is_ignorable_extra(t->name, guess.format, guess.prefix)) {
      m.load_info.ignored_tensors.push_back(t->name);
    } else {
      unexpected.push_back(t->name);
    }
  }
  if (!m.load_info.ignored_tensors.empty() && options.warnings)
    options.warnings->push_back(ckpt.source() + ": note: ignored " +
                                std::to_string(m.load_info.ignored_tensors.size()) +
                                " tensor(s) the model never reads: " + join(m.load_info.ignored_tensors));
  if (!unexpected.empty()) {
    std::ostringstream os;
    os << unexpected.size() << " unexpected tensor(s) not used by this config: '" << join(unexpected) << "'";
    if (options.allow_unexpected) {
      if (options.warnings) options.warnings->push_back(ckpt.source() + ": " + os.str());
    } else {
      problems.push_back(os.str());
    }
  }
  throw_binding_problems(
      ckpt.source() + " (" + format_name(guess.format) + " names): checkpoint does not match config",
      problems);
}

// What kind of quantization the bound weights use, for inspect.
std::string describe_quantization(const ModelImpl& m) {
  std::set<std::string> kinds;
  bool marker = false;
  for (const TensorView* t : m.checkpoint->tensors())
    if (t->name.ends_with("scaled_fp8")) marker = true;
  visit_weights(const_cast<ModelWeights&>(m.weights), m.config, [&](ParamSlot& s) {
    if (!s.matrix) return;
    const WeightMatrix& w = *s.matrix;
    if (w.dtype == DType::I8)
      kinds.insert(w.rotation_group
                       ? "int8_tensorwise + convrot (G = " + std::to_string(w.rotation_group) + ")"
                       : "int8_tensorwise");
    if (w.dtype == DType::F8_E4M3 || w.dtype == DType::F8_E5M2)
      kinds.insert(marker ? "ComfyUI scaled fp8 (scaled_fp8 marker, scale_weight)"
                          : "ComfyUI fp8 (weight_scale + comfy_quant)");
    if (dtype_is_block(w.dtype)) kinds.insert("ggml blocks");
  });
  std::string s;
  for (const std::string& k : kinds) s += (s.empty() ? "" : ", ") + k;
  return s.empty() ? "none" : s;
}

}  // namespace

Model Model::load(const std::string& path, const LoadOptions& options) {
  auto impl = std::make_shared<ModelImpl>();
  if (!fs::exists(path)) throw Error(path + ": no such file or folder");
  const bool single_file = fs::is_regular_file(path);
  impl->checkpoint = std::make_unique<Checkpoint>(Checkpoint::open(path));
  const Checkpoint& ckpt = *impl->checkpoint;
  const FormatGuess guess = detect_format(ckpt);
  LoadInfo& info = impl->load_info;
  info.file_format = ckpt.describe();
  info.names = std::string(format_name(guess.format)) + " names" +
               (guess.prefix.empty() ? "" : ", prefix '" + guess.prefix + "'");
  impl->config = load_config(ckpt, guess, single_file, options, info);
  bind_all(*impl, guess, options);
  info.quantization = describe_quantization(*impl);
  const Model model(impl);
  return options.compute == Compute::kF32 ? model : model.with_compute(options.compute, options.int8);
}

}  // namespace krea2
