#include "inspect_text_encoder.h"

#include <cstdio>
#include <nlohmann/json.hpp>

#include "cpu_info.h"
#include "krea2/text_encoder.h"

namespace krea2::cli {

int inspect_text_encoder(const std::string& path, bool as_json) {
  std::vector<std::string> warnings;
  TextEncoderLoadOptions load;
  load.warnings = &warnings;
  const TextEncoder enc = TextEncoder::load(path, load);
  const TextEncoderConfig& c = enc.config();
  const TextEncoderLoadInfo& info = enc.load_info();
  nlohmann::json j;
  j["path"] = path;
  j["file_format"] = info.file_format;
  j["names"] = info.names;
  j["config_source"] = info.config_source;
  j["config"] = {{"vocab_size", c.vocab_size},
                 {"hidden_size", c.hidden_size},
                 {"num_hidden_layers", c.num_layers},
                 {"num_attention_heads", c.num_heads},
                 {"num_key_value_heads", c.num_kv_heads},
                 {"head_dim", c.head_dim},
                 {"intermediate_size", c.intermediate_size},
                 {"rms_norm_eps", c.rms_norm_eps},
                 {"rope_theta", c.rope_theta},
                 {"mrope_section", c.mrope_section}};
  j["taps"] = enc.default_taps();
  j["taps_source"] = info.taps_source;
  j["quantization"] = info.quantization;
  j["parameters"] = enc.parameter_count();
  j["ignored_tensors"] = info.ignored_tensors.size();
  if (as_json) {
    j["machine"] = cpu_report_json();
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  for (const std::string& w : warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
  std::printf("text encoder  %s\n", path.c_str());
  std::printf("  file        %s, %s\n", info.file_format.c_str(), info.names.c_str());
  std::printf("  config      %s\n", info.config_source.c_str());
  std::printf(
      "  model       Qwen3 decoder: hidden %lld, %lld layers, %lld heads x %lld (%lld kv heads), ffn %lld, "
      "vocab %lld, eps %g, rope theta %g\n",
      (long long)c.hidden_size, (long long)c.num_layers, (long long)c.num_heads, (long long)c.head_dim,
      (long long)c.num_kv_heads, (long long)c.intermediate_size, (long long)c.vocab_size, c.rms_norm_eps,
      c.rope_theta);
  std::string taps;
  for (int t : enc.default_taps()) taps += (taps.empty() ? "" : ",") + std::to_string(t);
  std::printf("  taps        %s (%s)\n", taps.c_str(), info.taps_source.c_str());
  std::printf("  quantized   %s\n", info.quantization.c_str());
  std::printf("  parameters  %lld (%zu tensors ignored: vision tower, LM head)\n",
              (long long)enc.parameter_count(), info.ignored_tensors.size());
  std::printf("%s\n", cpu_report("  ").c_str());
  return 0;
}

}  // namespace krea2::cli
