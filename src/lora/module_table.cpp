#include "lora/module_table.h"

#include <algorithm>

#include "model/names.h"
#include "model/weights.h"

namespace krea2 {

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() > suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

ModuleTable::ModuleTable(const Config& config) {
  ModelWeights scratch;  // only walked for names and shapes; nothing is allocated
  visit_weights(scratch, config, [&](ParamSlot& s) {
    params_.push_back({s.name, s.shape, s.matrix != nullptr});
  });
  for (size_t i = 0; i < params_.size(); ++i) {
    std::vector<std::string> spellings = checkpoint_names(params_[i].name, CheckpointFormat::kKrea);
    spellings.push_back(params_[i].name);
    for (const std::string& s : spellings) {
      // A module's weight and bias share its stem (`blocks.0.attn.wq`); other parameters are their own stem
      // (`blocks.0.prenorm.scale`, `blocks.0.mod.lin`).
      std::string stem = s;
      bool bias = false;
      if (ends_with(s, ".weight")) {
        stem = s.substr(0, s.size() - 7);
      } else if (ends_with(s, ".bias")) {
        stem = s.substr(0, s.size() - 5);
        bias = true;
      }
      add(dotted_, stem, int(i), bias);
      std::string flat = stem;
      std::replace(flat.begin(), flat.end(), '.', '_');
      add(flat_, flat, int(i), bias);
    }
  }
}

void ModuleTable::add(std::map<std::string, ModuleRef>& table, const std::string& stem, int index,
                      bool bias) {
  ModuleRef& r = table[stem];
  int& slot = bias ? r.bias : r.weight;
  if (slot >= 0 && slot != index && r.ambiguous.empty())
    r.ambiguous = params_[size_t(slot)].name + " and " + params_[size_t(index)].name;
  slot = index;
}

const ModuleRef* ModuleTable::find_dotted(const std::string& stem) const {
  auto it = dotted_.find(stem);
  return it == dotted_.end() ? nullptr : &it->second;
}

const ModuleRef* ModuleTable::find_flat(const std::string& stem) const {
  auto it = flat_.find(stem);
  return it == flat_.end() ? nullptr : &it->second;
}

}  // namespace krea2
