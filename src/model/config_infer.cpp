#include "model/config_infer.h"

#include "krea2/error.h"

namespace krea2 {

namespace {

class ShapeReader {
 public:
  ShapeReader(const std::function<const TensorView*(const std::string&)>& find, const std::string& source)
      : find_(find), source_(source) {}

  const TensorView& get(const std::string& name, size_t min_dims) const {
    const TensorView* t = find_(name);
    if (!t)
      throw Error(source_ + ": cannot infer the config: tensor '" + name +
                  "' is missing (no config.json or krea2.* metadata either)");
    if (t->shape.size() < min_dims)
      throw Error(source_ + ": cannot infer the config: tensor '" + name + "' has shape " +
                  shape_str(t->shape) + ", expected at least " + std::to_string(min_dims) + " dimension(s)");
    return *t;
  }
  int dim(const std::string& name, size_t i) const { return checked(get(name, 2).shape[i], name); }
  int numel(const std::string& name) const { return checked(get(name, 1).numel(), name); }
  // Number of consecutive blocks `prefix` 0, 1, ... that hold `probe`.
  int count(const std::string& prefix, const std::string& probe) const {
    int n = 0;
    while (n < 100000 && find_(prefix + std::to_string(n) + "." + probe)) ++n;
    return n;
  }
  int ratio(int a, int b, const std::string& what) const {
    if (b <= 0 || a % b != 0)
      throw Error(source_ + ": cannot infer the config: " + what + " (" + std::to_string(a) +
                  " is not a multiple of " + std::to_string(b) + ")");
    return a / b;
  }

 private:
  int checked(int64_t v, const std::string& name) const {
    if (v <= 0 || v > (int64_t(1) << 30))
      throw Error(source_ + ": cannot infer the config: tensor '" + name + "' has an impossible size " +
                  std::to_string(v));
    return int(v);
  }
  const std::function<const TensorView*(const std::string&)>& find_;
  const std::string& source_;
};

}  // namespace

InferredConfig infer_config_from_shapes(const std::function<const TensorView*(const std::string&)>& find,
                                        const std::string& source, bool validate) {
  const ShapeReader r(find, source);
  InferredConfig out;
  Config& c = out.config;
  const int H = r.dim("img_in.weight", 0);
  c.in_channels = r.dim("img_in.weight", 1);
  c.num_layers = r.count("transformer_blocks.", "attn.to_q.weight");
  if (c.num_layers > 0) {
    c.attention_head_dim = r.numel("transformer_blocks.0.attn.norm_q.weight");
    c.num_attention_heads = r.ratio(H, c.attention_head_dim, "hidden size / head dim");
    c.num_key_value_heads =
        r.ratio(r.dim("transformer_blocks.0.attn.to_k.weight", 0), c.attention_head_dim, "key heads");
    c.intermediate_size = r.dim("transformer_blocks.0.ff.gate.weight", 0);
  } else {
    out.defaulted.insert(out.defaulted.end(),
                         {"attention_head_dim", "num_key_value_heads", "intermediate_size"});
    c.num_attention_heads = r.ratio(H, c.attention_head_dim, "hidden size / default head dim");
  }
  c.timestep_embed_dim = r.dim("time_embed.linear_1.weight", 1);
  c.text_hidden_dim = r.numel("txt_in.norm.weight");
  c.num_text_layers = r.numel("text_fusion.projector.weight");
  c.num_layerwise_text_blocks = r.count("text_fusion.layerwise_blocks.", "attn.to_q.weight");
  c.num_refiner_text_blocks = r.count("text_fusion.refiner_blocks.", "attn.to_q.weight");
  const std::string text_block = c.num_layerwise_text_blocks > 0 ? "text_fusion.layerwise_blocks.0."
                                 : c.num_refiner_text_blocks > 0 ? "text_fusion.refiner_blocks.0."
                                                                 : "";
  if (!text_block.empty()) {
    const int dt = r.numel(text_block + "attn.norm_q.weight");
    c.text_num_attention_heads = r.ratio(c.text_hidden_dim, dt, "text hidden size / text head dim");
    c.text_num_key_value_heads = r.ratio(r.dim(text_block + "attn.to_k.weight", 0), dt, "text key heads");
    c.text_intermediate_size = r.dim(text_block + "ff.gate.weight", 0);
  } else {
    out.defaulted.insert(out.defaulted.end(),
                         {"text_num_attention_heads", "text_num_key_value_heads", "text_intermediate_size"});
  }
  out.defaulted.insert(out.defaulted.end(), {"axes_dims_rope", "rope_theta", "norm_eps"});
  if (!validate) return out;
  try {
    c.validate();
  } catch (const Error& e) {
    throw Error(source + ": the config inferred from the tensor shapes is invalid: " + e.what());
  }
  return out;
}

}  // namespace krea2
