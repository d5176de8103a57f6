#include "model/gguf_config.h"

#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "io/gguf.h"
#include "krea2/error.h"

namespace krea2 {

namespace {

constexpr std::string_view kPrefix = "krea2.";

bool is_integer(GgufType t) {
  switch (t) {
    case GgufType::U8:
    case GgufType::I8:
    case GgufType::U16:
    case GgufType::I16:
    case GgufType::U32:
    case GgufType::I32:
    case GgufType::U64:
    case GgufType::I64:
      return true;
    default:
      return false;
  }
}

// A float32 value as the shortest decimal that reads back as the same float32 (1e-05 stored as f32 is
// 9.99999974e-06; config.json said 1e-05, and the config must compare equal to it).
double shortest_f32_decimal(double value) {
  const float f = static_cast<float>(value);
  char buf[32];
  for (int digits = 1; digits <= 9; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*g", digits, double(f));
    if (std::strtof(buf, nullptr) == f) return std::strtod(buf, nullptr);
  }
  return value;
}

// The metadata value as the JSON config.json would hold (the config parser checks ranges and types).
nlohmann::json to_json(const GgufHeader& h, const std::string& key, GgufType type) {
  if (is_integer(type)) return *h.get_int(key);
  if (type == GgufType::F32) return shortest_f32_decimal(*h.get_float(key));
  if (type == GgufType::F64) return *h.get_float(key);
  if (type == GgufType::ARRAY) {
    if (auto ints = h.get_int_array(key)) return *ints;
    return *h.get_float_array(key);
  }
  throw Error(h.source() + ": metadata '" + key + "': expected a number or an array of numbers, found " +
              std::string(gguf_type_name(type)));
}

}  // namespace

Config apply_gguf_config_metadata(const GgufFile& file, const Config& base, std::vector<std::string>* keys,
                                  std::vector<std::string>* warnings) {
  const GgufHeader& h = file.header();
  if (auto arch = h.get_string("general.architecture"); arch && *arch != "krea2" && warnings)
    warnings->push_back(file.path() + ": metadata 'general.architecture' is '" + *arch +
                        "', expected 'krea2'; the tensor names say Krea 2, loading it as such");
  nlohmann::json j = nlohmann::json::parse(base.to_json_text());
  std::vector<std::string> applied;
  for (const auto& [key, value] : h.metadata()) {
    if (!key.starts_with(kPrefix)) continue;
    const std::string name = key.substr(kPrefix.size());
    j[name] = to_json(h, key, value.type);
    applied.push_back(name);
  }
  if (keys) *keys = applied;
  if (applied.empty()) return base;
  return Config::from_json_text(j.dump(), file.path() + " (krea2.* metadata)", warnings);
}

}  // namespace krea2
