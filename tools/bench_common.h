// What the bench modes share (tools/cmd_bench.cpp: the transformer forward and attention; tools/
// bench_text_encoder.cpp): sizes and RSS, medians, random inputs, the measured peaks, the GEMM ceiling, and
// the summary fields and lines every mode prints.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "args.h"
#include "bench/kernel_ceiling.h"
#include "bench/peak_unit.h"
#include "cpu/cpu_features.h"
#include "krea2/model.h"
#include "progress.h"

namespace krea2::cli {

std::string human_bytes(double b);
int64_t peak_rss_bytes();     // the process high-water mark (getrusage)
int64_t current_rss_bytes();  // resident now (/proc/self/statm)
int64_t physical_memory_bytes();
double median(std::vector<double> v);
// Uniform [-1, 1] from a counter-based splitmix64, so big inputs fill fast and reproducibly.
void fill_uniform(std::vector<float>& v, uint64_t seed);
Tensor random_tensor(Shape shape, uint64_t seed);
// args[flag] (or fallback), an error below `min`.
int64_t positive(const Args& args, const std::string& flag, int64_t fallback, int64_t min = 1);
// --weights f32|bf16|f16 (either case; default bf16) as the dtype random weights are rounded to; `model`
// names the model in the error ("the VAE").
DType float_weights_option(const Args& args, const std::string& model);

// Measured peak of `unit` for the current thread count, or --peak-gflops. Warns first when the machine is
// busy.
double peak_gflops(const Args& args, Progress& progress, double load,
                   const PeakUnit& unit = peak_unit_for(active_isa(), Compute::kF32));
// Every unit this machine has, measured (the one in use already is): fp32 FMA per ISA, bf16 dot, int8 dot.
nlohmann::json all_peaks(Progress& progress, const PeakUnit& used, double used_peak);

// The summary fields shared by every mode.
nlohmann::json summary(const std::vector<double>& times, double flops, double peak, int warmup, double load,
                       bool quiet);
// The GEMM ceiling: kCeilingRoundsPerRep rounds after each timed rep; none with --peak-gflops.
inline constexpr int kCeilingRoundsPerRep = 5;
std::optional<KernelCeilingMeter> ceiling_meter(const Args& args, Compute compute = Compute::kF32);
void add_ceiling(nlohmann::json& j, const std::optional<KernelCeilingMeter>& meter);
void print_summary(const nlohmann::json& j);

// `warmup` untimed then `reps` timed calls of run(stage_times, step_progress): stage_times is that rep's
// entry of `times` (sized to reps here; null while warming up), step_progress(done, total) updates the
// progress line. Returns the timed calls' wall seconds; the ceiling (if any) is measured after each timed
// call.
using BenchRun = std::function<void(StageTimes* times, const std::function<void(int, int)>& step_progress)>;
std::vector<double> run_timed_reps(int warmup, int reps, Progress& progress,
                                   std::optional<KernelCeilingMeter>& ceiling, std::vector<StageTimes>& times,
                                   const BenchRun& run);

// Median over reps of every stage key; missing keys count as 0 for that rep.
std::map<std::string, double> median_stages(const std::vector<StageTimes>& reps);

}  // namespace krea2::cli
