// krea2 bench: times the forward (or attention alone) on random weights and inputs, and reports per-stage
// times, analytic FLOPs, GFLOP/s, % of the machine's measured FMA peak and peak RSS.
#include <omp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "args.h"
#include "bench/flops.h"
#include "bench/fma_peak.h"
#include "bench/kernel_ceiling.h"
#include "bench/peak_unit.h"
#include "bench_common.h"
#include "bench_text_encoder.h"
#include "bench_vae.h"
#include "commands.h"
#include "cpu/cpu_features.h"
#include "cpu_info.h"
#include "krea2/model.h"
#include "krea2/quantize.h"
#include "model/weights.h"
#include "ops/attention.h"
#include "ops/gemm.h"
#include "ops/linear.h"
#include "progress.h"
#include "tensor/random.h"

namespace krea2::cli {

namespace {

const char* kHelp = R"(Usage: krea2 bench [options]                       time the forward on random weights
       krea2 bench --only attention --seq S [options]   time the attention op alone
       krea2 bench --model text-encoder|vae [options]   time the text encoder / the VAE decoder

Forward mode builds a model with random weights (any config; default the real Krea 2: hidden 6144 = 48 heads x
128, 12 KV heads, FFN 16384, 28 blocks, text 2560 x 12 tapped layers, 20 text heads, 2 + 2 text blocks) and
random inputs as the pipeline shapes them: hidden_states (B, N, 64) and encoder_hidden_states (B, L, 12, 2560)
uniform in [-1, 1], timestep 0.5, text position ids (0, 0, 0), image ids (0, row, col) over the most square
h x w grid with h * w = N, no mask. It runs `--warmup` untimed forwards, then `--reps` timed ones, and prints:
  * per-stage seconds (medians over reps): the text path (Model::encode_text) with its own gemm / attention /
    norm_mod_rope parts, then the image forward (Model::predict): timestep, gemm_embed (img_in), the blocks'
    gemm / attention / norm_mod_rope, final_layer, and `other` (time no stage timer covers);
  * the median total (encode_text + predict), analytic FLOPs, GFLOP/s, % of the FMA peak, peak RSS.

Forward options:
  --config FILE         diffusers config.json (default: the built-in Krea 2 config)
  --layers N            number of main blocks (overrides num_layers; the full 28 do not fit most RAM)
  --text-layerwise N    number of layerwise text blocks (overrides num_layerwise_text_blocks)
  --text-refiner N      number of refiner text blocks (overrides num_refiner_text_blocks)
  --image-tokens N      image tokens per sample (default 4096: a 1024 x 1024 image)
  --text-tokens L       text tokens per sample (default 256)
  --batch B             samples (default 1)
  --weights TYPE        f32 | bf16 | f16 (default f32: every element drawn), or a quantization recipe of
                        krea2 quantize: Q8_0 Q6_K Q5_K_M Q5_K_S Q4_K_M Q4_K_S Q4_0 Q4_1 Q5_0 Q5_1 Q3_K_M
                        Q3_K_S fp8 int8-convrot (rows drawn from a pool of 128 random Gaussian rows per
                        matrix, encoded once: seconds even for the full model). Activations are float32.
  --compute MODE        matrix products in f32 (default), bf16 or int8 (see krea2 forward --help); int8
                        quantizes every weight not stored as int8 per row first (counted in setup_s)
  --compare-f32         also run one forward on the float32 weights the recipe encoded (same draw), in f32
                        compute, and print the rel L2 error of the output (weights and compute mode
                        together; JSON: rel_l2_vs_f32, bits_per_weight)
  --lora-rank R         attach a random rank-R LoRA on every default target (LoraAdapter::random), applied
                        at run time (low-rank products added to the layer outputs)
  --seed S              seed of the random weights and inputs (default 0)
  --gemm BACKEND        packed (default: our GEMM, src/ops/gemm.cpp) | openblas (sgemm; bf16/f16 weights
                        widened a panel at a time first), to compare the two
  --gemm-blocking MC,KC,NC  the packed GEMM's cache blocking for the ISA in use (defaults per ISA in
                        src/ops/gemm_avx2.cpp / gemm_avx512.cpp; the text and JSON print the one used), to
                        tune it for another CPU

Text-encoder mode (--model text-encoder): the Qwen3-VL text tower (Qwen3-VL-4B's text_config unless
--text-config FILE) on random weights, over one sequence of all-valid tokens, every layer up to the deepest tap:
  --layers N            decoder layers to run (default 35: Krea 2's deepest tap is hidden state 35)
  --tokens S            rows per sample (default 546 = max_sequence_length 512 + the 34 template rows)
  --batch B             samples (default 1)
  --weights TYPE        f32 | bf16 (default, as the released file) | f16
  --compute MODE        f32 (default) | bf16 | int8
  --text-config FILE    a transformers config.json (Qwen3-VL text_config or Qwen3)
  FLOPs per layer: 2 S (D*Q + 2 D*KV + Q*D + 3 D*I) + 2 S (S + 1) Q (causal attention: S (S + 1) / 2 pairs)

VAE mode (--model vae): the Qwen-Image VAE decoder (one frame, its 3-D convs in their exact 2-D form;
the released config unless --vae-config FILE) on random weights (convs variance 1 / fan_in), decoding random
latents of one image size:
  --height H, --width W  image pixels (default 1024 x 1024; multiples of the scale factor 8)
  --batch B             images (default 1; decoded one after another)
  --weights TYPE        f32 | bf16 (default) | f16: the values' rounding (the decoder computes in float32)
  --vae-config FILE     a diffusers config.json (AutoencoderKLQwenImage / AutoencoderKLWan)
  FLOPs: 2 P in out k^2 per conv (P output pixels, post_quant_conv and the 1x1 convs included) + 4 S^2 C for
  the mid attention (S = h w latent pixels, C = 4 base_dim): 4.298 + 0.412 TFLOP at 1024 x 1024.

Attention mode (--only attention): q (S, heads x head_dim), k, v (S, kv_heads x head_dim) uniform in [-1, 1],
one segment of S rows, no mask. Also reports the attention's extra memory: peak RSS after the calls minus the
RSS just before them (inputs and output already allocated).
  --seq S               sequence length (required; e.g. 1088 = 64 text + 1024 image tokens, 4608 = 512 + 4096)
  --heads H             query heads (default 48)
  --kv-heads K          key/value heads (default 12)
  --head-dim D          head dimension (default 128)

Common options:
  --reps R              timed repetitions (default 3); times are medians over reps
  --warmup W            untimed repetitions first (default 1)
  --threads N           OpenMP threads (default: all cores); the FMA peak is measured with the same count
  --isa LEVEL           highest instruction set level of the kernels: avx2 | avx512 (default: the best the
                        CPU has; KREA2_ISA does the same, this option wins); the peak and the ceiling are
                        those of the level in use
  --peak-gflops G       use G as the peak instead of measuring it (also skips the ceiling below)
  --json                print one JSON line instead of the table (times in s, sizes in bytes)
  --quiet               no progress output (progress is only shown on a terminal anyway)

FLOPs (analytic; 2 per multiply-add of every matrix product, attention's QK^T and PV included; norms, rope,
softmax, activations and residuals not counted). Per sample, L text tokens, N image tokens, S = L + N,
D = hidden, Dkv = kv hidden, F = ffn, H = D, C = in_channels, E = timestep_embed_dim:
  main block       2 S (D*D [q] + 2 D*Dkv [k, v] + D*D [gate] + D*D [out] + 3 D*F [ff]) + 4 S^2 D
  text layerwise   per token, nl = 12 rows of width Dt (kv Dtkv, ffn Ft):
                   2 nl (2 Dt*Dt + 2 Dt*Dtkv + Dt*Dt + 3 Dt*Ft) + 4 nl^2 Dt
  text refiner     the same with L rows instead of nl, per sample
  projector        2 L nl Dt     txt_in  2 L (Dt*H + H*H)     img_in  2 N C H
  timestep         2 (E*H + H*H + H*6H)                       final   2 N H C
  attention alone  4 S^2 head_dim heads  (QK^T 2 S^2 hd per head, PV the same)
GFLOP/s = FLOPs / median seconds (int8 operations count as FLOPs). % of peak = GFLOP/s over the measured
peak of the unit the compute mode runs on: bf16 on vdpbf16ps (AVX512_BF16), int8 on vpdpbusd (zmm with
AVX512_VNNI, ymm with AVX-VNNI), otherwise (f32, and the emulated bf16 / plain AVX2 int8 kernels) the float32
FMA peak of the ISA in use. Every unit the machine has is measured too (JSON: peaks, peak_unit). FMA peak:
every thread runs independent chains of FMAs (avx2: 12 chains of 256-bit FMAs, 16 FLOPs each; avx512: 16
chains of 512-bit FMAs, 32 FLOPs each), 10 runs of ~0.1 s, the best kept (measured again while it reads
under 80 % of threads x the one-thread figure: the scheduler had two threads on one core).
The ceiling (~0.5 s after each timed rep): the GEMM's microkernel (avx2 6x16, avx512 12x32) alone on
operands that stay in L1, in
5 rounds per rep alternating with the peak's FMA loop; the median over all rounds is reported. No GEMM-bound
run can beat it at that moment; on a shared host it can sit well under the peak (the FMA loop touches no
memory, the kernel loads).
If the FMA loop runs faster in these rounds than in the first measurement, the peak is raised to that.
JSON: kernel_ceiling_gflops, kernel_ceiling_best_gflops, kernel_ceiling_percent_of_peak,
fma_chains_median_gflops, kernel_ceiling_rounds; and the machine: cpu, cpu_features, isa (the level in use),
isa_detected, isa_cap, isa_cap_source, gemm_kernel, attention_kernel, kernels.
Peak RSS is getrusage's ru_maxrss (the process high-water mark, random weights included).

Example: krea2 bench --layers 2 --image-tokens 1024 --text-tokens 64 --weights bf16
)";

// Flags of each mode; the other mode's flags are rejected rather than silently ignored.
const std::set<std::string> kForwardFlags = {
    "--config",        "--layers",  "--text-layerwise", "--text-refiner", "--image-tokens",
    "--text-tokens",   "--batch",   "--weights",        "--seed",         "--gemm",
    "--gemm-blocking", "--compute", "--lora-rank"};
const std::set<std::string> kAttentionFlags = {"--seq", "--heads", "--kv-heads", "--head-dim"};
const std::set<std::string> kCommonFlags = {"--only",    "--reps",        "--warmup",
                                            "--threads", "--peak-gflops", "--isa"};

// The most square grid with h * w = n, h <= w (the pipeline's image is h x w tokens).
std::pair<int64_t, int64_t> square_grid(int64_t n) {
  int64_t h = int64_t(std::sqrt(double(n)));
  while (h > 1 && n % h != 0) --h;
  return {h, n / h};
}

// --weights: f32 / bf16 / f16 (Model::random, every element drawn) or a quantization recipe (Q8_0, Q4_K_M,
// fp8, int8-convrot, ...: random_quantized_model, rows drawn from a pool and encoded once).
struct WeightChoice {
  std::string name;
  std::optional<DType> plain;  // set for f32 / bf16 / f16
};

WeightChoice parse_weights(const std::string& s) {
  if (s == "f32" || s == "F32") return {"F32", DType::F32};
  if (s == "bf16" || s == "BF16") return {"BF16", DType::BF16};
  if (s == "f16" || s == "F16") return {"F16", DType::F16};
  try {
    return {quant_recipe(s).name, std::nullopt};
  } catch (const Error& e) {
    throw Error(std::string("--weights must be f32, bf16, f16 or a quantization recipe: ") + e.what());
  }
}

// Bytes the random weights will take: matrices in their stored type, every other parameter float32.
int64_t weight_bytes(const Config& c, const WeightChoice& w) {
  ModelWeights shapes;  // only sized by the visitor, never filled
  const QuantRecipe recipe = quant_recipe(w.plain ? std::string(dtype_name(*w.plain)) : w.name);
  int64_t bytes = 0;
  visit_weights(shapes, c, [&](ParamSlot& s) {
    if (!s.matrix) {
      bytes += shape_numel(s.shape) * int64_t(sizeof(float));
      return;
    }
    const DType t = w.plain ? *w.plain : recipe_weight_type(recipe, s.name, s.shape[0], s.shape[1]);
    bytes += s.shape[0] * (dtype_row_bytes(t, s.shape[1]) + (t == DType::I8 ? 4 : 0));
  });
  return bytes;
}

Model make_random_model(const Config& c, const WeightChoice& w, uint64_t seed) {
  return w.plain ? Model::random(c, *w.plain, seed) : random_quantized_model(c, w.name, seed);
}

// One row of the stage table; flops < 0 when no FLOPs are attributed to it.
struct StageRow {
  std::string key;    // JSON name
  std::string label;  // table label
  double seconds = 0;
  double flops = -1;
};

// Indented rows are parts of the row above them; the unindented rows add up to the total.
void print_table(std::vector<StageRow> rows, double total, double total_flops) {
  rows.push_back({"total", "total (encode_text + predict)", total, total_flops});
  std::printf("%-36s %9s %8s %10s %9s\n", "stage", "seconds", "% total", "GFLOP", "GFLOP/s");
  for (const StageRow& r : rows) {
    std::printf("%-36s %9.4f %7.1f%%", r.label.c_str(), r.seconds,
                total > 0 ? 100.0 * r.seconds / total : 0.0);
    if (r.flops >= 0)
      std::printf(" %10.2f %9.1f\n", r.flops * 1e-9, r.seconds > 0 ? r.flops * 1e-9 / r.seconds : 0.0);
    else
      std::printf(" %10s %9s\n", "-", "-");
  }
}

Config bench_config(const Args& args) {
  std::vector<std::string> warnings;
  Config c = args.has("--config") ? Config::from_json_file(args.get("--config"), &warnings) : Config{};
  for (const auto& w : warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
  if (args.has("--layers")) c.num_layers = int(positive(args, "--layers", 0, 0));
  if (args.has("--text-layerwise"))
    c.num_layerwise_text_blocks = int(positive(args, "--text-layerwise", 0, 0));
  if (args.has("--text-refiner")) c.num_refiner_text_blocks = int(positive(args, "--text-refiner", 0, 0));
  c.validate();
  return c;
}

// Removes and returns stages[key] (0 if absent), so leftovers can be listed as unknown keys.
double take(std::map<std::string, double>& stages, const std::string& key) {
  auto it = stages.find(key);
  if (it == stages.end()) return 0.0;
  const double s = it->second;
  stages.erase(it);
  return s;
}

// Builds the stage table from the text-path and predict StageTimes medians.
std::vector<StageRow> stage_rows(std::map<std::string, double> text, std::map<std::string, double> main,
                                 double encode_s, double predict_s, const FlopCount& f) {
  std::vector<StageRow> rows;
  const double text_total = text.count("text_fusion") ? take(text, "text_fusion") : encode_s;
  const double tg = take(text, "gemm"), ta = take(text, "attention"), tn = take(text, "norm_mod_rope");
  rows.push_back({"text_path", "text path (encode_text)", text_total, f.text()});
  rows.push_back({"text.gemm", "  text blocks gemm", tg, f.text_linear});
  rows.push_back({"text.attention", "  text blocks attention", ta, f.text_attention});
  rows.push_back({"text.norm_mod_rope", "  text blocks norm_mod_rope", tn, -1});
  rows.push_back(
      {"text.other", "  other (projector, txt_in, copies)", text_total - tg - ta - tn, f.text_other});
  for (const auto& [k, s] : text) rows.push_back({"text." + k, "  " + k + " (unlisted key)", s, -1});

  double timed = 0;
  auto add = [&](const std::string& key, const std::string& label, double flops) {
    const double s = take(main, key);
    timed += s;
    rows.push_back({key, label, s, flops});
  };
  add("timestep", "timestep", f.timestep);
  add("gemm_embed", "gemm_embed (img_in, packing)", f.img_in);
  add("gemm", "blocks gemm", f.blocks_linear);
  add("attention", "blocks attention", f.blocks_attention);
  add("norm_mod_rope", "blocks norm_mod_rope", -1);
  add("final_layer", "final_layer", f.final_layer);
  for (const auto& [k, s] : main) rows.push_back({k, k + " (unlisted key)", s, -1});
  rows.push_back({"other", "other (rope table, untimed)", predict_s - timed, -1});
  return rows;
}

int bench_forward(const Args& args, Progress& progress, double load) {
  const Config c = bench_config(args);
  const int64_t B = positive(args, "--batch", 1), N = positive(args, "--image-tokens", 4096);
  const int64_t L = positive(args, "--text-tokens", 256);
  const int reps = int(positive(args, "--reps", 3)), warmup = int(positive(args, "--warmup", 1, 0));
  const WeightChoice weights = parse_weights(args.get("--weights", "f32"));
  const uint64_t seed = uint64_t(args.get_int("--seed", 0));
  const std::string gemm = args.get("--gemm", "packed");
  if (gemm != "packed" && gemm != "openblas")
    throw Error("--gemm must be 'packed' or 'openblas', found '" + gemm + "'");
  set_linear_backend(gemm == "packed" ? LinearBackend::kPackedGemm : LinearBackend::kOpenBlas);
  if (args.has("--gemm-blocking")) {
    const std::string b = args.get("--gemm-blocking", "");
    GemmBlocking blk = gemm_blocking();
    char tail = 0;
    if (std::sscanf(b.c_str(), "%ld,%ld,%ld%c", &blk.mc, &blk.kc, &blk.nc, &tail) != 3 || blk.mc <= 0 ||
        blk.kc <= 0 || blk.nc <= 0)
      throw Error("--gemm-blocking must be three positive integers MC,KC,NC, found '" + b + "'");
    set_gemm_blocking(blk);
  }
  const GemmBlocking blocking = gemm_blocking();

  // Model::random fills every byte; refuse before the OOM killer does.
  const int64_t wbytes = weight_bytes(c, weights);
  const bool compare = args.has("--compare-f32");
  const int64_t f32_bytes = compare ? weight_bytes(c, {"F32", std::nullopt}) : 0;
  if (wbytes + f32_bytes > physical_memory_bytes())
    throw Error("random weights need " + human_bytes(double(wbytes + f32_bytes)) + " but the machine has " +
                human_bytes(double(physical_memory_bytes())) + "; use fewer --layers or a smaller --weights");
  const Compute compute = compute_option(args);
  const PeakUnit unit = peak_unit_for(active_isa(), compute);
  const double peak = peak_gflops(args, progress, load, unit);
  const nlohmann::json peaks = args.has("--peak-gflops") ? nlohmann::json() : all_peaks(progress, unit, peak);

  progress.message("generating " + human_bytes(double(wbytes)) + " of random " + weights.name + " weights");
  const double t0 = omp_get_wtime();
  if (compute != Compute::kF32)
    progress.message("preparing " + std::string(compute_name(compute)) + " compute");
  Model model = make_random_model(c, weights, seed).with_compute(compute);
  const int64_t lora_rank = args.has("--lora-rank") ? positive(args, "--lora-rank", 0) : 0;
  if (lora_rank > 0) model = model.with_loras({{LoraAdapter::random(c, lora_rank, seed), 1.0f}});
  const double setup_s = omp_get_wtime() - t0;

  const Tensor hidden = random_tensor({B, N, c.in_channels}, seed + 1);
  const Tensor text = random_tensor({B, L, c.num_text_layers, c.text_hidden_dim}, seed + 2);
  const Tensor timestep({B}, std::vector<float>(size_t(B), 0.5f));
  const Tensor text_pos({L, 3});  // text rows stay (0, 0, 0)
  const auto [gh, gw] = square_grid(N);
  Tensor image_pos({N, 3});
  for (int64_t r = 0; r < N; ++r) {
    image_pos.data[size_t(3 * r + 1)] = float(r / gw);
    image_pos.data[size_t(3 * r + 2)] = float(r % gw);
  }

  // encode_text and predict get separate StageTimes: both run run_block, whose gemm / attention /
  // norm_mod_rope keys would otherwise mix the text path into the blocks' numbers.
  std::vector<StageTimes> text_times(static_cast<size_t>(reps)), main_times(static_cast<size_t>(reps));
  std::vector<double> encode_s, predict_s, total_s;
  std::optional<KernelCeilingMeter> ceiling = ceiling_meter(args, compute);
  for (int i = 0; i < warmup + reps; ++i) {
    const bool timed = i >= warmup;
    ForwardOptions text_opt, main_opt;
    if (timed) {
      text_opt.times = &text_times[size_t(i - warmup)];
      main_opt.times = &main_times[size_t(i - warmup)];
    }
    const double a = omp_get_wtime();
    const TextContext ctx = model.encode_text(text, std::nullopt, text_pos, text_opt);
    const double b = omp_get_wtime();
    const Tensor out = model.predict(ctx, hidden, timestep, image_pos, main_opt);
    const double e = omp_get_wtime();
    if (!std::isfinite(out.data[0])) throw Error("the forward produced a non-finite value");
    if (timed) {
      encode_s.push_back(b - a);
      predict_s.push_back(e - b);
      total_s.push_back(e - a);
      if (ceiling) ceiling->measure(kCeilingRoundsPerRep);
    }
    progress.update(timed ? "timed" : "warmup", i + 1, warmup + reps);
  }
  progress.finish();

  const FlopCount f = forward_flops(c, B, N, L);
  const std::vector<StageRow> rows = stage_rows(median_stages(text_times), median_stages(main_times),
                                                median(encode_s), median(predict_s), f);
  nlohmann::json j = summary(total_s, f.total(), peak, warmup, load, args.has("--quiet"));
  j["peak_unit"] = peak_unit_name(unit);
  j["gemm_kernel"] = gemm_kernel_name(active_isa(), compute);
  add_ceiling(j, ceiling);
  if (!peaks.is_null()) {
    j["peaks"] = peaks;
    j["peaks"][peak_unit_key(unit)] =
        j["peak_gflops"];  // raised by the ceiling's rounds where they ran faster
  }
  j["mode"] = "forward";
  j["config"] = nlohmann::json::parse(c.to_json_text());
  j["batch"] = B;
  j["image_tokens"] = N;
  j["image_grid"] = {gh, gw};
  j["text_tokens"] = L;
  j["weights"] = weights.name;
  j["compute"] = compute_name(compute);
  if (lora_rank > 0) j["lora_rank"] = lora_rank;
  if (compare) {
    // The same forward on the float32 weights this recipe encoded (random_quantized_model "F32").
    progress.message("comparing with the float32 weights of the same draw");
    const Model reference = random_quantized_model(c, "F32", seed);
    std::optional<Model> pooled;  // f32 / bf16 / f16 drew every element: redraw them from the pool
    if (weights.plain) pooled = random_quantized_model(c, weights.name, seed).with_compute(compute);
    const Model& tested = pooled ? *pooled : model;
    const TextContext ctx_q = tested.encode_text(text, std::nullopt, text_pos);
    const Tensor out_q = tested.predict(ctx_q, hidden, timestep, image_pos);
    const TextContext ctx_f = reference.encode_text(text, std::nullopt, text_pos);
    const Tensor out_f = reference.predict(ctx_f, hidden, timestep, image_pos);
    double num = 0, den = 0;
    for (size_t i = 0; i < out_f.data.size(); ++i) {
      num += double(out_q.data[i] - out_f.data[i]) * double(out_q.data[i] - out_f.data[i]);
      den += double(out_f.data[i]) * double(out_f.data[i]);
    }
    j["rel_l2_vs_f32"] = std::sqrt(num / std::max(den, 1e-300));
    int64_t params = 0;
    ModelWeights shapes;
    visit_weights(shapes, c, [&](ParamSlot& p) { params += shape_numel(p.shape); });
    j["bits_per_weight"] = 8.0 * double(wbytes) / double(params);
  }
  j["gemm"] = gemm;
  j["gemm_blocking"] = {blocking.mc, blocking.kc, blocking.nc};
  j["weight_bytes"] = wbytes;
  j["setup_s"] = setup_s;
  j["encode_text_median_s"] = median(encode_s);
  j["predict_median_s"] = median(predict_s);
  for (const StageRow& r : rows) {
    j["stages"][r.key]["seconds"] = r.seconds;
    if (r.flops >= 0) j["stages"][r.key]["flops"] = r.flops;
  }
  if (args.has("--json")) {
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf("krea2 bench: forward on random weights\n");
  std::printf("  model    hidden %lld (%d heads x %d, %d kv heads), ffn %d, %d blocks\n",
              (long long)c.hidden(), c.num_attention_heads, c.attention_head_dim, c.num_key_value_heads,
              c.intermediate_size, c.num_layers);
  std::printf("  text     %d x %d taps (%d heads, %d kv heads), ffn %d, %d layerwise + %d refiner blocks\n",
              c.text_hidden_dim, c.num_text_layers, c.text_num_attention_heads, c.text_num_key_value_heads,
              c.text_intermediate_size, c.num_layerwise_text_blocks, c.num_refiner_text_blocks);
  std::printf("  inputs   batch %lld, image tokens %lld (%lld x %lld), text tokens %lld\n", (long long)B,
              (long long)N, (long long)gh, (long long)gw, (long long)L);
  std::printf("  weights  %s, %s (generated in %.1f s); gemm %s (blocking %ld,%ld,%ld)\n",
              weights.name.c_str(), human_bytes(double(wbytes)).c_str(), setup_s, gemm.c_str(),
              long(blocking.mc), long(blocking.kc), long(blocking.nc));
  std::printf("  timing   %d threads, %d timed reps after %d warmup; stage times are medians\n",
              omp_get_max_threads(), reps, warmup);
  std::printf("%s\n", cpu_report("  ").c_str());
  print_table(rows, median(total_s), f.total());
  std::printf("\n");
  print_summary(j);
  if (compare)
    std::printf(
        "       error vs the float32 weights of the same draw: rel L2 %.3e (%.2f bits per parameter)\n",
        j["rel_l2_vs_f32"].get<double>(), j["bits_per_weight"].get<double>());
  return 0;
}

int bench_attention(const Args& args, Progress& progress, double load) {
  if (!args.has("--seq")) throw Error("--only attention needs --seq S (see --help)");
  const int64_t S = positive(args, "--seq", 0);
  const int heads = int(positive(args, "--heads", 48)), kv = int(positive(args, "--kv-heads", 12));
  const int hd = int(positive(args, "--head-dim", 128));
  const int reps = int(positive(args, "--reps", 3)), warmup = int(positive(args, "--warmup", 1, 0));
  if (heads % kv != 0)
    throw Error("--heads (" + std::to_string(heads) + ") must be divisible by --kv-heads (" +
                std::to_string(kv) + ")");
  // Measure the peak first: it also starts the OpenMP threads, whose stacks would otherwise count as the
  // attention's memory.
  const double peak = peak_gflops(args, progress, load);

  const int64_t qw = int64_t(heads) * hd, kw = int64_t(kv) * hd;
  std::vector<float> q(size_t(S * qw)), k(size_t(S * kw)), v(size_t(S * kw)), out(size_t(S * qw), 0.0f);
  fill_uniform(q, 1);
  fill_uniform(k, 2);
  fill_uniform(v, 3);
  const AttentionShape shape{heads, kv, hd};
  const std::vector<Segment> segments = {Segment{0, S}};

  std::optional<KernelCeilingMeter> ceiling = ceiling_meter(args);
  const int64_t rss_before = current_rss_bytes();
  std::vector<double> times;
  for (int i = 0; i < warmup + reps; ++i) {
    const double a = omp_get_wtime();
    attention(q.data(), qw, k.data(), kw, v.data(), kw, out.data(), qw, shape, segments);
    const double e = omp_get_wtime();
    if (i >= warmup) {
      times.push_back(e - a);
      if (ceiling) ceiling->measure(kCeilingRoundsPerRep);
    }
    progress.update(i >= warmup ? "timed" : "warmup", i + 1, warmup + reps);
  }
  progress.finish();
  if (!std::isfinite(out[0])) throw Error("attention produced a non-finite value");
  const int64_t extra = std::max<int64_t>(0, peak_rss_bytes() - rss_before);

  nlohmann::json j = summary(times, attention_flops(S, heads, hd), peak, warmup, load, args.has("--quiet"));
  j["peak_unit"] = peak_unit_name(peak_unit_for(active_isa(), Compute::kF32));
  add_ceiling(j, ceiling);
  j["mode"] = "attention";
  j["seq"] = S;
  j["heads"] = heads;
  j["kv_heads"] = kv;
  j["head_dim"] = hd;
  j["attention_extra_bytes"] = extra;
  j["inputs_bytes"] = int64_t(q.size() + k.size() + v.size() + out.size()) * int64_t(sizeof(float));
  if (args.has("--json")) {
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf("krea2 bench: attention alone\n");
  std::printf("  shape    seq %lld (one segment), %d heads x %d, %d kv heads, no mask\n", (long long)S, heads,
              hd, kv);
  std::printf("  memory   q, k, v, out %s; extra during attention %s\n",
              human_bytes(double(j["inputs_bytes"].get<int64_t>())).c_str(),
              human_bytes(double(extra)).c_str());
  std::printf("  timing   %d threads, %d timed reps after %d warmup\n", omp_get_max_threads(), reps, warmup);
  std::printf("%s\n", cpu_report("  ").c_str());
  print_summary(j);
  return 0;
}

}  // namespace

int cmd_bench(int argc, char** argv) {
  std::set<std::string> known = kCommonFlags;
  known.insert(kForwardFlags.begin(), kForwardFlags.end());
  known.insert(kAttentionFlags.begin(), kAttentionFlags.end());
  known.insert(kTextEncoderBenchFlags.begin(), kTextEncoderBenchFlags.end());
  known.insert(kVaeBenchFlags.begin(), kVaeBenchFlags.end());
  known.insert("--model");
  Args args(argc, argv, known, {"--json", "--quiet", "--help", "--compare-f32"});
  if (args.has("--help")) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  if (!args.positional().empty())
    throw Error("unexpected argument '" + args.positional()[0] + "' (see --help)");
  if (args.has("--threads")) set_threads(args.get_int("--threads", 0));
  apply_isa_option(args);
  const std::string model = args.get("--model", "transformer");
  if (model != "transformer" && model != "text-encoder" && model != "vae")
    throw Error("--model must be transformer (default), text-encoder or vae, found '" + model + "'");
  double load = 0.0;
  if (model == "text-encoder") {
    for (const std::string& flag : known)
      if (args.has(flag) && !kCommonFlags.count(flag) && !kTextEncoderBenchFlags.count(flag) &&
          flag != "--model")
        throw Error(flag + " does not apply to --model text-encoder");
    if (getloadavg(&load, 1) != 1) load = 0.0;
    Progress progress(!args.has("--quiet") && stderr_is_terminal());
    return bench_text_encoder(args, progress, load);
  }
  if (model == "vae") {
    for (const std::string& flag : known)
      if (args.has(flag) && !kCommonFlags.count(flag) && !kVaeBenchFlags.count(flag) && flag != "--model")
        throw Error(flag + " does not apply to --model vae");
    if (getloadavg(&load, 1) != 1) load = 0.0;
    Progress progress(!args.has("--quiet") && stderr_is_terminal());
    return bench_vae(args, progress, load);
  }
  for (const char* flag : {"--height", "--width", "--vae-config"})
    if (args.has(flag)) throw Error(std::string(flag) + " needs --model vae");
  for (const char* flag : {"--tokens", "--text-config"})
    if (args.has(flag)) throw Error(std::string(flag) + " needs --model text-encoder");
  const std::string only = args.get("--only", "forward");
  if (only != "forward" && only != "attention")
    throw Error("--only must be 'attention' (or 'forward', the default), found '" + only + "'");
  const bool attention_mode = only == "attention";
  for (const std::string& flag : attention_mode ? kForwardFlags : kAttentionFlags)
    if (args.has(flag))
      throw Error(flag +
                  (attention_mode ? " does not apply to --only attention" : " needs --only attention"));
  // Read before any work of ours; other processes on the cores skew both the timings and the measured peak.
  if (getloadavg(&load, 1) != 1) load = 0.0;
  Progress progress(!args.has("--quiet") && stderr_is_terminal());
  return attention_mode ? bench_attention(args, progress, load) : bench_forward(args, progress, load);
}

}  // namespace krea2::cli
