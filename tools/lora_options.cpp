#include "lora_options.h"

#include <cmath>
#include <cstdio>

namespace krea2::cli {

const std::set<std::string> kLoraValueFlags = {"--lora", "--lora-scale"};
const std::set<std::string> kLoraSwitches = {"--lora-merge", "--lora-ignore-unknown"};

std::string lora_help(int column) {
  const std::pair<const char*, const char*> lines[] = {
      {"--lora FILE[:S]",
       "attach an adapter (LoRA, LoHa, LoKr, full deltas; any layout krea2 inspect --lora"},
      {"", "reads) at strength S (default 1); repeat to stack adapters"},
      {"--lora-scale S",
       "multiplies every adapter's strength (diffusers' attention_kwargs scale), default 1"},
      {"--lora-merge", "fold the deltas into float32 copies of the matrices they change (fastest per step)"},
      {"", "instead of adding low-rank products to the layer outputs at run time"},
      {"--lora-ignore-unknown", "adapter keys that match no parameter: a warning instead of an error"},
  };
  std::string s;
  for (const auto& [flag, text] : lines) {
    std::string line = "  " + std::string(flag);
    if (int(line.size()) + 1 > column) {
      s += line + "\n";
      line.clear();
    }
    line.resize(size_t(column), ' ');
    s += line + text + "\n";
  }
  return s;
}

LoraSetup apply_lora_options(const Args& args, const Model& model) {
  const float scale = float(args.get_double("--lora-scale", 1.0));
  if (!std::isfinite(scale)) throw Error("--lora-scale must be a finite number");
  const std::vector<std::string> files = args.all("--lora");
  if (files.empty()) {
    for (const char* flag : {"--lora-scale", "--lora-merge", "--lora-ignore-unknown"})
      if (args.has(flag)) throw Error(std::string(flag) + " needs --lora");
    return {model, 1.0f};
  }
  LoraOptions options;
  options.merge = args.has("--lora-merge");
  options.ignore_unknown = args.has("--lora-ignore-unknown");
  std::vector<std::string> warnings;
  options.warnings = &warnings;
  std::vector<LoraSpec> specs;
  for (const std::string& f : files) {
    const auto [path, strength] = parse_lora_argument(f);
    specs.push_back({LoraAdapter::load(path), options.merge ? strength * scale : strength});
  }
  LoraSetup setup{model.with_loras(specs, options), options.merge ? 1.0f : scale};
  for (const std::string& w : warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
  return setup;
}

}  // namespace krea2::cli
