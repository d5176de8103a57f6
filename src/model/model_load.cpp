// Model::load: bind every parameter the config implies to a checkpoint tensor, checking names, shapes,
// dtypes.
#include <filesystem>
#include <set>
#include <sstream>

#include "krea2/model.h"
#include "model/model_impl.h"
#include "model/names.h"

namespace krea2 {

namespace fs = std::filesystem;

namespace {

bool is_float_dtype(DType t) {
  return t == DType::F32 || t == DType::F16 || t == DType::BF16;
}

struct FormatGuess {
  CheckpointFormat format;
  std::string prefix;
};

FormatGuess detect_format(const Checkpoint& ckpt) {
  const char* prefixes[] = {"", "model.diffusion_model.", "diffusion_model.", "model.", "transformer."};
  for (auto f : {CheckpointFormat::kDiffusers, CheckpointFormat::kKrea})
    for (const char* p : prefixes)
      if (ckpt.find(std::string(p) + format_probe_name(f))) return {f, p};
  throw Error(ckpt.folder() + ": not a Krea 2 transformer checkpoint: found neither '" +
              format_probe_name(CheckpointFormat::kDiffusers) + "' (diffusers names) nor '" +
              format_probe_name(CheckpointFormat::kKrea) + "' (original Krea names)");
}

void bind_all(ModelImpl& m, const LoadOptions& options) {
  const Checkpoint& ckpt = *m.checkpoint;
  const FormatGuess guess = detect_format(ckpt);
  std::set<std::string> used;
  std::vector<std::string> problems;
  visit_weights(m.weights, m.config, [&](ParamSlot& slot) {
    const TensorView* t = nullptr;
    std::string found_name;
    for (const auto& n : checkpoint_names(slot.name, guess.format, guess.prefix)) {
      if ((t = ckpt.find(n))) {
        found_name = n;
        break;
      }
    }
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
    if (!is_float_dtype(t->dtype)) {
      problems.push_back("tensor '" + found_name + "': expected dtype F32, F16 or BF16, found " +
                         std::string(dtype_name(t->dtype)));
      return;
    }
    if (slot.vector) {
      *slot.vector = to_float_tensor(*t).data;
      return;
    }
    WeightMatrix& w = *slot.matrix;
    w.dtype = t->dtype;
    w.rows = slot.shape[0];
    w.cols = slot.shape[1];
    w.data = t->data;
    // sgemm wants aligned float32; a misaligned F32 tensor (odd header padding) gets an aligned copy.
    if (t->dtype == DType::F32 && reinterpret_cast<uintptr_t>(t->data) % alignof(float) != 0) {
      std::byte* arena = m.new_arena(t->nbytes + 64);
      auto* dst = reinterpret_cast<std::byte*>((reinterpret_cast<uintptr_t>(arena) + 63) & ~uintptr_t(63));
      std::copy(t->data, t->data + t->nbytes, dst);
      w.data = dst;
    }
  });
  std::vector<std::string> unexpected;
  for (const TensorView* t : ckpt.tensors())
    if (!used.count(t->name) && !is_ignorable_extra(t->name, guess.format, guess.prefix))
      unexpected.push_back(t->name);
  if (!unexpected.empty()) {
    std::ostringstream os;
    os << unexpected.size() << " unexpected tensor(s) not used by this config:";
    for (size_t i = 0; i < unexpected.size() && i < 10; ++i) os << " '" << unexpected[i] << "'";
    if (unexpected.size() > 10) os << " ...";
    if (options.allow_unexpected) {
      if (options.warnings) options.warnings->push_back(ckpt.folder() + ": " + os.str());
    } else {
      problems.push_back(os.str());
    }
  }
  if (!problems.empty()) {
    std::ostringstream os;
    os << ckpt.folder() << " (" << format_name(guess.format) << " names): checkpoint does not match config ("
       << problems.size() << " problem(s)):";
    for (size_t i = 0; i < problems.size() && i < 20; ++i) os << "\n  " << problems[i];
    if (problems.size() > 20) os << "\n  ... and " << problems.size() - 20 << " more";
    throw Error(os.str());
  }
}

}  // namespace

Model Model::load(const std::string& path, const LoadOptions& options) {
  auto impl = std::make_shared<ModelImpl>();
  if (!fs::exists(path)) throw Error(path + ": no such file or folder");
  const bool single_file = fs::is_regular_file(path) && path.size() > 12 &&
                           path.compare(path.size() - 12, 12, ".safetensors") == 0;
  std::string folder = single_file ? fs::path(path).parent_path().string() : resolve_model_folder(path);
  if (folder.empty()) folder = ".";
  const std::string config_path = folder + "/config.json";
  if (fs::exists(config_path)) {
    impl->config = Config::from_json_file(config_path, options.warnings);
  } else if (!single_file) {
    throw Error(folder + ": no config.json (a diffusers model folder holds config.json beside the weights)");
  }
  impl->checkpoint = std::make_unique<Checkpoint>(Checkpoint::open(single_file ? path : folder));
  bind_all(*impl, options);
  return Model(impl);
}

}  // namespace krea2
