#include "lora/adapter.h"

#include <cmath>
#include <nlohmann/json.hpp>
#include <vector>

#include "krea2/error.h"

namespace krea2 {

namespace {

enum class Role { kDown, kUp, kAlpha, kHada, kLokr, kDiff, kDiffB, kUnsupported };

struct RoleSuffix {
  const char* suffix;
  Role role;
  int slot;           // index into hada / lokr
  bool peft = false;  // lora_A / lora_B spelling
};

const RoleSuffix kRoles[] = {
    {".lora_A.weight", Role::kDown, 0, true},
    {".lora_B.weight", Role::kUp, 0, true},
    {".lora_down.weight", Role::kDown, 0},
    {".lora_up.weight", Role::kUp, 0},
    {".alpha", Role::kAlpha, 0},
    {".hada_w1_a", Role::kHada, 0},
    {".hada_w1_b", Role::kHada, 1},
    {".hada_w2_a", Role::kHada, 2},
    {".hada_w2_b", Role::kHada, 3},
    {".lokr_w1", Role::kLokr, kW1},
    {".lokr_w1_a", Role::kLokr, kW1A},
    {".lokr_w1_b", Role::kLokr, kW1B},
    {".lokr_w2", Role::kLokr, kW2},
    {".lokr_w2_a", Role::kLokr, kW2A},
    {".lokr_w2_b", Role::kLokr, kW2B},
    {".diff", Role::kDiff, 0},
    {".diff_b", Role::kDiffB, 0},
    // Adapter keys whose math is not implemented: an error even under ignore-unknown, since dropping them
    // silently would change the result.
    {".dora_scale", Role::kUnsupported, 0},
    {".lora_magnitude_vector", Role::kUnsupported, 0},
    {".lora_magnitude_vector.weight", Role::kUnsupported, 0},
    {".lora_mid.weight", Role::kUnsupported, 0},
    {".hada_t1", Role::kUnsupported, 0},
    {".hada_t2", Role::kUnsupported, 0},
    {".lokr_t2", Role::kUnsupported, 0},
    {".lora_A.bias", Role::kUnsupported, 0},
    {".lora_B.bias", Role::kUnsupported, 0},
};

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() > suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

const RoleSuffix* role_of(const std::string& key) {
  for (const RoleSuffix& r : kRoles)
    if (ends_with(key, r.suffix)) return &r;
  return nullptr;
}

bool is_float(DType t) {
  return t == DType::F32 || t == DType::F16 || t == DType::BF16 || t == DType::F64;
}

// PEFT's adapter config, from the lora_adapter_metadata JSON (keys prefixed "transformer." as diffusers
// writes them, or bare as in adapter_config.json).
struct PeftConfig {
  std::optional<double> lora_alpha;
  bool rslora = false;
  std::map<std::string, double> alpha_pattern;
};

PeftConfig read_peft_config(const std::map<std::string, std::string>& metadata, const std::string& source) {
  PeftConfig c;
  auto it = metadata.find("lora_adapter_metadata");
  if (it == metadata.end()) return c;
  const std::string where = source + ": __metadata__ \"lora_adapter_metadata\"";
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(it->second);
  } catch (const nlohmann::json::exception& e) {
    throw Error(where + " is not valid JSON: " + e.what());
  }
  if (!j.is_object()) throw Error(where + " is not a JSON object");
  auto get = [&](const std::string& key) -> const nlohmann::json* {
    for (const std::string& k : {"transformer." + key, key})
      if (auto f = j.find(k); f != j.end() && !f->is_null()) return &*f;
    return nullptr;
  };
  if (const auto* v = get("lora_alpha")) {
    if (!v->is_number()) throw Error(where + ": lora_alpha must be a number");
    c.lora_alpha = v->get<double>();
  }
  if (const auto* v = get("use_rslora")) c.rslora = v->is_boolean() && v->get<bool>();
  if (const auto* v = get("use_dora"); v && v->is_boolean() && v->get<bool>())
    throw Error(where + ": use_dora is set; DoRA adapters are not supported");
  if (const auto* v = get("alpha_pattern"); v && v->is_object())
    for (const auto& [k, a] : v->items()) {
      if (!a.is_number()) throw Error(where + ": alpha_pattern['" + brief_key(k) + "'] must be a number");
      c.alpha_pattern[k] = a.get<double>();
    }
  return c;
}

// PEFT's alpha for a module: an alpha_pattern key naming it (the whole name or its last dotted components;
// PEFT matches regular expressions, we match the plain names it is normally given), else lora_alpha.
std::optional<double> peft_alpha(const PeftConfig& c, const std::string& stem) {
  for (const auto& [k, a] : c.alpha_pattern)
    if (stem == k || ends_with(stem, "." + k)) return a;
  return c.lora_alpha;
}

[[noreturn]] void fail(const std::string& source, const std::string& key, const std::string& msg) {
  throw Error(source + ": key '" + brief_key(key) + "': " + msg);
}

// A 2-D factor of at least one row and column.
void expect_matrix(const std::string& source, const TensorView* t) {
  if (t->shape.size() != 2 || t->shape[0] < 1 || t->shape[1] < 1)
    fail(source, t->name, "expected a 2-D tensor, found shape " + shape_str(t->shape));
}

void expect_dim(const std::string& source, const TensorView* t, size_t dim, int64_t want, const char* what) {
  if (t->shape[dim] != want)
    fail(source, t->name,
         "shape " + shape_str(t->shape) + " does not match " + what + " (" + std::to_string(want) + ")");
}

// Validates one group's internal shapes and sets its rank and factor.
void finish_entry(AdapterEntry& e, const PeftConfig& peft, const std::string& source) {
  const std::string first = e.keys.front();
  switch (e.kind) {
    case DeltaKind::kNone:  // a bias delta alone (a lone alpha was set aside by parse_adapter)
      break;
    case DeltaKind::kLora: {
      if (!e.down || !e.up)
        fail(source, first,
             std::string("needs both ") + (e.peft_names ? "lora_A and lora_B" : "lora_down and lora_up"));
      expect_matrix(source, e.down);
      expect_matrix(source, e.up);
      e.rank = e.down->shape[0];
      expect_dim(source, e.up, 1, e.rank, "the rank of its down projection");
      if (!e.alpha && e.peft_names) e.alpha = peft_alpha(peft, e.stem);
      const double r = peft.rslora && e.peft_names ? std::sqrt(double(e.rank)) : double(e.rank);
      e.factor = e.alpha ? *e.alpha / r : 1.0;
      break;
    }
    case DeltaKind::kLoha: {
      for (const TensorView* t : e.hada)
        if (!t) fail(source, first, "LoHa needs hada_w1_a, hada_w1_b, hada_w2_a and hada_w2_b");
      for (const TensorView* t : e.hada) expect_matrix(source, t);
      e.rank = e.hada[1]->shape[0];
      expect_dim(source, e.hada[0], 1, e.rank, "the rows of hada_w1_b");
      expect_dim(source, e.hada[3], 0, e.hada[2]->shape[1], "the columns of hada_w2_a");
      expect_dim(source, e.hada[2], 0, e.hada[0]->shape[0], "the rows of hada_w1_a");
      expect_dim(source, e.hada[3], 1, e.hada[1]->shape[1], "the columns of hada_w1_b");
      e.factor = e.alpha ? *e.alpha / double(e.rank) : 1.0;
      break;
    }
    case DeltaKind::kLokr: {
      const TensorView* const* k = e.lokr;
      for (int w : {0, 1}) {
        const TensorView *full = k[3 * w], *a = k[3 * w + 1], *b = k[3 * w + 2];
        const std::string n = "lokr_w" + std::to_string(w + 1);
        if (full ? (a || b) : !(a && b))
          fail(source, first,
               "LoKr needs " + n + ", or " + n + "_a with " + n + "_b (exactly one of the two)");
        if (full) {
          expect_matrix(source, full);
        } else {
          expect_matrix(source, a);
          expect_matrix(source, b);
          expect_dim(source, b, 0, a->shape[1], ("the columns of " + n + "_a").c_str());
        }
      }
      // alpha / rank of the decomposed factor (w2's when both are); with both full, alpha is ignored.
      const TensorView* rank_of = k[kW2B] ? k[kW2B] : k[kW1B];
      e.rank = rank_of ? rank_of->shape[0] : 0;
      e.factor = rank_of && e.alpha ? *e.alpha / double(e.rank) : 1.0;
      break;
    }
    case DeltaKind::kDiff:
      if (e.diff->shape.empty() || e.diff->shape.size() > 2 || e.diff->numel() < 1)
        fail(source, e.diff->name,
             "a full delta must be 1-D or 2-D, found shape " + shape_str(e.diff->shape));
      if (e.alpha) fail(source, first, "a full delta (.diff) takes no alpha");
      break;
  }
  if (e.diff_b && (e.diff_b->shape.size() != 1 || e.diff_b->shape[0] < 1))
    fail(source, e.diff_b->name, "a bias delta must be 1-D, found shape " + shape_str(e.diff_b->shape));
}

}  // namespace

