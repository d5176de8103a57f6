#include "io/checkpoint.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <string_view>

#include "io/gguf.h"
#include "krea2/error.h"

namespace krea2 {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kDefaultIndex = "diffusion_pytorch_model.safetensors.index.json";
constexpr std::string_view kDefaultWeights = "diffusion_pytorch_model.safetensors";
constexpr std::string_view kIndexSuffix = ".safetensors.index.json";
constexpr std::string_view kWeightsSuffix = ".safetensors";

bool is_dir(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);
}

bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

std::string parent_folder(const fs::path& file) {
  fs::path parent = file.parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}

// Picks the weights file of a model folder, in order of preference: the diffusers names, then a lone index,
// then a lone .safetensors file.
fs::path find_weights(const fs::path& folder) {
  if (is_file(folder / kDefaultIndex)) return folder / kDefaultIndex;
  if (is_file(folder / kDefaultWeights)) return folder / kDefaultWeights;
  std::vector<std::string> indexes, weights;
  std::error_code ec;
  fs::directory_iterator it(folder, ec);
  if (ec) throw Error(folder.string() + ": cannot list folder: " + ec.message());
  for (const fs::directory_entry& e : it) {
    if (!is_file(e.path())) continue;
    std::string name = e.path().filename().string();
    if (name.ends_with(kIndexSuffix)) indexes.push_back(name);
    if (name.ends_with(kWeightsSuffix)) weights.push_back(name);
  }
  if (indexes.size() == 1) return folder / indexes[0];
  if (weights.size() == 1) return folder / weights[0];

  auto list = [](std::vector<std::string> names) {
    std::sort(names.begin(), names.end());
    std::string s;
    for (const std::string& n : names) s += (s.empty() ? "" : ", ") + n;
    return s.empty() ? std::string("none") : s;
  };
  throw Error(folder.string() + ": cannot tell which weights to load: expected " +
              std::string(kDefaultIndex) + " or " + std::string(kDefaultWeights) + ", or exactly one *" +
              std::string(kIndexSuffix) + " or *" + std::string(kWeightsSuffix) +
              " file; found index files: " + list(indexes) + "; safetensors files: " + list(weights));
}

// A shard name from an index must name a file next to the index: nothing that could point elsewhere.
bool safe_shard_name(const std::string& name) {
  return !name.empty() && name.find('/') == std::string::npos && name.find('\\') == std::string::npos &&
         name.find("..") == std::string::npos && name.find('\0') == std::string::npos && name != ".";
}

// A .gguf name, or the GGUF magic at the start of the file.
bool is_gguf_file(const std::string& path) {
  if (path.ends_with(".gguf")) return true;
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  char magic[4] = {};
  const size_t got = std::fread(magic, 1, 4, f);
  std::fclose(f);
  return got == 4 && std::memcmp(magic, "GGUF", 4) == 0;
}

}  // namespace

std::string resolve_model_folder(const std::string& path) {
  fs::path p(path);
  if (is_dir(p / "transformer")) return (p / "transformer").string();
  if (is_dir(p)) return p.string();
  if (is_file(p)) return parent_folder(p);
  throw Error(path + ": no such file or folder");
}

Checkpoint Checkpoint::open(const std::string& path) {
  fs::path p(path);
  fs::path weights;
  if (is_dir(p)) {
    weights = find_weights(resolve_model_folder(path));
  } else if (is_file(p)) {
    weights = p;
  } else {
    throw Error(path + ": no such file or folder");
  }

  Checkpoint ck;
  ck.folder_ = parent_folder(weights);
  const std::string wpath = weights.string();
  ck.source_ = wpath.ends_with(".json") ? ck.folder_ : wpath;

  if (is_gguf_file(wpath)) {
    ck.gguf_ = std::make_unique<GgufFile>(wpath);
    for (const TensorView& t : ck.gguf_->tensors()) ck.by_name_[t.name] = &t;
    return ck;
  }
  if (!wpath.ends_with(".json")) {
    ck.files_.push_back(std::make_unique<SafetensorsFile>(wpath));
    // Names within one file are unique (the reader rejects duplicate keys).
    for (const TensorView& t : ck.files_[0]->tensors()) ck.by_name_[t.name] = &t;
    return ck;
  }

  // Sharded: index -> shard files.
  nlohmann::json index;
  try {
    MappedFile f(wpath);
    const char* text = reinterpret_cast<const char*>(f.data());
    index = nlohmann::json::parse(text, text + f.size());
  } catch (const nlohmann::json::exception& e) {
    throw Error(wpath + ": index is not valid JSON: " + e.what());
  }
  if (!index.is_object()) throw Error(wpath + ": index is not a JSON object");
  auto wm = index.find("weight_map");
  if (wm == index.end()) throw Error(wpath + ": index has no \"weight_map\"");
  if (!wm->is_object()) throw Error(wpath + ": \"weight_map\" is not a JSON object");

  std::set<std::string> shards;  // sorted, so files() come in shard order
  for (const auto& [name, shard] : wm->items()) {
    if (!shard.is_string()) throw Error(wpath + ": weight_map entry for tensor " + name + " is not a string");
    const std::string& s = shard.get_ref<const std::string&>();
    if (!safe_shard_name(s))
      throw Error(wpath + ": tensor " + name + ": shard name \"" + s +
                  "\" must be a plain file name in the index's folder (no '/', '\\' or '..')");
    shards.insert(s);
  }

  std::map<const SafetensorsFile*, std::string> shard_of;
  std::map<std::string, const SafetensorsFile*> file_of;
  for (const std::string& s : shards) {
    fs::path sp = fs::path(ck.folder_) / s;
    if (!is_file(sp)) throw Error(wpath + ": shard " + s + " not found in " + ck.folder_);
    ck.files_.push_back(std::make_unique<SafetensorsFile>(sp.string()));
    const SafetensorsFile* file = ck.files_.back().get();
    shard_of[file] = s;
    file_of[s] = file;
    for (const TensorView& t : file->tensors()) {
      auto [it, inserted] = ck.by_name_.emplace(t.name, &t);
      if (!inserted) {
        // Find which earlier shard holds it, for the message.
        std::string other;
        for (const auto& f : ck.files_)
          if (f.get() != file && f->find(t.name)) other = shard_of[f.get()];
        throw Error(wpath + ": tensor " + t.name + " appears in two shards: " + other + " and " + s);
      }
    }
  }

  for (const auto& [name, shard] : wm->items()) {
    const std::string& s = shard.get_ref<const std::string&>();
    if (!file_of.at(s)->find(name))
      throw Error(wpath + ": tensor " + name + " is mapped to shard " + s + ", which does not hold it");
  }
  return ck;
}

Checkpoint::Checkpoint() = default;
Checkpoint::Checkpoint(Checkpoint&&) noexcept = default;
Checkpoint& Checkpoint::operator=(Checkpoint&&) noexcept = default;
Checkpoint::~Checkpoint() = default;

std::string Checkpoint::describe() const {
  if (gguf_) return "GGUF v" + std::to_string(gguf_->version());
  if (files_.size() == 1 && source_ == files_[0]->path()) return "safetensors";
  return "safetensors, " + std::to_string(files_.size()) + " shard(s)";
}

const TensorView* Checkpoint::find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

std::vector<const TensorView*> Checkpoint::tensors() const {
  std::vector<const TensorView*> out;
  out.reserve(by_name_.size());
  for (const auto& [name, view] : by_name_) out.push_back(view);
  return out;
}

}  // namespace krea2
