// An adapter file parsed into key groups: every tensor sharing a stem (the key up to its role suffix, e.g.
// `lora_unet_blocks_0_attn_wq` of `.lora_down.weight`), by role, with the factor its format defines. Nothing
// here knows module names: the stems are resolved against a model's parameters in lora/resolve.h.
#pragma once
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "krea2/lora.h"
#include "krea2/tensor.h"

namespace krea2 {

enum class DeltaKind { kNone, kLora, kLoha, kLokr, kDiff };
const char* delta_kind_name(DeltaKind k);

// One stem's tensors (views into the file); null where a role is absent.
struct AdapterEntry {
  std::string stem;
  DeltaKind kind = DeltaKind::kNone;   // of the weight delta; kNone when the stem has only a bias delta
  const TensorView* down = nullptr;    // LoRA A / lora_down (r, in)
  const TensorView* up = nullptr;      // LoRA B / lora_up (out, r)
  const TensorView* hada[4] = {};      // LoHa w1_a (out, r1), w1_b (r1, in), w2_a (out, r2), w2_b (r2, in)
  const TensorView* lokr[6] = {};      // LoKr w1, w1_a, w1_b, w2, w2_a, w2_b
  const TensorView* diff = nullptr;    // full delta of the weight (or of a norm scale / modulation table)
  const TensorView* diff_b = nullptr;  // full delta of the bias
  std::optional<double> alpha;         // the stem's .alpha, or PEFT's lora_alpha for lora_A/B keys
  bool peft_names = false;             // lora_A / lora_B spelling
  int64_t rank = 0;                    // see LoraTarget::rank
  double factor = 1.0;                 // multiplier of the format's product
  std::vector<std::string> keys;       // the file keys of this group
};

// The LoKr slots by name.
enum LokrSlot { kW1, kW1A, kW1B, kW2, kW2A, kW2B };

struct LoraAdapterImpl {
  std::string path;
  std::unique_ptr<SafetensorsFile> file;  // owns the bytes the views point into (null for parsed bytes)
  // An adapter made in memory (LoraAdapter::random): its tensors and their values.
  std::vector<TensorView> owned_views;
  std::vector<std::vector<float>> owned_values;
  std::vector<AdapterEntry> entries;    // in key order of first appearance
  std::vector<std::string> other_keys;  // keys that carry no adapter role suffix
  int64_t tensors = 0;
};

// Groups and validates the tensors of an adapter file (`tensors` must outlive the result: the entries point
// into it). `metadata` is the safetensors __metadata__ (PEFT's lora_adapter_metadata JSON is read from it).
// Throws krea2::Error naming `source` and the key on anything malformed, or when no key is an adapter key.
void parse_adapter(const std::vector<TensorView>& tensors, const std::map<std::string, std::string>& metadata,
                   const std::string& source, LoraAdapterImpl& out);

// A key for messages, shortened so a hostile file cannot make a huge message.
std::string brief_key(const std::string& key);

// The first `limit` names joined by ", ", with the count of the rest.
std::string join_names(const std::vector<std::string>& names, size_t limit = 12);

}  // namespace krea2