const char* delta_kind_name(DeltaKind k) {
  switch (k) {
    case DeltaKind::kLora:
      return "lora";
    case DeltaKind::kLoha:
      return "loha";
    case DeltaKind::kLokr:
      return "lokr";
    case DeltaKind::kDiff:
      return "diff";
    default:
      return "bias diff";
  }
}

std::string brief_key(const std::string& key) {
  return key.size() <= 160 ? key : key.substr(0, 157) + "...";
}

std::string join_names(const std::vector<std::string>& names, size_t limit) {
  std::string s;
  for (size_t i = 0; i < names.size() && i < limit; ++i) s += (i ? ", " : "") + brief_key(names[i]);
  if (names.size() > limit) s += ", ... (" + std::to_string(names.size() - limit) + " more)";
  return s;
}

void parse_adapter(const std::vector<TensorView>& tensors, const std::map<std::string, std::string>& metadata,
                   const std::string& source, LoraAdapterImpl& out) {
  const PeftConfig peft = read_peft_config(metadata, source);
  std::map<std::string, size_t> index;
  out.tensors = int64_t(tensors.size());
  for (const TensorView& t : tensors) {
    const RoleSuffix* r = role_of(t.name);
    if (!r) {
      out.other_keys.push_back(t.name);
      continue;
    }
    if (r->role == Role::kUnsupported)
      fail(source, t.name,
           std::string("'") + r->suffix + "' (DoRA, Tucker or bias factors) is not supported");
    const std::string stem = t.name.substr(0, t.name.size() - std::string(r->suffix).size());
    auto [it, added] = index.emplace(stem, out.entries.size());
    if (added) out.entries.emplace_back().stem = stem;
    AdapterEntry& e = out.entries[it->second];
    e.keys.push_back(t.name);
    if (r->role != Role::kAlpha && r->role != Role::kDiffB && !is_float(t.dtype))
      fail(source, t.name,
           "expected a float tensor (F32, F16, BF16, F64), found " + std::string(dtype_name(t.dtype)));
    DeltaKind kind = DeltaKind::kNone;
    const TensorView** slot = nullptr;
    switch (r->role) {
      case Role::kDown:
      case Role::kUp:
        kind = DeltaKind::kLora;
        slot = r->role == Role::kDown ? &e.down : &e.up;
        if (*slot) fail(source, t.name, "the stem has both lora_A/B and lora_down/up keys");
        e.peft_names = e.peft_names || r->peft;
        break;
      case Role::kHada:
        kind = DeltaKind::kLoha;
        slot = &e.hada[r->slot];
        break;
      case Role::kLokr:
        kind = DeltaKind::kLokr;
        slot = &e.lokr[r->slot];
        break;
      case Role::kDiff:
        kind = DeltaKind::kDiff;
        slot = &e.diff;
        break;
      case Role::kDiffB:
        if (!is_float(t.dtype))
          fail(source, t.name, "expected a float tensor, found " + std::string(dtype_name(t.dtype)));
        e.diff_b = &t;
        break;
      case Role::kAlpha: {
        if (t.numel() != 1)
          fail(source, t.name, "alpha must hold one value, found shape " + shape_str(t.shape));
        if (t.dtype == DType::BOOL) fail(source, t.name, "alpha must be a number, found BOOL");
        const double a = double(to_float_tensor(t).data[0]);
        if (!std::isfinite(a)) fail(source, t.name, "alpha is not finite");
        e.alpha = a;
        break;
      }
      default:
        break;
    }
    if (slot) *slot = &t;
    if (kind != DeltaKind::kNone) {
      if (e.kind != DeltaKind::kNone && e.kind != kind)
        fail(source, t.name,
             std::string("mixes ") + delta_kind_name(e.kind) + " and " + delta_kind_name(kind) +
                 " keys on one stem");
      e.kind = kind;
    }
  }
  // An alpha with no factors beside it scales nothing: listed with the keys that are no adapter keys.
  std::erase_if(out.entries, [&](const AdapterEntry& e) {
    const bool lone = e.kind == DeltaKind::kNone && !e.diff_b;
    if (lone) out.other_keys.insert(out.other_keys.end(), e.keys.begin(), e.keys.end());
    return lone;
  });
  if (out.entries.empty()) {
    std::string what =
        tensors.empty() ? "it holds no tensors"
                        : std::to_string(tensors.size()) + " tensors, e.g. " + join_names(out.other_keys, 3);
    throw Error(source + ": no LoRA keys (" + what +
                "); expected e.g. '<module>.lora_A.weight', '.lora_down.weight', '.hada_w1_a', '.lokr_w1' or "
                "'.diff'");
  }
  for (AdapterEntry& e : out.entries) finish_entry(e, peft, source);
}

}  // namespace krea2
