// Where a pipeline's components are: a diffusers root's folders, and the tokenizer beside a text encoder.
#include <filesystem>

#include "krea2/pipeline.h"

namespace krea2 {

namespace fs = std::filesystem;

PipelinePaths PipelinePaths::from_root(const std::string& root) {
  const fs::path r(root);
  if (!fs::is_regular_file(r / "model_index.json"))
    throw Error(root + ": not a diffusers pipeline root (no model_index.json)");
  PipelinePaths p;
  const std::pair<const char*, std::string*> parts[] = {{"transformer", &p.transformer},
                                                        {"text_encoder", &p.text_encoder},
                                                        {"tokenizer", &p.tokenizer},
                                                        {"vae", &p.vae}};
  for (const auto& [name, path] : parts) {
    if (!fs::is_directory(r / name)) throw Error(root + ": pipeline root without " + name + "/");
    *path = (r / name).string();
  }
  return p;
}

std::string find_tokenizer(const std::string& encoder_path) {
  const fs::path p(encoder_path);
  const bool file = fs::is_regular_file(p);
  const fs::path folder =
      file ? p.parent_path() : (fs::is_directory(p / "text_encoder") ? p / "text_encoder" : p);
  for (const fs::path& candidate : {folder.parent_path() / "tokenizer", folder / "tokenizer",
                                    folder / "tokenizer.json", folder / "vocab.json"})
    if (fs::exists(candidate)) return candidate.string();
  if (file && p.extension() == ".gguf") return p.string();
  throw Error(encoder_path +
              ": no tokenizer found beside the text encoder (looked for ../tokenizer/, tokenizer.json, "
              "vocab.json): give the tokenizer's path");
}

}  // namespace krea2
