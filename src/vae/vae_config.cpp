// VaeConfig: validation and diffusers' config.json (AutoencoderKLQwenImage / AutoencoderKLWan).
#include <cmath>
#include <nlohmann/json.hpp>

#include "io/text_file.h"
#include "krea2/error.h"
#include "krea2/vae.h"

namespace krea2 {

namespace {

using json = nlohmann::json;

[[noreturn]] void fail(const std::string& source, const std::string& key, const std::string& what) {
  throw Error(source + ": VAE config key '" + key + "' " + what);
}

void require(bool ok, const std::string& key, const std::string& what) {
  if (!ok) throw Error("VAE config key '" + key + "' " + what);
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

template <class T>
std::vector<T> read_array(const json& obj, const char* key, std::vector<T> fallback,
                          const std::string& source) {
  if (!obj.contains(key) || obj[key].is_null()) return fallback;
  const json& v = obj[key];
  if (!v.is_array()) fail(source, key, "must be an array, found " + v.dump());
  std::vector<T> out;
  for (const json& x : v) {
    if constexpr (std::is_integral_v<T>) {
      if (!x.is_number_integer()) fail(source, key, "must hold integers, found " + x.dump());
    } else {
      if (!x.is_number()) fail(source, key, "must hold numbers, found " + x.dump());
    }
    out.push_back(x.get<T>());
  }
  return out;
}

}  // namespace

std::vector<int64_t> VaeConfig::decoder_channels() const {
  std::vector<int64_t> d;
  if (dim_mult.empty()) return d;
  d.push_back(base_dim * dim_mult.back());
  for (size_t i = dim_mult.size(); i-- > 0;) d.push_back(base_dim * dim_mult[i]);
  return d;
}

void VaeConfig::validate() const {
  require(base_dim > 0 && base_dim <= 1 << 16, "base_dim",
          "must be in 1..65536, found " + std::to_string(base_dim));
  require(z_dim > 0 && z_dim <= 1 << 16, "z_dim", "must be in 1..65536, found " + std::to_string(z_dim));
  require(num_res_blocks >= 0 && num_res_blocks <= 64, "num_res_blocks",
          "must be in 0..64, found " + std::to_string(num_res_blocks));
  require(!dim_mult.empty() && dim_mult.size() <= 12, "dim_mult",
          "must hold 1..12 entries, found " + std::to_string(dim_mult.size()));
  for (int64_t m : dim_mult)
    require(m > 0 && m * base_dim <= 1 << 16, "dim_mult",
            "entries must be positive with base_dim * entry <= 65536, found " + std::to_string(m));
  // Each up block's upsample conv halves its channels, and the next level's first resnet reads that half.
  const std::vector<int64_t> d = decoder_channels();
  for (size_t i = 1; i + 1 < d.size(); ++i)
    require(d[i] % 2 == 0, "dim_mult",
            "gives up block " + std::to_string(i - 1) + " an odd channel count " + std::to_string(d[i]) +
                " (its upsample conv halves it): base_dim * dim_mult must be even");
  require(
      int64_t(latents_mean.size()) == z_dim, "latents_mean",
      "must hold z_dim = " + std::to_string(z_dim) + " values, found " + std::to_string(latents_mean.size()));
  require(
      int64_t(latents_std.size()) == z_dim, "latents_std",
      "must hold z_dim = " + std::to_string(z_dim) + " values, found " + std::to_string(latents_std.size()));
  for (float m : latents_mean) require(std::isfinite(m), "latents_mean", "must be finite");
  for (float s : latents_std)
    require(std::isfinite(s) && s != 0.0f, "latents_std",
            "must be finite and non-zero, found " + std::to_string(s));
}

VaeConfig VaeConfig::from_json_text(const std::string& text, const std::string& source) {
  json c;
  try {
    c = json::parse(text);
  } catch (const json::exception& e) {
    throw Error(source + ": not valid JSON: " + e.what());
  }
  if (!c.is_object()) throw Error(source + ": a config must be a JSON object");
  if (c.contains("_class_name")) {
    const json& n = c["_class_name"];
    if (!n.is_string() || (n != "AutoencoderKLQwenImage" && n != "AutoencoderKLWan"))
      throw Error(source + ": not a Qwen-Image / Wan 2.1 VAE config: '_class_name' is " + n.dump() +
                  ", expected \"AutoencoderKLQwenImage\" or \"AutoencoderKLWan\"");
  } else if (!c.contains("z_dim") && !c.contains("base_dim")) {
    throw Error(source + ": not a Qwen-Image / Wan 2.1 VAE config: no '_class_name', 'z_dim' or 'base_dim'");
  }
  // Wan 2.2's residual variant (is_residual, patch_size) is another decoder.
  if (c.contains("is_residual") && c["is_residual"].is_boolean() && c["is_residual"].get<bool>())
    fail(source, "is_residual", "is true: the Wan 2.2 residual VAE is not supported");
  if (c.contains("patch_size") && !c["patch_size"].is_null())
    fail(source, "patch_size", "is set: the Wan 2.2 patchified VAE is not supported");
  VaeConfig cfg;
  cfg.base_dim = read_int(c, "base_dim", cfg.base_dim, source);
  cfg.z_dim = read_int(c, "z_dim", cfg.z_dim, source);
  cfg.num_res_blocks = read_int(c, "num_res_blocks", cfg.num_res_blocks, source);
  cfg.dim_mult = read_array<int64_t>(c, "dim_mult", cfg.dim_mult, source);
  cfg.latents_mean = read_array<float>(c, "latents_mean", cfg.latents_mean, source);
  cfg.latents_std = read_array<float>(c, "latents_std", cfg.latents_std, source);
  try {
    cfg.validate();
  } catch (const Error& e) {
    throw Error(source + ": " + e.what());
  }
  return cfg;
}

VaeConfig VaeConfig::from_json_file(const std::string& path) {
  return from_json_text(read_text_file(path, "the VAE config"), path);
}

}  // namespace krea2
