#include "bench_common.h"

#include <omp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "cpu_info.h"
#include "tensor/random.h"

namespace krea2::cli {

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (std::fabs(b) >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f %s", b, units[u]);
  return buf;
}

// Process high-water mark (Linux reports ru_maxrss in KiB).
int64_t peak_rss_bytes() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return int64_t(u.ru_maxrss) * 1024;
}

// Resident set right now (second field of /proc/self/statm, in pages).
int64_t current_rss_bytes() {
  std::ifstream f("/proc/self/statm");
  int64_t size = 0, resident = 0;
  f >> size >> resident;
  return resident * int64_t(sysconf(_SC_PAGESIZE));
}

int64_t physical_memory_bytes() {
  return int64_t(sysconf(_SC_PHYS_PAGES)) * int64_t(sysconf(_SC_PAGESIZE));
}

double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Uniform [-1, 1] from a counter-based splitmix64, so big inputs fill fast and reproducibly.
void fill_uniform(std::vector<float>& v, uint64_t seed) {
  const int64_t n = int64_t(v.size());
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    v[size_t(i)] = counter_uniform(counter_key(seed), uint64_t(i));
  }
}

Tensor random_tensor(Shape shape, uint64_t seed) {
  Tensor t(std::move(shape));
  fill_uniform(t.data, seed);
  return t;
}

DType float_weights_option(const Args& args, const std::string& model) {
  const std::string name = args.get("--weights", "bf16");
  if (name == "f32" || name == "F32") return DType::F32;
  if (name == "bf16" || name == "BF16") return DType::BF16;
  if (name == "f16" || name == "F16") return DType::F16;
  throw Error("--weights must be f32, bf16 or f16 for " + model + ", found '" + name + "'");
}

int64_t positive(const Args& args, const std::string& flag, int64_t fallback, int64_t min) {
  const int64_t v = args.get_int(flag, fallback);
  if (v < min) throw Error(flag + " must be >= " + std::to_string(min) + ", found " + std::to_string(v));
  return v;
}

// Measured peak of `unit` (the FMA of the active ISA by default) for the current thread count, or
// --peak-gflops. Warns first when the machine is busy.
double peak_gflops(const Args& args, Progress& progress, double load, const PeakUnit& unit) {
  if (load >= 1.0 && !args.has("--quiet"))
    std::fprintf(stderr,
                 "note: the 1-min load average was %.2f: other processes compete for the cores, so the "
                 "times and the peak are low\n",
                 load);
  if (args.has("--peak-gflops")) {
    const double g = args.get_double("--peak-gflops", 0);
    if (!(g > 0)) throw Error("--peak-gflops must be > 0");
    return g;
  }
  progress.message("measuring the " + peak_unit_name(unit) + " peak (" +
                   std::to_string(omp_get_max_threads()) + " threads)");
  return measure_peak_unit(omp_get_max_threads(), unit);
}

// Every unit this machine has, measured (the one in use already is): fp32 FMA per ISA, bf16 dot, int8 dot.
nlohmann::json all_peaks(Progress& progress, const PeakUnit& used, double used_peak) {
  std::vector<PeakUnit> units;
  for (Isa isa : kIsaLevels)
    if (isa_supported(isa)) units.push_back({isa, std::nullopt});
  for (DotUnit d : kDotUnits)
    if (dot_unit_supported(d)) units.push_back({Isa::kAvx512, d});
  nlohmann::json j = nlohmann::json::object();
  for (const PeakUnit& u : units) {
    const std::string key = peak_unit_key(u);
    if (key == peak_unit_key(used)) {
      j[key] = used_peak;
      continue;
    }
    progress.message("measuring the " + peak_unit_name(u) + " peak");
    j[key] = measure_peak_unit(omp_get_max_threads(), u);
  }
  return j;
}

// The summary fields shared by both modes.
nlohmann::json summary(const std::vector<double>& times, double flops, double peak, int warmup, double load,
                       bool quiet) {
  const double med = median(times);
  const double gflops = med > 0 ? flops * 1e-9 / med : 0.0;
  nlohmann::json j;
  j["threads"] = omp_get_max_threads();
  j["reps"] = times.size();
  j["warmup"] = warmup;
  j["times_s"] = times;
  j["median_s"] = med;
  j["min_s"] = *std::min_element(times.begin(), times.end());
  j["max_s"] = *std::max_element(times.begin(), times.end());
  j["flops"] = flops;
  j["gflops"] = gflops;
  j["peak_gflops"] = peak;
  j["percent_of_peak"] = peak > 0 ? 100.0 * gflops / peak : 0.0;
  j["peak_rss_bytes"] = peak_rss_bytes();
  j["load_average_1m"] = load;
  // After the run the 1-min average includes this run's own threads (it moves slowly, ~63% per minute), so
  // only a value clearly above `threads` points at other processes.
  double after = 0.0;
  if (getloadavg(&after, 1) != 1) after = 0.0;
  j["load_average_1m_after"] = after;
  j.update(cpu_report_json());
  if (after > omp_get_max_threads() + 1.0 && !quiet)
    std::fprintf(stderr, "note: the 1-min load average rose to %.2f: other processes ran during the bench\n",
                 after);
  return j;
}

