// krea2 bench --model text-encoder: the Qwen3-VL text tower on random weights at the real size (35 layers:
// the deepest tap of Krea 2 is hidden state 35), over the pipeline's 546-row sequence (512 + 34), with the
// per-stage table, analytic FLOPs, GFLOP/s, % of peak and peak RSS.
#include "bench_text_encoder.h"

#include <omp.h>

#include <cmath>
#include <cstdio>

#include "bench/flops.h"
#include "bench_common.h"
#include "cpu_info.h"
#include "krea2/text_encoder.h"
#include "ops/gemm.h"

namespace krea2::cli {

const std::set<std::string> kTextEncoderBenchFlags = {"--layers", "--tokens",  "--batch",      "--weights",
                                                      "--seed",   "--compute", "--text-config"};

int bench_text_encoder(const Args& args, Progress& progress, double load) {
  TextEncoderConfig c = args.has("--text-config")
                            ? TextEncoderConfig::from_json_file(args.get("--text-config"))
                            : TextEncoderConfig{};
  const int64_t layers = positive(args, "--layers", std::min<int64_t>(35, c.num_layers));
  if (layers > c.num_layers)
    throw Error("--layers " + std::to_string(layers) + " exceeds the config's " +
                std::to_string(c.num_layers));
  c.num_layers = layers;  // only the layers that run get weights
  const int64_t S = positive(args, "--tokens", 546), B = positive(args, "--batch", 1);
  const int reps = int(positive(args, "--reps", 3)), warmup = int(positive(args, "--warmup", 1, 0));
  const DType wtype = float_weights_option(args, "the text encoder");
  int64_t params = 0;
  {
    const TextEncoderConfig& cc = c;
    params =
        cc.vocab_size * cc.hidden_size + cc.num_layers * (cc.hidden_size * cc.num_heads * cc.head_dim * 2 +
                                                          cc.hidden_size * cc.num_kv_heads * cc.head_dim * 2 +
                                                          3 * cc.hidden_size * cc.intermediate_size);
  }
  const int64_t wbytes = params * int64_t(dtype_size(wtype));
  if (wbytes > physical_memory_bytes())
    throw Error("random weights need " + human_bytes(double(wbytes)) + " but the machine has " +
                human_bytes(double(physical_memory_bytes())) + "; use fewer --layers or --weights bf16");
  const Compute compute = compute_option(args);
  const PeakUnit unit = peak_unit_for(active_isa(), compute);
  const double peak = peak_gflops(args, progress, load, unit);

  progress.message("generating " + human_bytes(double(wbytes)) + " of random " +
                   std::string(dtype_name(wtype)) + " text-encoder weights");
  const double t0 = omp_get_wtime();
  const TextEncoder enc =
      TextEncoder::random(c, wtype, uint64_t(args.get_int("--seed", 0))).with_compute(compute);
  const double setup_s = omp_get_wtime() - t0;

  // Random token ids, all valid, positions 0..S-1 (the valid rows of a full 512-token prompt).
  std::vector<int32_t> ids(size_t(B * S)), pos(size_t(B * S));
  std::vector<uint8_t> mask(size_t(B * S), 1);
  for (int64_t i = 0; i < B * S; ++i) {
    ids[size_t(i)] = int32_t((uint64_t(i) * 2654435761u) % uint64_t(c.vocab_size));
    pos[size_t(i)] = int32_t(i % S);
  }
  const std::vector<int> taps = {int(layers)};  // the deepest tap: every layer runs
  std::vector<StageTimes> times;
  std::optional<KernelCeilingMeter> ceiling = ceiling_meter(args, compute);
  const std::vector<double> total_s =
      run_timed_reps(warmup, reps, progress, ceiling, times, [&](StageTimes* t, const auto& step_progress) {
        EncodeOptions o;
        o.times = t;
        o.progress = step_progress;
        const Tensor out = enc.hidden_states(ids, mask, pos, B, taps, true, o);
        if (!std::isfinite(out.data[0])) throw Error("the text encoder produced a non-finite value");
      });

  const TextEncoderFlops f = text_encoder_flops(c, layers, S);
  const double flops = double(B) * f.total();
  nlohmann::json j = summary(total_s, flops, peak, warmup, load, args.has("--quiet"));
  j["peak_unit"] = peak_unit_name(unit);
  j["gemm_kernel"] = gemm_kernel_name(active_isa(), compute);
  add_ceiling(j, ceiling);
  j["mode"] = "text-encoder";
  j["layers"] = layers;
  j["tokens"] = S;
  j["batch"] = B;
  j["weights"] = std::string(dtype_name(wtype));
  j["compute"] = compute_name(compute);
  j["weight_bytes"] = wbytes;
  j["setup_s"] = setup_s;
  const std::map<std::string, double> stages = median_stages(times);
  const double linear_flops = double(B) * f.linear;
  struct Row {
    const char* key;
    double flops;
  };
  const Row rows[] = {{"embed", -1},    {"norm_rope", -1},  {"qkv", -1},    {"attention", B * f.attention},
                      {"out_proj", -1}, {"ff_gate_up", -1}, {"swiglu", -1}, {"ff_down", -1}};
  double gemm_s = 0;
  for (const char* k : {"qkv", "out_proj", "ff_gate_up", "ff_down"})
    if (stages.count(k)) gemm_s += stages.at(k);
  for (const Row& r : rows) {
    j["stages"][r.key]["seconds"] = stages.count(r.key) ? stages.at(r.key) : 0.0;
    if (r.flops >= 0) j["stages"][r.key]["flops"] = r.flops;
  }
  j["stages"]["gemm"]["seconds"] = gemm_s;
  j["stages"]["gemm"]["flops"] = linear_flops;
  j["gemm_gflops"] = gemm_s > 0 ? linear_flops * 1e-9 / gemm_s : 0.0;
  j["gemm_percent_of_peak"] = 100.0 * j["gemm_gflops"].get<double>() / j["peak_gflops"].get<double>();
  if (args.has("--json")) {
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf("krea2 bench: text encoder (Qwen3-VL text tower) on random weights\n");
  std::printf("  model    hidden %lld, %lld heads x %lld, %lld kv heads, ffn %lld, %lld layers, vocab %lld\n",
              (long long)c.hidden_size, (long long)c.num_heads, (long long)c.head_dim,
              (long long)c.num_kv_heads, (long long)c.intermediate_size, (long long)layers,
              (long long)c.vocab_size);
  std::printf("  inputs   batch %lld x %lld tokens (all valid, causal)\n", (long long)B, (long long)S);
  std::printf("  weights  %s, %s (generated in %.1f s); compute %s\n", dtype_name(wtype).data(),
              human_bytes(double(wbytes)).c_str(), setup_s, compute_name(compute));
  std::printf("%s\n", cpu_report("  ").c_str());
  const double total = median(total_s);
  std::printf("%-24s %9s %8s %10s %9s\n", "stage", "seconds", "% total", "GFLOP", "GFLOP/s");
  auto line = [&](const std::string& label, double sec, double fl) {
    std::printf("%-24s %9.4f %7.1f%%", label.c_str(), sec, total > 0 ? 100.0 * sec / total : 0.0);
    if (fl >= 0)
      std::printf(" %10.2f %9.1f\n", fl * 1e-9, sec > 0 ? fl * 1e-9 / sec : 0.0);
    else
      std::printf(" %10s %9s\n", "-", "-");
  };
  line("gemm (q k v o ff)", gemm_s, linear_flops);
  for (const char* k : {"qkv", "out_proj", "ff_gate_up", "ff_down"})
    line(std::string("  ") + k, stages.count(k) ? stages.at(k) : 0.0, -1);
  line("attention (causal)", stages.count("attention") ? stages.at("attention") : 0.0, B * f.attention);
  line("norm_rope", stages.count("norm_rope") ? stages.at("norm_rope") : 0.0, -1);
  line("swiglu", stages.count("swiglu") ? stages.at("swiglu") : 0.0, -1);
  line("embed", stages.count("embed") ? stages.at("embed") : 0.0, -1);
  line("total", total, flops);
  std::printf("\n");
  print_summary(j);
  std::printf("       gemm alone: %.1f GFLOP/s = %.1f%% of the peak\n", j["gemm_gflops"].get<double>(),
              j["gemm_percent_of_peak"].get<double>());
  return 0;
}

}  // namespace krea2::cli
