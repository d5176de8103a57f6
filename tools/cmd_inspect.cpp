// krea2 inspect: config, parameter count, bytes per dtype and the tensor table of a checkpoint.
#include <cstdio>

#include "args.h"
#include "commands.h"
#include "krea2/model.h"

namespace krea2::cli {

namespace {

const char* kHelp = R"(Usage: krea2 inspect MODEL [--tensors] [--json]

Loads MODEL (a diffusers folder or a single .safetensors with original Krea names), checks every tensor against
the config, and prints the config, the parameter count, bytes per stored dtype and (with --tensors) the table of
parameters with dtype and shape. Norm weights, biases and modulation tables are listed as F32 (they are widened
when loaded); the byte totals count the dtypes the big matrices are stored in.
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
  Args args(argc, argv, {"--model"}, {"--tensors", "--json", "--help"});
  if (args.has("--help")) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  std::string path = args.get("--model");
  if (path.empty() && !args.positional().empty()) path = args.positional()[0];
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
  if (args.has("--json")) {
    std::printf("{\"parameters\": %lld, \"config\": %s}\n", (long long)count,
                model.config().to_json_text().c_str());
    return 0;
  }
  std::printf("model: %s\nconfig:\n%s", path.c_str(), model.config().to_json_text().c_str());
  std::printf("parameters: %lld (%.3f B)\n", (long long)count, double(count) / 1e9);
  std::printf("tensors: %zu\n", params.size());
  for (const auto& [dtype, bytes] : model.bytes_per_dtype())
    std::printf("  %-5s %s\n", std::string(dtype_name(dtype)).c_str(), human_bytes(double(bytes)).c_str());
  if (args.has("--tensors"))
    for (const auto& p : params)
      std::printf("%-60s %-5s %s\n", p.name.c_str(), std::string(dtype_name(p.dtype)).c_str(),
                  shape_str(p.shape).c_str());
  return 0;
}

}  // namespace krea2::cli
