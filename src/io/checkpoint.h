// A set of weight files seen as one name -> tensor table: a single safetensors file, a sharded checkpoint
// through `*.safetensors.index.json`, a diffusers model folder (`DIR/transformer/` or `DIR` itself), or a
// GGUF file.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/safetensors.h"

namespace krea2 {

class GgufFile;

class Checkpoint {
 public:
  Checkpoint();
  Checkpoint(Checkpoint&&) noexcept;
  Checkpoint& operator=(Checkpoint&&) noexcept;
  ~Checkpoint();

  // `path` may be: a .safetensors file; a .safetensors.index.json file; a folder holding
  // diffusion_pytorch_model.safetensors[.index.json] (or any single *.safetensors / one
  // *.safetensors.index.json); a folder whose `transformer/` subfolder is such a folder. Throws krea2::Error
  // with a clear message otherwise. For an index: every shard named in weight_map must exist and hold the
  // tensors mapped to it; a tensor name appearing in two shards is an error; the index must be valid JSON
  // with a "weight_map" object of strings.
  // A .gguf file (or any file starting with the GGUF magic) is read as GGUF.
  static Checkpoint open(const std::string& path);

  // Folder that holds the weights (where config.json is looked for).
  const std::string& folder() const { return folder_; }
  // What error messages name: the weights file, or the folder of a sharded checkpoint.
  const std::string& source() const { return source_; }
  // "safetensors", "safetensors, 3 shards", "GGUF v3".
  std::string describe() const;
  const GgufFile* gguf() const { return gguf_.get(); }
  const TensorView* find(const std::string& name) const;
  // All tensors, sorted by name.
  std::vector<const TensorView*> tensors() const;
  const std::vector<std::unique_ptr<SafetensorsFile>>& files() const { return files_; }

 private:
  std::string folder_;
  std::string source_;
  std::unique_ptr<GgufFile> gguf_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const TensorView*> by_name_;
};

// Resolves the folder holding config.json + weights for a model path (DIR/transformer or DIR).
std::string resolve_model_folder(const std::string& path);

}  // namespace krea2
