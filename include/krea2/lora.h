// Adapters (LoRA and friends) for the Krea 2 transformer: load a file once, attach it to any loaded model
// with Model::with_loras (krea2/model.h), set the strength per call with ForwardOptions::lora_scale.
//
// Formats read (one file may mix them): diffusers / PEFT (`transformer.<module>.lora_A/B.weight`, alpha and
// rank from the `lora_adapter_metadata` header entry), original Krea names (`diffusion_model.`), AI-Toolkit
// (`base_model.model.`), kohya / musubi (`lora_unet_<flattened module>.lora_down/lora_up/alpha`), LyCORIS
// LoHa and LoKr (`lycoris_<flattened module>.hada_* / lokr_*`), and full deltas (`.diff`, `.diff_b`) on
// weights, biases, norm scales and modulation tables.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "krea2/config.h"

namespace krea2 {

struct LoraAdapterImpl;

// One targeted parameter of an adapter, as `krea2 inspect --lora` lists it.
struct LoraTarget {
  std::string key;        // the file's key stem, e.g. "lora_unet_blocks_0_attn_wq"
  std::string parameter;  // the diffusers parameter it changes, e.g. "transformer_blocks.0.attn.to_q.weight"
  std::string kind;       // "lora", "loha", "lokr", "diff"
  int64_t rank = 0;   // rows of the down projection (LoHa: of w1_b; LoKr: of the decomposed factor); 0: full
  double alpha = 0;   // as stored; 0 when absent
  double factor = 1;  // the multiplier of the product the format defines (alpha / rank, ...)
};

// What an adapter file holds, resolved against a model's parameter list.
struct LoraSummary {
  std::string path;
  std::string format;  // e.g. "kohya / musubi (lora_unet_): LoRA"; several joined by "; "
  int64_t tensors = 0;
  std::vector<LoraTarget> targets;
  std::vector<std::string> unmatched;  // keys that name no parameter of the model (or are no adapter key)
};

class LoraAdapter {
 public:
  // Maps and validates the file: every adapter key's group complete (lora_A with lora_B, all four hada_*
  // factors, ...), internal shapes consistent, float dtypes, alpha a single value. Throws krea2::Error naming
  // the file and key; a file with no adapter key at all is an error too. Weights stay mapped.
  static LoraAdapter load(const std::string& path);
  // A random PEFT-style LoRA of rank `rank` on every default target of `config` (diffusers' Krea 2 target
  // modules: attention q, k, v, gate, out and ff up, down of every block, the embedders, the projector and
  // the final linear), factor 1, small values: for benchmarks.
  static LoraAdapter random(const Config& config, int64_t rank, uint64_t seed);

  const std::string& path() const;
  // Resolves the keys against the parameters `config` implies (module names of both spellings, dotted and
  // flattened) and, with check_shapes, checks every shape; does not throw for unmatched keys (listed
  // instead), but does for a shape that does not fit its parameter.
  LoraSummary summary(const Config& config, bool check_shapes = true) const;

  explicit LoraAdapter(std::shared_ptr<const LoraAdapterImpl> impl);
  const LoraAdapterImpl& impl() const { return *impl_; }

 private:
  std::shared_ptr<const LoraAdapterImpl> impl_;
};

// An adapter with its own strength (the per-call ForwardOptions::lora_scale multiplies it).
struct LoraSpec {
  LoraAdapter adapter;
  float strength = 1.0f;
};

struct LoraOptions {
  // Fold every delta into a float32 copy of the matrices it changes (only those), so products cost what
  // they cost without adapters. Default: low-rank products added to the layer outputs at run time.
  bool merge = false;
  // Keys that match no parameter: a warning (appended to `warnings`) instead of an error.
  bool ignore_unknown = false;
  std::vector<std::string>* warnings = nullptr;
  // LoHa / LoKr deltas are exact low-rank products (rank r1 r2 and k1 k2): they are applied at run time in
  // that form when it costs at most this fraction of the layer's own product, 2 k (in + out) against 2 in out
  // per row; otherwise (and always for .diff) they are merged at attach, since a dense product at run time
  // would cost as much as the layer itself.
  double low_rank_cost_limit = 1.0 / 16;
};

// Parses `FILE[:STRENGTH]` as --lora takes it (the last ':' followed by a number splits it).
std::pair<std::string, float> parse_lora_argument(const std::string& argument);

}  // namespace krea2