// The GEMM ceiling (bench/kernel_ceiling.h): kCeilingRoundsPerRep rounds after each timed rep, so that it
// sees the conditions of the run. None with --peak-gflops, which asks for no measurement.
std::optional<KernelCeilingMeter> ceiling_meter(const Args& args, Compute compute) {
  if (args.has("--peak-gflops")) return std::nullopt;
  return KernelCeilingMeter(omp_get_max_threads(), active_isa(), compute);
}

void add_ceiling(nlohmann::json& j, const std::optional<KernelCeilingMeter>& meter) {
  if (!meter) return;
  const KernelCeiling c = meter->result();
  // The FMA loop ran again in those rounds; the peak is the best it ever reached (a first measurement taken
  // while the host was busy reads low, and every % of peak with it).
  if (c.fma_best_gflops > j["peak_gflops"].get<double>()) {
    j["peak_gflops_first"] = j["peak_gflops"];
    j["peak_gflops"] = c.fma_best_gflops;
    j["percent_of_peak"] = 100.0 * j["gflops"].get<double>() / c.fma_best_gflops;
  }
  j["kernel_ceiling_rounds"] = meter->rounds();
  j["kernel_ceiling_gflops"] = c.kernel_median_gflops;
  j["kernel_ceiling_best_gflops"] = c.kernel_best_gflops;
  j["kernel_ceiling_percent_of_peak"] = 100.0 * c.kernel_median_gflops / j["peak_gflops"].get<double>();
  j["fma_chains_median_gflops"] = c.fma_median_gflops;
}

void print_summary(const nlohmann::json& j) {
  std::printf("total: median %.4f s (min %.4f, max %.4f over %d reps)\n", j["median_s"].get<double>(),
              j["min_s"].get<double>(), j["max_s"].get<double>(), j["reps"].get<int>());
  std::printf("       %.2f GFLOP, %.1f GFLOP/s = %.1f%% of the %s peak (%.1f GFLOP/s, %d threads)\n",
              j["flops"].get<double>() * 1e-9, j["gflops"].get<double>(), j["percent_of_peak"].get<double>(),
              j["peak_unit"].get<std::string>().c_str(), j["peak_gflops"].get<double>(),
              j["threads"].get<int>());
  if (j.contains("peaks")) {
    std::printf("       peaks measured:");
    for (const auto& [k, v] : j["peaks"].items()) std::printf(" %s %.1f", k.c_str(), v.get<double>());
    std::printf(" (G op/s)\n");
  }
  if (j.contains("peak_gflops_first"))
    std::printf("       (peak raised from %.1f: the FMA loop ran faster in the ceiling's rounds)\n",
                j["peak_gflops_first"].get<double>());
  if (j.contains("kernel_ceiling_gflops"))
    std::printf(
        "       ceiling: the GEMM microkernel alone (operands in L1) ran at median %.1f GFLOP/s = %.1f%% of "
        "the peak\n                (best %.1f); the peak's FMA loop in the same rounds: median %.1f\n",
        j["kernel_ceiling_gflops"].get<double>(), j["kernel_ceiling_percent_of_peak"].get<double>(),
        j["kernel_ceiling_best_gflops"].get<double>(), j["fma_chains_median_gflops"].get<double>());
  std::printf("       peak RSS %s\n", human_bytes(double(j["peak_rss_bytes"].get<int64_t>())).c_str());
  std::printf("       1-min load average %.2f before the run, %.2f after (this run adds up to %d)\n",
              j["load_average_1m"].get<double>(), j["load_average_1m_after"].get<double>(),
              j["threads"].get<int>());
}

// Median over reps of every stage key; missing keys count as 0 for that rep.
std::map<std::string, double> median_stages(const std::vector<StageTimes>& reps) {
  std::map<std::string, std::vector<double>> all;
  for (const StageTimes& t : reps)
    for (const auto& [k, s] : t.seconds) all[k];
  for (const StageTimes& t : reps)
    for (auto& [k, v] : all) {
      auto it = t.seconds.find(k);
      v.push_back(it == t.seconds.end() ? 0.0 : it->second);
    }
  std::map<std::string, double> m;
  for (auto& [k, v] : all) m[k] = median(v);
  return m;
}

std::vector<double> run_timed_reps(int warmup, int reps, Progress& progress,
                                   std::optional<KernelCeilingMeter>& ceiling, std::vector<StageTimes>& times,
                                   const BenchRun& run) {
  times.assign(size_t(reps), StageTimes{});
  std::vector<double> seconds;
  for (int i = 0; i < warmup + reps; ++i) {
    const bool timed = i >= warmup;
    const double a = omp_get_wtime();
    run(timed ? &times[size_t(i - warmup)] : nullptr,
        [&](int done, int total) { progress.update(timed ? "timed" : "warmup", done, total); });
    const double e = omp_get_wtime();
    if (!timed) continue;
    seconds.push_back(e - a);
    if (ceiling) ceiling->measure(kCeilingRoundsPerRep);
  }
  progress.finish();
  return seconds;
}

}  // namespace krea2::cli
