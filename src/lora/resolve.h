// Adapter stems resolved against a model's parameters (lora/module_table.h), every shape checked against the
// parameter it changes.
#pragma once
#include <string>
#include <vector>

#include "lora/adapter.h"
#include "lora/module_table.h"

namespace krea2 {

struct ResolvedEntry {
  const AdapterEntry* entry = nullptr;
  int weight = -1;     // ModuleTable::params() index the weight delta changes (-1: none)
  int bias = -1;       // the bias .diff_b changes (-1: none)
  std::string naming;  // the key layout, e.g. "kohya / musubi (lora_unet_)"
};

struct Resolution {
  std::vector<ResolvedEntry> entries;
  std::vector<std::string> unmatched;  // keys naming no parameter, and keys with no adapter role
  std::string format;  // the layouts and kinds found, e.g. "diffusers / PEFT (transformer.): lora"
};

// Throws krea2::Error naming the file, the key and both shapes when a tensor does not fit its parameter
// (unless !check_shapes: names only), and when two stems change the same parameter or a flattened name is
// ambiguous.
Resolution resolve_adapter(const LoraAdapterImpl& adapter, const ModuleTable& table,
                           bool check_shapes = true);

// The out and in sizes of a LoKr factor pair (w1: o1 x i1, w2: o2 x i2).
struct LokrDims {
  int64_t o1, i1, o2, i2;
};
LokrDims lokr_dims(const AdapterEntry& e);

}  // namespace krea2
