#include "krea2/config.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "io/text_file.h"
#include "krea2/error.h"

namespace krea2 {

namespace {

using json = nlohmann::json;

[[noreturn]] void fail(const std::string& source, const std::string& key, const std::string& what) {
  throw Error(source + ": config key '" + key + "' " + what);
}

int read_int(const json& v, const std::string& source, const std::string& key) {
  if (v.is_number_integer()) {
    auto x = v.get<int64_t>();
    if (x < INT32_MIN || x > INT32_MAX) fail(source, key, "is out of range: " + v.dump());
    return int(x);
  }
  // JSON writers sometimes emit 4.0 for an integer.
  if (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>() &&
      std::fabs(v.get<double>()) < 2e9)
    return int(v.get<double>());
  fail(source, key, "must be an integer, found " + v.dump());
}

double read_double(const json& v, const std::string& source, const std::string& key) {
  if (!v.is_number()) fail(source, key, "must be a number, found " + v.dump());
  return v.get<double>();
}

void require_positive(int v, const std::string& key) {
  if (v <= 0) throw Error("config key '" + key + "' must be positive, found " + std::to_string(v));
}

}  // namespace

void Config::validate() const {
  require_positive(in_channels, "in_channels");
  if (num_layers < 0)
    throw Error("config key 'num_layers' must be >= 0, found " + std::to_string(num_layers));
  require_positive(attention_head_dim, "attention_head_dim");
  require_positive(num_attention_heads, "num_attention_heads");
  require_positive(num_key_value_heads, "num_key_value_heads");
  require_positive(intermediate_size, "intermediate_size");
  require_positive(timestep_embed_dim, "timestep_embed_dim");
  require_positive(text_hidden_dim, "text_hidden_dim");
  require_positive(num_text_layers, "num_text_layers");
  require_positive(text_num_attention_heads, "text_num_attention_heads");
  require_positive(text_num_key_value_heads, "text_num_key_value_heads");
  require_positive(text_intermediate_size, "text_intermediate_size");
  if (num_layerwise_text_blocks < 0)
    throw Error("config key 'num_layerwise_text_blocks' must be >= 0, found " +
                std::to_string(num_layerwise_text_blocks));
  if (num_refiner_text_blocks < 0)
    throw Error("config key 'num_refiner_text_blocks' must be >= 0, found " +
                std::to_string(num_refiner_text_blocks));
  if (timestep_embed_dim % 2 != 0)
    throw Error("config key 'timestep_embed_dim' must be even (cos and sin halves), found " +
                std::to_string(timestep_embed_dim));
  if (num_attention_heads % num_key_value_heads != 0)
    throw Error("config key 'num_attention_heads' (" + std::to_string(num_attention_heads) +
                ") must be divisible by 'num_key_value_heads' (" + std::to_string(num_key_value_heads) + ")");
  if (text_hidden_dim % text_num_attention_heads != 0)
    throw Error("config key 'text_hidden_dim' (" + std::to_string(text_hidden_dim) +
                ") must be divisible by 'text_num_attention_heads' (" +
                std::to_string(text_num_attention_heads) + ")");
  if (text_num_attention_heads % text_num_key_value_heads != 0)
    throw Error("config key 'text_num_attention_heads' (" + std::to_string(text_num_attention_heads) +
                ") must be divisible by 'text_num_key_value_heads' (" +
                std::to_string(text_num_key_value_heads) + ")");
  if (axes_dims_rope.empty()) throw Error("config key 'axes_dims_rope' must not be empty");
  int sum = 0;
  for (size_t i = 0; i < axes_dims_rope.size(); ++i) {
    int d = axes_dims_rope[i];
    if (d < 0 || d % 2 != 0)
      throw Error("config key 'axes_dims_rope' entry " + std::to_string(i) +
                  " must be even and >= 0, found " + std::to_string(d));
    sum += d;
  }
  if (axes_dims_rope.size() != 3)
    throw Error("config key 'axes_dims_rope' must have 3 entries (t, h, w), found " +
                std::to_string(axes_dims_rope.size()));
  if (sum != attention_head_dim)
    throw Error("config key 'axes_dims_rope' must sum to attention_head_dim (" +
                std::to_string(attention_head_dim) + "), found sum " + std::to_string(sum));
  if (!(rope_theta > 0) || !std::isfinite(rope_theta))
    throw Error("config key 'rope_theta' must be a positive number, found " + std::to_string(rope_theta));
  if (!(norm_eps > 0) || !std::isfinite(norm_eps))
    throw Error("config key 'norm_eps' must be a positive number, found " + std::to_string(norm_eps));
}

Config Config::from_json_text(const std::string& text, const std::string& source,
                              std::vector<std::string>* warnings) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw Error(source + ": not valid JSON: " + e.what());
  }
  if (!j.is_object()) throw Error(source + ": expected a JSON object at the top level");
  Config c;
  const std::pair<const char*, int Config::*> int_keys[] = {
      {"in_channels", &Config::in_channels},
      {"num_layers", &Config::num_layers},
      {"attention_head_dim", &Config::attention_head_dim},
      {"num_attention_heads", &Config::num_attention_heads},
      {"num_key_value_heads", &Config::num_key_value_heads},
      {"intermediate_size", &Config::intermediate_size},
      {"timestep_embed_dim", &Config::timestep_embed_dim},
      {"text_hidden_dim", &Config::text_hidden_dim},
      {"num_text_layers", &Config::num_text_layers},
      {"text_num_attention_heads", &Config::text_num_attention_heads},
      {"text_num_key_value_heads", &Config::text_num_key_value_heads},
      {"text_intermediate_size", &Config::text_intermediate_size},
      {"num_layerwise_text_blocks", &Config::num_layerwise_text_blocks},
      {"num_refiner_text_blocks", &Config::num_refiner_text_blocks},
  };
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    if (!key.empty() && key[0] == '_') continue;  // _class_name, _diffusers_version, ...
    bool known = false;
    for (const auto& [name, member] : int_keys) {
      if (key == name) {
        c.*member = read_int(it.value(), source, key);
        known = true;
      }
    }
    if (known) continue;
    if (key == "axes_dims_rope") {
      if (!it.value().is_array()) fail(source, key, "must be a list of integers, found " + it.value().dump());
      c.axes_dims_rope.clear();
      for (const auto& v : it.value()) c.axes_dims_rope.push_back(read_int(v, source, key));
    } else if (key == "rope_theta") {
      c.rope_theta = read_double(it.value(), source, key);
    } else if (key == "norm_eps") {
      c.norm_eps = read_double(it.value(), source, key);
    } else if (warnings) {
      warnings->push_back(source + ": unknown config key '" + key + "' ignored");
    }
  }
  try {
    c.validate();
  } catch (const Error& e) {
    throw Error(source + ": " + e.what());
  }
  return c;
}

