#include "lora/resolve.h"

#include <algorithm>
#include <map>

#include "krea2/error.h"

namespace krea2 {

namespace {

struct Prefix {
  const char* prefix;
  bool flat;
  const char* naming;
};

// Longest first where one prefix extends another.
const Prefix kPrefixes[] = {
    {"base_model.model.transformer.", false, "PEFT (base_model.model.transformer.)"},
    {"base_model.model.", false, "AI-Toolkit (base_model.model.)"},
    {"model.diffusion_model.", false, "original Krea names (model.diffusion_model.)"},
    {"diffusion_model.", false, "original Krea names (diffusion_model.)"},
    {"transformer.", false, "diffusers / PEFT (transformer.)"},
    {"lora_unet_", true, "kohya / musubi (lora_unet_)"},
    {"lora_transformer_", true, "kohya (lora_transformer_)"},
    {"lycoris_", true, "LyCORIS (lycoris_)"},
    {"", false, "bare module names"},
};

struct Match {
  const ModuleRef* ref = nullptr;
  const char* naming = nullptr;
};

Match find_module(const ModuleTable& table, const std::string& stem, const std::string& source) {
  Match m;
  for (const Prefix& p : kPrefixes) {
    const std::string pre = p.prefix;
    if (stem.compare(0, pre.size(), pre) != 0 || stem.size() == pre.size()) continue;
    const std::string rest = stem.substr(pre.size());
    const ModuleRef* r = p.flat ? table.find_flat(rest) : table.find_dotted(rest);
    if (!r) continue;
    if (!r->ambiguous.empty())
      throw Error(source + ": key stem '" + brief_key(stem) + "' is ambiguous: it flattens " + r->ambiguous);
    if (m.ref && m.ref != r)
      throw Error(source + ": key stem '" + brief_key(stem) + "' names two modules (read with prefix '" +
                  std::string(m.naming) + "' and '" + p.naming + "')");
    if (!m.ref) m = {r, p.naming};
  }
  return m;
}

int64_t rows(const TensorView* t) {
  return t->shape[0];
}
int64_t cols(const TensorView* t) {
  return t->shape[1];
}

[[noreturn]] void misfit(const std::string& source, const TensorView* t, const ParamInfo& p,
                         const std::string& expected) {
  throw Error(source + ": key '" + brief_key(t->name) + "' has shape " + shape_str(t->shape) + " but '" +
              p.name + "' is " + shape_str(p.shape) + ": expected " + expected);
}

std::string dims(int64_t a, int64_t b) {
  return shape_str({a, b});
}

// Checks the weight delta's shapes against the parameter (out, in) = p.shape (or the vector's shape).
void check_weight_shapes(const AdapterEntry& e, const ParamInfo& p, const std::string& source) {
  if (e.kind == DeltaKind::kDiff) {
    const bool same = e.diff->shape == p.shape;
    const bool flat = e.diff->shape.size() == 1 && !p.matrix && e.diff->numel() == shape_numel(p.shape);
    if (!same && !flat) misfit(source, e.diff, p, shape_str(p.shape));
    return;
  }
  if (p.shape.size() != 2) {
    throw Error(source + ": key '" + brief_key(e.keys.front()) + "' is a " + delta_kind_name(e.kind) +
                " factor, but '" + p.name + "' is " + shape_str(p.shape) + ", not a matrix");
  }
  const int64_t out = p.shape[0], in = p.shape[1];
  switch (e.kind) {
    case DeltaKind::kLora:
      if (rows(e.up) != out) misfit(source, e.up, p, dims(out, e.rank));
      if (cols(e.down) != in) misfit(source, e.down, p, dims(e.rank, in));
      break;
    case DeltaKind::kLoha:
      if (rows(e.hada[0]) != out) misfit(source, e.hada[0], p, dims(out, cols(e.hada[0])));
      if (cols(e.hada[1]) != in) misfit(source, e.hada[1], p, dims(rows(e.hada[1]), in));
      break;
    case DeltaKind::kLokr: {
      const LokrDims d = lokr_dims(e);
      // Compared by division: the products of untrusted sizes could overflow.
      const bool fits = out % d.o2 == 0 && out / d.o2 == d.o1 && in % d.i2 == 0 && in / d.i2 == d.i1;
      if (!fits) {
        const TensorView* w1 = e.lokr[kW1] ? e.lokr[kW1] : e.lokr[kW1A];
        throw Error(source + ": key '" + brief_key(w1->name) + "': kron(w1 " + dims(d.o1, d.i1) + ", w2 " +
                    dims(d.o2, d.i2) + ") does not give '" + p.name + "' " + shape_str(p.shape));
      }
      break;
    }
    default:
      break;
  }
}

std::string kind_label(DeltaKind k) {
  switch (k) {
    case DeltaKind::kLora:
      return "LoRA";
    case DeltaKind::kLoha:
      return "LoHa";
    case DeltaKind::kLokr:
      return "LoKr";
    case DeltaKind::kDiff:
      return "full delta";
    default:
      return "bias delta";
  }
}

}  // namespace

LokrDims lokr_dims(const AdapterEntry& e) {
  const TensorView* const* k = e.lokr;
  LokrDims d;
  d.o1 = k[kW1] ? rows(k[kW1]) : rows(k[kW1A]);
  d.i1 = k[kW1] ? cols(k[kW1]) : cols(k[kW1B]);
  d.o2 = k[kW2] ? rows(k[kW2]) : rows(k[kW2A]);
  d.i2 = k[kW2] ? cols(k[kW2]) : cols(k[kW2B]);
  return d;
}

Resolution resolve_adapter(const LoraAdapterImpl& adapter, const ModuleTable& table, bool check_shapes) {
  const std::string& source = adapter.path;
  Resolution out;
  out.unmatched = adapter.other_keys;
  std::vector<std::string> formats;
  std::map<int, std::string> changed;  // parameter -> the stem that changes it
  auto claim = [&](int param, const std::string& stem) {
    auto [it, added] = changed.emplace(param, stem);
    if (!added)
      throw Error(source + ": keys '" + brief_key(it->second) + "' and '" + brief_key(stem) +
                  "' both change '" + table.params()[size_t(param)].name + "'");
  };
  for (const AdapterEntry& e : adapter.entries) {
    const Match m = find_module(table, e.stem, source);
    if (!m.ref || (e.kind != DeltaKind::kNone && m.ref->weight < 0)) {
      out.unmatched.insert(out.unmatched.end(), e.keys.begin(), e.keys.end());
      continue;
    }
    ResolvedEntry r{&e, -1, -1, m.naming};
    if (e.kind != DeltaKind::kNone) {
      r.weight = m.ref->weight;
      if (check_shapes) check_weight_shapes(e, table.params()[size_t(r.weight)], source);
      claim(r.weight, e.stem);
    }
    if (e.diff_b) {
      if (m.ref->bias < 0)
        throw Error(source + ": key '" + brief_key(e.diff_b->name) + "': '" +
                    table.params()[size_t(m.ref->weight)].name + "' has no bias");
      r.bias = m.ref->bias;
      const ParamInfo& b = table.params()[size_t(r.bias)];
      if (check_shapes && e.diff_b->shape != b.shape) misfit(source, e.diff_b, b, shape_str(b.shape));
      claim(r.bias, e.stem);
    }
    std::string label = std::string(m.naming) + ": " + kind_label(e.kind);
    if (e.kind != DeltaKind::kNone && e.diff_b) label += " + bias delta";
    if (std::find(formats.begin(), formats.end(), label) == formats.end()) formats.push_back(label);
    out.entries.push_back(std::move(r));
  }
  for (const std::string& f : formats) out.format += (out.format.empty() ? "" : "; ") + f;
  return out;
}

}  // namespace krea2
