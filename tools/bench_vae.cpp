// krea2 bench --model vae: the Qwen-Image VAE decoder (one frame, 2-D form) on random weights at the real
// config (or --vae-config), decoding random latents of --height x --width pixels, with the per-stage table,
// analytic FLOPs, GFLOP/s, % of the fp32 peak and peak RSS.
#include "bench_vae.h"

#include <omp.h>

#include <cmath>
#include <cstdio>

#include "bench_common.h"
#include "cpu_info.h"
#include "krea2/vae.h"
#include "ops/conv2d_onednn.h"
#include "ops/gemm.h"
#include "vae/vae_flops.h"

namespace krea2::cli {

const std::set<std::string> kVaeBenchFlags = {"--height",  "--width", "--batch",
                                              "--weights", "--seed",  "--vae-config"};

int bench_vae(const Args& args, Progress& progress, double load) {
  const VaeConfig c =
      args.has("--vae-config") ? VaeConfig::from_json_file(args.get("--vae-config")) : VaeConfig{};
  const int64_t H = positive(args, "--height", 1024), W = positive(args, "--width", 1024);
  const int64_t B = positive(args, "--batch", 1), f = c.scale_factor();
  if (H % f != 0 || W % f != 0)
    throw Error("--height and --width must be multiples of " + std::to_string(f) +
                " (the VAE's scale factor), found " + std::to_string(H) + " x " + std::to_string(W));
  const int64_t h = H / f, w = W / f;
  const int reps = int(positive(args, "--reps", 3)), warmup = int(positive(args, "--warmup", 1, 0));
  const DType wtype = float_weights_option(args, "the VAE");
  const double peak = peak_gflops(args, progress, load);

  progress.message("generating random " + std::string(dtype_name(wtype)) + " VAE weights");
  const double t0 = omp_get_wtime();
  const Vae vae = Vae::random(c, wtype, uint64_t(args.get_int("--seed", 0)));
  const double setup_s = omp_get_wtime() - t0;
  const int64_t params = vae.parameter_count();

  // Latents as the sampler gives them: roughly unit Gaussian; uniform [-1.7, 1.7] has the same variance.
  Tensor z = random_tensor({B, c.z_dim, h, w}, uint64_t(args.get_int("--seed", 0)) + 1);
  for (float& v : z.data) v *= 1.7320508f;
  std::vector<StageTimes> times;
  std::optional<KernelCeilingMeter> ceiling = ceiling_meter(args);
  const int64_t runs_direct = onednn_conv2d_runs(ConvBackend::kOnednn),
                runs_winograd = onednn_conv2d_runs(ConvBackend::kWinograd);
  const std::vector<double> total_s =
      run_timed_reps(warmup, reps, progress, ceiling, times, [&](StageTimes* t, const auto& step_progress) {
        VaeDecodeOptions o;
        o.times = t;
        o.progress = step_progress;
        const Tensor image = vae.decode(z, o);
        if (!std::isfinite(image.data[0])) throw Error("the VAE produced a non-finite value");
      });

  const VaeFlops fl = vae_decode_flops_parts(c, h, w);
  const double flops = double(B) * fl.total();
  nlohmann::json j = summary(total_s, flops, peak, warmup, load, args.has("--quiet"));
  j["peak_unit"] = peak_unit_name(peak_unit_for(active_isa(), Compute::kF32));
  j["gemm_kernel"] = gemm_kernel_name(active_isa(), Compute::kF32);
  add_ceiling(j, ceiling);
  j["mode"] = "vae";
  j["height"] = H;
  j["width"] = W;
  j["latent_height"] = h;
  j["latent_width"] = w;
  j["batch"] = B;
  j["weights"] = std::string(dtype_name(wtype));
  j["parameters"] = params;
  j["setup_s"] = setup_s;
  const std::map<std::string, double> stages = median_stages(times);
  struct Row {
    const char* key;
    const char* label;
    double flops;
  };
  const Row rows[] = {{"conv", "conv 3x3", B * fl.conv3x3},
                      {"upsample", "upsample x2 + conv 3x3", B * fl.upsample},
                      {"conv1x1", "conv 1x1 (shortcut, pqc)", B * fl.conv1x1},
                      {"attention_proj", "attention to_qkv + proj", B * fl.attention_proj},
                      {"attention", "attention core", B * fl.attention},
                      {"norm", "RMS norm + SiLU", -1},
                      {"io", "un-normalise, layout, clamp", -1}};
  auto seconds = [&](const char* k) { return stages.count(k) ? stages.at(k) : 0.0; };
  const double conv_s =
      seconds("conv") + seconds("upsample") + seconds("conv1x1") + seconds("attention_proj");
  for (const Row& r : rows) {
    j["stages"][r.key]["seconds"] = seconds(r.key);
    if (r.flops >= 0) j["stages"][r.key]["flops"] = r.flops;
  }
  j["stages"]["convs"]["seconds"] = conv_s;
  j["stages"]["convs"]["flops"] = B * fl.convs();
  j["conv_gflops"] = conv_s > 0 ? B * fl.convs() * 1e-9 / conv_s : 0.0;
  j["conv_percent_of_peak"] = 100.0 * j["conv_gflops"].get<double>() / j["peak_gflops"].get<double>();
  j["conv_backend"] = conv_backend_name(conv2d_backend());
  j["conv_runs"] = {{"onednn_direct", onednn_conv2d_runs(ConvBackend::kOnednn) - runs_direct},
                    {"onednn_winograd", onednn_conv2d_runs(ConvBackend::kWinograd) - runs_winograd}};
  if (args.has("--json")) {
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf("krea2 bench: VAE decoder (Qwen-Image / Wan 2.1, one frame) on random weights\n");
  std::string mult;
  for (int64_t m : c.dim_mult) mult += (mult.empty() ? "" : ",") + std::to_string(m);
  std::printf("  model    base_dim %lld, dim_mult [%s], %lld res blocks, z_dim %lld; %lld live parameters\n",
              (long long)c.base_dim, mult.c_str(), (long long)c.num_res_blocks, (long long)c.z_dim,
              (long long)params);
  std::printf("  inputs   batch %lld, latents %lld x %lld -> %lld x %lld pixels\n", (long long)B,
              (long long)h, (long long)w, (long long)H, (long long)W);
  std::printf("  weights  %s values, held as float32 (generated in %.1f s)\n", dtype_name(wtype).data(),
              setup_s);
  std::printf("%s", cpu_report("  ").c_str());
  std::printf(
      "  convs    backend %s (KREA2_CONV=own|onednn|winograd; oneDNN %s): 3x3 calls (all runs) by "
      "oneDNN Winograd %lld, oneDNN direct %lld, the rest ours\n\n",
      conv_backend_name(conv2d_backend()), onednn_available() ? "built in" : "not in this build",
      (long long)j["conv_runs"]["onednn_winograd"].get<int64_t>(),
      (long long)j["conv_runs"]["onednn_direct"].get<int64_t>());
  const double total = median(total_s);
  std::printf("%-30s %9s %8s %10s %9s\n", "stage", "seconds", "% total", "GFLOP", "GFLOP/s");
  auto line = [&](const std::string& label, double sec, double fl_) {
    std::printf("%-30s %9.4f %7.1f%%", label.c_str(), sec, total > 0 ? 100.0 * sec / total : 0.0);
    if (fl_ >= 0)
      std::printf(" %10.2f %9.1f\n", fl_ * 1e-9, sec > 0 ? fl_ * 1e-9 / sec : 0.0);
    else
      std::printf(" %10s %9s\n", "-", "-");
  };
  line("convs (all)", conv_s, B * fl.convs());
  for (const Row& r : rows)
    line(std::string(r.flops >= 0 && std::string(r.key) != "attention" ? "  " : "") + r.label, seconds(r.key),
         r.flops);
  line("total", total, flops);
  std::printf("\n");
  print_summary(j);
  std::printf("       convs alone: %.1f GFLOP/s = %.1f%% of the peak\n", j["conv_gflops"].get<double>(),
              j["conv_percent_of_peak"].get<double>());
  return 0;
}

}  // namespace krea2::cli
