// LoraAdapter: the public handle of a parsed adapter file, its summary for `krea2 inspect --lora`, and the
// --lora FILE[:STRENGTH] argument.
#include <cmath>
#include <cstdlib>

#include "krea2/error.h"
#include "krea2/lora.h"
#include "lora/adapter.h"
#include "lora/resolve.h"

namespace krea2 {

LoraAdapter::LoraAdapter(std::shared_ptr<const LoraAdapterImpl> impl) : impl_(std::move(impl)) {}

LoraAdapter LoraAdapter::load(const std::string& path) {
  auto impl = std::make_shared<LoraAdapterImpl>();
  impl->path = path;
  impl->file = std::make_unique<SafetensorsFile>(path);
  parse_adapter(impl->file->tensors(), impl->file->metadata(), path, *impl);
  return LoraAdapter(std::move(impl));
}

const std::string& LoraAdapter::path() const {
  return impl_->path;
}

LoraSummary LoraAdapter::summary(const Config& config, bool check_shapes) const {
  const ModuleTable table(config);
  const Resolution r = resolve_adapter(*impl_, table, check_shapes);
  LoraSummary s;
  s.path = impl_->path;
  s.format = r.format.empty() ? "unknown (no key matches a parameter of the model)" : r.format;
  s.tensors = impl_->tensors;
  s.unmatched = r.unmatched;
  for (const ResolvedEntry& e : r.entries) {
    const AdapterEntry& a = *e.entry;
    if (e.weight >= 0)
      s.targets.push_back({a.stem, table.params()[size_t(e.weight)].name, delta_kind_name(a.kind), a.rank,
                           a.alpha.value_or(0.0), a.factor});
    if (e.bias >= 0)
      s.targets.push_back({a.stem, table.params()[size_t(e.bias)].name, "bias diff", 0, 0.0, 1.0});
  }
  return s;
}

std::pair<std::string, float> parse_lora_argument(const std::string& argument) {
  const size_t colon = argument.rfind(':');
  if (colon != std::string::npos && colon + 1 < argument.size()) {
    const std::string tail = argument.substr(colon + 1);
    char* end = nullptr;
    const double v = std::strtod(tail.c_str(), &end);
    if (*end == '\0') {
      if (!std::isfinite(v)) throw Error("--lora " + argument + ": the strength must be finite");
      if (colon == 0) throw Error("--lora " + argument + ": missing the file before ':'");
      return {argument.substr(0, colon), float(v)};
    }
  }
  if (argument.empty()) throw Error("--lora needs a file");
  return {argument, 1.0f};
}

}  // namespace krea2
