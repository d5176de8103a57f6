// The CLI's view of the instruction set level: the --isa option, the KREA2_ISA check, and the CPU / kernel
// report printed by `krea2 --version`, `bench` and `inspect`.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "args.h"
#include "krea2/compute.h"

namespace krea2::cli {

// Applies --isa avx2|avx512 when given (set_isa_cap); an unknown name, or a level this CPU lacks, is an error
// naming the missing features.
void apply_isa_option(const Args& args);

// --compute f32|bf16|int8 (default f32); anything else is an error.
Compute compute_option(const Args& args, const std::string& flag = "--compute");

// Throws krea2::Error when KREA2_ISA is set to something other than a level name.
void check_isa_environment();

// One line each: "cpu <brand>", "features ...", "isa ... (detected ..., cap ... from ...)", "kernels ...";
// every line starts with `indent`.
std::string cpu_report(const std::string& indent);

// The same as JSON fields: cpu, cpu_features (array), isa, isa_detected, isa_cap, isa_cap_source,
// gemm_kernel, attention_kernel, kernels.
nlohmann::json cpu_report_json();

}  // namespace krea2::cli
