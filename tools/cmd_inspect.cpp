// krea2 inspect: config, parameter count, bytes per dtype and the tensor table of a checkpoint.
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include "args.h"
#include "commands.h"
#include "cpu_info.h"
#include "inspect_lora.h"
#include "inspect_text_encoder.h"
#include "krea2/model.h"

namespace krea2::cli {

namespace {

const char* kHelp = R"(Usage: krea2 inspect MODEL [--tensors] [--json]
       krea2 inspect --lora FILE [MODEL] [--json]
       krea2 inspect --text-encoder PATH [--json]

Loads MODEL (a diffusers folder, a single .safetensors under diffusers or original Krea names, ComfyUI fp8 /
int8 files, or a GGUF file), checks every tensor against the config, and prints the file format, the tensor
names found, where the config came from (config.json, krea2.* metadata, or the tensor shapes; values no shape
determines are listed as defaulted), the config, the quantization, the parameter count, tensor count and bytes
per stored type and (with --tensors) the table of parameters with their stored type and shape. Norm weights,
biases and modulation tables are listed as F32 (they are decoded when loaded); the byte totals count the types
the big matrices are stored in. Last, the CPU this runs on: its features and the kernels chosen (JSON: "machine").

With --lora FILE: the adapter's format (key layout and kind), tensor count, rank and alpha, every targeted
parameter (key stem, diffusers parameter, kind, rank, alpha, factor) and every key that matches no parameter.
Names and shapes are resolved against MODEL's config when given, else names only against the default config.

With --text-encoder PATH: the Qwen3-VL text encoder's file format and naming scheme, where its config came from,
the config, the default taps and where they came from, the quantization and the parameter count.
)";

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f %s", b, units[u]);
  return buf;
}

}  // namespace

int cmd_inspect(int argc, char** argv) {
  Args args(argc, argv, {"--model", "--lora", "--text-encoder"}, {"--tensors", "--json", "--help"});
  if (args.has("--help")) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  std::string path = args.get("--model");
  if (path.empty() && !args.positional().empty()) path = args.positional()[0];
  if (args.has("--lora")) return inspect_lora(args.get("--lora"), path, args.has("--json"));
  if (args.has("--text-encoder")) return inspect_text_encoder(args.get("--text-encoder"), args.has("--json"));
  if (path.empty()) throw Error("missing MODEL (see krea2 inspect --help)");
  std::vector<std::string> warnings;
  LoadOptions load;
  load.warnings = &warnings;
  load.allow_unexpected = true;
  Model model = Model::load(path, load);
  for (const auto& w : warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
  const auto params = model.parameters();
  int64_t count = 0;
  for (const auto& p : params) count += p.numel();
  const LoadInfo& info = model.load_info();
  std::map<DType, std::pair<int64_t, int64_t>> per_type;  // tensors, bytes
  for (const auto& p : params) {
    per_type[p.dtype].first += 1;
    per_type[p.dtype].second += int64_t(p.nbytes);
  }
  if (args.has("--json")) {
    nlohmann::json j;
    j["parameters"] = count;
    j["config"] = nlohmann::json::parse(model.config().to_json_text());
    j["format"] = info.file_format;
    j["names"] = info.names;
    j["config_source"] = info.config_source;
    j["config_defaulted"] = info.config_defaulted;
    j["quantization"] = info.quantization;
    j["ignored_tensors"] = info.ignored_tensors;
    for (const auto& [dtype, tb] : per_type)
      j["types"][std::string(dtype_name(dtype))] = {{"tensors", tb.first}, {"bytes", tb.second}};
    j["machine"] = cpu_report_json();
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf("model: %s\nformat: %s (%s)\n", path.c_str(), info.file_format.c_str(), info.names.c_str());
  std::printf("config from: %s\n", info.config_source.c_str());
  if (!info.config_defaulted.empty()) {
    std::string keys;
    for (const auto& k : info.config_defaulted) keys += (keys.empty() ? "" : ", ") + k;
    std::printf("config defaulted (no shape or metadata determines them; upstream defaults): %s\n",
                keys.c_str());
  }
  std::printf("config:\n%s", model.config().to_json_text().c_str());
  std::printf("quantization: %s\n", info.quantization.c_str());
  if (!info.ignored_tensors.empty()) {
    std::string names;
    for (const auto& n : info.ignored_tensors) names += (names.empty() ? "" : ", ") + n;
    std::printf("ignored tensors (never read by the model): %s\n", names.c_str());
  }
  std::printf("parameters: %lld (%.3f B)\n", (long long)count, double(count) / 1e9);
  std::printf("tensors: %zu\n", params.size());
  for (const auto& [dtype, tb] : per_type)
    std::printf("  %-8s %4lld tensors  %s\n", std::string(dtype_name(dtype)).c_str(), (long long)tb.first,
                human_bytes(double(tb.second)).c_str());
  if (args.has("--tensors"))
    for (const auto& p : params)
      std::printf("%-60s %-8s %s\n", p.name.c_str(), std::string(dtype_name(p.dtype)).c_str(),
                  shape_str(p.shape).c_str());
  std::printf("machine:\n%s", cpu_report("  ").c_str());
  return 0;
}

}  // namespace krea2::cli
