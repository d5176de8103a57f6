// TextEncoderConfig: validation and the transformers config.json layouts (Qwen3-VL with a nested
// text_config, plain Qwen3; rope_theta beside rope_scaling, or inside transformers v5's rope_parameters).
#include <cmath>
#include <nlohmann/json.hpp>

#include "io/text_file.h"
#include "krea2/error.h"
#include "krea2/text_encoder.h"

namespace krea2 {

namespace {

using json = nlohmann::json;

[[noreturn]] void fail(const std::string& source, const std::string& key, const std::string& what) {
  throw Error(source + ": config key '" + key + "' " + what);
}

int64_t read_int(const json& obj, const char* key, int64_t fallback, const std::string& source) {
  if (!obj.contains(key) || obj[key].is_null()) return fallback;
  const json& v = obj[key];
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>() &&
      std::fabs(v.get<double>()) < 1e15)
    return int64_t(v.get<double>());
  fail(source, key, "must be an integer, found " + v.dump());
}

double read_double(const json& obj, const char* key, double fallback, const std::string& source) {
  if (!obj.contains(key) || obj[key].is_null()) return fallback;
  if (!obj[key].is_number()) fail(source, key, "must be a number, found " + obj[key].dump());
  return obj[key].get<double>();
}

void require(bool ok, const std::string& key, const std::string& what) {
  if (!ok) throw Error("text encoder config key '" + key + "' " + what);
}

}  // namespace

std::vector<int> default_text_encoder_taps() {
  std::vector<int> taps;
  for (int k = 0; k < 12; ++k) taps.push_back(2 + 3 * k);
  return taps;
}

void TextEncoderConfig::validate() const {
  auto positive = [](int64_t v, const char* key, int64_t limit) {
    require(v > 0 && v <= limit, key,
            "must be in 1.." + std::to_string(limit) + ", found " + std::to_string(v));
  };
  positive(vocab_size, "vocab_size", int64_t(1) << 24);
  positive(hidden_size, "hidden_size", 1 << 16);
  positive(num_layers, "num_hidden_layers", 1024);
  positive(num_heads, "num_attention_heads", 1024);
  positive(num_kv_heads, "num_key_value_heads", 1024);
  positive(head_dim, "head_dim", 4096);
  positive(intermediate_size, "intermediate_size", 1 << 20);
  require(num_heads % num_kv_heads == 0, "num_attention_heads",
          "(" + std::to_string(num_heads) + ") must be divisible by num_key_value_heads (" +
              std::to_string(num_kv_heads) + ")");
  require(head_dim % 2 == 0, "head_dim", "must be even (rotary pairs), found " + std::to_string(head_dim));
  require(rms_norm_eps > 0 && std::isfinite(rms_norm_eps), "rms_norm_eps",
          "must be positive, found " + std::to_string(rms_norm_eps));
  require(rope_theta > 1 && std::isfinite(rope_theta), "rope_theta",
          "must be > 1, found " + std::to_string(rope_theta));
  if (!mrope_section.empty()) {
    int64_t sum = 0;
    for (int64_t s : mrope_section) {
      require(s >= 0, "mrope_section", "entries must be >= 0");
      sum += s;
    }
    require(sum <= head_dim / 2, "mrope_section",
            "sums to " + std::to_string(sum) + ", more than head_dim / 2 = " + std::to_string(head_dim / 2));
  }
}

TextEncoderConfig TextEncoderConfig::from_json_text(const std::string& text, const std::string& source) {
  json root;
  try {
    root = json::parse(text);
  } catch (const json::exception& e) {
    throw Error(source + ": not valid JSON: " + e.what());
  }
  if (!root.is_object()) throw Error(source + ": a config must be a JSON object");
  const json* obj = &root;
  if (root.contains("text_config")) {
    if (!root["text_config"].is_object()) fail(source, "text_config", "must be an object");
    obj = &root["text_config"];
  } else if (!root.contains("hidden_size")) {
    throw Error(source + ": not a Qwen3 / Qwen3-VL config: no 'text_config' and no 'hidden_size'");
  }
  const json& c = *obj;
  TextEncoderConfig cfg;
  cfg.vocab_size = read_int(c, "vocab_size", cfg.vocab_size, source);
  cfg.hidden_size = read_int(c, "hidden_size", cfg.hidden_size, source);
  cfg.num_layers = read_int(c, "num_hidden_layers", cfg.num_layers, source);
  cfg.num_heads = read_int(c, "num_attention_heads", cfg.num_heads, source);
  cfg.num_kv_heads = read_int(c, "num_key_value_heads", cfg.num_heads, source);
  cfg.head_dim = read_int(c, "head_dim", cfg.num_heads > 0 ? cfg.hidden_size / cfg.num_heads : 0, source);
  cfg.intermediate_size = read_int(c, "intermediate_size", cfg.intermediate_size, source);
  cfg.rms_norm_eps = read_double(c, "rms_norm_eps", cfg.rms_norm_eps, source);
  cfg.rope_theta = read_double(c, "rope_theta", cfg.rope_theta, source);
  cfg.mrope_section.clear();
  for (const char* rope_key : {"rope_scaling", "rope_parameters"}) {
    if (!c.contains(rope_key) || c[rope_key].is_null()) continue;
    const json& r = c[rope_key];
    if (!r.is_object()) fail(source, rope_key, "must be an object, found " + r.dump());
    cfg.rope_theta = read_double(r, "rope_theta", cfg.rope_theta, source);
    if (r.contains("rope_type") && r["rope_type"].is_string() && r["rope_type"] != "default")
      fail(source, std::string(rope_key) + ".rope_type",
           "is '" + r["rope_type"].get<std::string>() + "': only the default rope is supported");
    if (r.contains("mrope_section")) {
      if (!r["mrope_section"].is_array()) fail(source, "mrope_section", "must be an array");
      for (const json& v : r["mrope_section"]) {
        if (!v.is_number_integer()) fail(source, "mrope_section", "must hold integers, found " + v.dump());
        cfg.mrope_section.push_back(v.get<int64_t>());
      }
    }
  }
  if (c.contains("attention_bias") && c["attention_bias"].is_boolean() && c["attention_bias"].get<bool>())
    fail(source, "attention_bias", "is true: the Qwen3 text tower has no attention biases");
  try {
    cfg.validate();
  } catch (const Error& e) {
    throw Error(source + ": " + e.what());
  }
  return cfg;
}

TextEncoderConfig TextEncoderConfig::from_json_file(const std::string& path) {
  return from_json_text(read_text_file(path, "the text encoder config"), path);
}

}  // namespace krea2
