#include "cpu_info.h"

#include <cstdlib>

#include "cpu/cpu_features.h"
#include "ops/attention.h"
#include "ops/gemm.h"
#include "ops/row_kernels.h"

namespace krea2::cli {

namespace {

// What runs on which ISA: the GEMM, attention and element-wise row variants active_isa() selects (the GEMM's
// packers read F32 / BF16 / F16 weights at its level); the quantized-weight decoders are AVX2 at every level.
std::string kernels_line() {
  return std::string("gemm ") + gemm_kernel_name() +
         " (bf16: " + gemm_kernel_name(active_isa(), Compute::kBf16) +
         ", int8: " + gemm_kernel_name(active_isa(), Compute::kInt8) + "); attention " +
         attention_kernels_name() + "; norms, rope, activations " + row_kernels().name +
         "; quantized-weight decoders avx2";
}

}  // namespace

void apply_isa_option(const Args& args) {
  if (!args.has("--isa")) return;
  const std::string name = args.get("--isa");
  const std::optional<Isa> isa = parse_isa(name);
  if (!isa) throw Error("--isa must be avx2 or avx512, found '" + name + "'");
  if (!isa_supported(*isa)) throw Error("--isa " + name + ": " + isa_missing(*isa));
  set_isa_cap(*isa);
}

Compute compute_option(const Args& args, const std::string& flag) {
  if (!args.has(flag)) return Compute::kF32;
  const std::string name = args.get(flag);
  const std::optional<Compute> c = parse_compute(name);
  if (!c) throw Error(flag + " must be f32, bf16 or int8, found '" + name + "'");
  return *c;
}

void check_isa_environment() {
  const char* v = std::getenv("KREA2_ISA");
  if (v != nullptr && *v != '\0' && !parse_isa(v))
    throw Error(std::string("KREA2_ISA must be avx2 or avx512, found '") + v + "'");
}

std::string cpu_report(const std::string& indent) {
  std::string s;
  s += indent + "cpu      " + cpu_brand() + "\n";
  s += indent + "features " + cpu_features_string() + "\n";
  s += indent + "isa      " + isa_name(active_isa()) + " (detected " + isa_name(detected_isa()) + ", cap " +
       isa_name(isa_cap()) + " from " + isa_cap_source() + ")\n";
  s += indent + "kernels  " + kernels_line() + "\n";
  return s;
}

nlohmann::json cpu_report_json() {
  nlohmann::json j;
  j["cpu"] = cpu_brand();
  j["cpu_features"] = cpu_feature_names();
  j["isa"] = isa_name(active_isa());
  j["isa_detected"] = isa_name(detected_isa());
  j["isa_cap"] = isa_name(isa_cap());
  j["isa_cap_source"] = isa_cap_source();
  j["gemm_kernel"] = gemm_kernel_name();
  j["gemm_kernels"] = {{"f32", gemm_kernel_name()},
                       {"bf16", gemm_kernel_name(active_isa(), Compute::kBf16)},
                       {"int8", gemm_kernel_name(active_isa(), Compute::kInt8)}};
  j["attention_kernel"] = attention_kernels_name();
  j["kernels"] = kernels_line();
  return j;
}

}  // namespace krea2::cli
