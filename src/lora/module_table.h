// The parameters an adapter key can name, for one config: every module and parameter name of the model in
// both spellings (diffusers, original Krea: the name tables of model/names.h), dotted and flattened ('.' as
// '_'). Flattened keys (`lora_unet_txtfusion_layerwise_blocks_0_attn_wq`) are looked up here whole: module
// names contain underscores, so they cannot be split back.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "krea2/config.h"
#include "krea2/tensor.h"

namespace krea2 {

struct ParamInfo {
  std::string name;  // diffusers parameter name
  Shape shape;
  bool matrix = false;  // a Linear weight (WeightMatrix); otherwise a float vector of the weights struct
};

// What one module / parameter stem names.
struct ModuleRef {
  int weight = -1;        // index of the parameter a weight delta changes (-1: none)
  int bias = -1;          // index of the bias a .diff_b changes (-1: none)
  std::string ambiguous;  // set when two parameters flatten to this name: both, for the message
};

class ModuleTable {
 public:
  explicit ModuleTable(const Config& config);
  const std::vector<ParamInfo>& params() const { return params_; }
  // A stem with its prefix removed; null when it names nothing.
  const ModuleRef* find_dotted(const std::string& stem) const;
  const ModuleRef* find_flat(const std::string& stem) const;

 private:
  void add(std::map<std::string, ModuleRef>& table, const std::string& stem, int index, bool bias);
  std::vector<ParamInfo> params_;
  std::map<std::string, ModuleRef> dotted_, flat_;
};

}  // namespace krea2
