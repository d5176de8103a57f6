#include "inspect_lora.h"

#include <cstdio>
#include <nlohmann/json.hpp>
#include <set>

#include "krea2/lora.h"
#include "krea2/model.h"

namespace krea2::cli {

namespace {

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

// "4" or "4..8" over the targets that have a value.
template <class Get>
std::string range(const LoraSummary& s, Get get) {
  std::set<double> values;
  for (const LoraTarget& t : s.targets)
    if (get(t) != 0) values.insert(get(t));
  if (values.empty()) return "-";
  if (values.size() == 1) return number(*values.begin());
  return number(*values.begin()) + ".." + number(*values.rbegin());
}

}  // namespace

int inspect_lora(const std::string& lora_path, const std::string& model_path, bool json) {
  const LoraAdapter adapter = LoraAdapter::load(lora_path);
  Config config;
  std::string against = "the default Krea 2 config, names only (give MODEL to check the shapes too)";
  if (!model_path.empty()) {
    LoadOptions load;
    load.allow_unexpected = true;
    config = Model::load(model_path, load).config();
    against = model_path;
  }
  const LoraSummary s = adapter.summary(config, !model_path.empty());
  const std::string rank = range(s, [](const LoraTarget& t) { return double(t.rank); });
  const std::string alpha = range(s, [](const LoraTarget& t) { return t.alpha; });
  if (json) {
    nlohmann::json j;
    j["adapter"] = s.path;
    j["format"] = s.format;
    j["resolved_against"] = model_path.empty() ? "default config" : model_path;
    j["tensors"] = s.tensors;
    j["rank"] = rank;
    j["alpha"] = alpha;
    j["targets"] = nlohmann::json::array();
    for (const LoraTarget& t : s.targets)
      j["targets"].push_back({{"key", t.key},
                              {"parameter", t.parameter},
                              {"kind", t.kind},
                              {"rank", t.rank},
                              {"alpha", t.alpha},
                              {"factor", t.factor}});
    j["unmatched"] = s.unmatched;
    std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return 0;
  }
  std::printf("adapter: %s\nformat: %s\nresolved against: %s\n", s.path.c_str(), s.format.c_str(),
              against.c_str());
  std::printf("tensors: %lld, targeted parameters: %zu, rank: %s, alpha: %s\n", (long long)s.tensors,
              s.targets.size(), rank.c_str(), alpha.c_str());
  std::printf("targets:\n");
  for (const LoraTarget& t : s.targets)
    std::printf("  %-56s -> %-52s %-9s rank %-4lld alpha %-8s factor %s\n", t.key.c_str(),
                t.parameter.c_str(), t.kind.c_str(), (long long)t.rank,
                t.alpha != 0 ? number(t.alpha).c_str() : "-", number(t.factor).c_str());
  std::printf("unmatched keys: %zu\n", s.unmatched.size());
  for (const std::string& k : s.unmatched) std::printf("  %s\n", k.c_str());
  return 0;
}

}  // namespace krea2::cli