Config Config::from_json_file(const std::string& path, std::vector<std::string>* warnings) {
  return from_json_text(read_text_file(path, "config file"), path, warnings);
}

std::string Config::to_json_text() const {
  nlohmann::ordered_json j;
  j["_class_name"] = "Krea2Transformer2DModel";
  j["in_channels"] = in_channels;
  j["num_layers"] = num_layers;
  j["attention_head_dim"] = attention_head_dim;
  j["num_attention_heads"] = num_attention_heads;
  j["num_key_value_heads"] = num_key_value_heads;
  j["intermediate_size"] = intermediate_size;
  j["timestep_embed_dim"] = timestep_embed_dim;
  j["text_hidden_dim"] = text_hidden_dim;
  j["num_text_layers"] = num_text_layers;
  j["text_num_attention_heads"] = text_num_attention_heads;
  j["text_num_key_value_heads"] = text_num_key_value_heads;
  j["text_intermediate_size"] = text_intermediate_size;
  j["num_layerwise_text_blocks"] = num_layerwise_text_blocks;
  j["num_refiner_text_blocks"] = num_refiner_text_blocks;
  j["axes_dims_rope"] = axes_dims_rope;
  j["rope_theta"] = rope_theta;
  j["norm_eps"] = norm_eps;
  return j.dump(2) + "\n";
}

}  // namespace krea2
