// krea2 generate: the diffusers Krea2Pipeline denoising loop (flow-matching Euler, Krea guidance, turbo) from
// prompt embeddings to latents, written with the schedule to a safetensors file.
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "args.h"
#include "commands.h"
#include "cpu_info.h"
#include "image_output.h"
#include "io/safetensors.h"
#include "krea2/model.h"
#include "krea2/sampler.h"
#include "krea2/vae.h"
#include "lora_options.h"
#include "text_options.h"

namespace krea2::cli {

namespace {

const char* kHelp =
    R"(Usage: krea2 generate --model DIR (--prompt-embeds FILE | --prompt S --text-encoder PATH)
                      --output OUT.safetensors
                      (--height H --width W | --latent-height h --latent-width w | --noise FILE) [options]

Denoises latents exactly as the diffusers Krea2Pipeline loop does: FlowMatchEulerDiscreteScheduler with Krea 2's
config (sigmas linspace(1, 1/steps, steps), exponential time shift, mu from the image token count, or 1.15 with
--turbo), Euler steps, and with --guidance G > 0 the velocity v_cond + G * (v_cond - v_uncond). The text path
(text fusion + txt_in) runs once per prompt and is reused at every step.

Inputs:
  --model DIR             diffusers folder (DIR/transformer or DIR with config.json + safetensors) or a single
                          .safetensors file with original Krea names
  --vae PATH              Qwen-Image / Wan 2.1 VAE (diffusers vae/ folder or a single file) for a .png --output
  --prompt-embeds FILE    prompt_embeds (B, L, num_text_layers, text_hidden_dim), optional prompt_embeds_mask (B, L)
                          (as `krea2 encode` writes them); or --prompt S with --text-encoder (below)
  --negative-embeds FILE  negative prompt for guidance: negative_prompt_embeds / negative_prompt_embeds_mask when the
                          file has them, else prompt_embeds / prompt_embeds_mask (its L may differ from the prompt's)
  --height H --width W    image size in pixels, multiples of 16 (latent = pixels / 8)
  --latent-height h --latent-width w
                          latent size instead, multiples of 2
  --noise FILE            initial latents: tensor `noise` (B, in_channels/4, h, w); sets the size (default: seeded
                          Gaussian noise)
  --seed S                seed of our Gaussian generator (xoshiro256** + Box-Muller; not torch's), default 0

Sampling:
  --steps N               denoising steps (default 28, with --turbo 8)
  --guidance G            guidance scale in Krea's convention, 0 = off (default 0); needs --negative-embeds
  --turbo                 distilled model schedule: mu = 1.15 whatever the resolution
  --mu MU                 use this mu instead
  --sigmas LIST           custom sigmas before the shift, e.g. "1,0.8,0.6,0.4" (sets the step count)
  --shift KIND            time shift: exponential (Krea 2, default), linear, or none
  --batch-cfg on|off      run the cond and uncond passes of a step as one batch (default on) or as two

Output (--output FILE, written to FILE.tmp then renamed): FILE.png decodes with --vae (or the root's vae/) into
  8-bit RGB PNGs (a batch: FILE-0.png, FILE-1.png, ...) with prompt, seed, steps, guidance and the model files in
  text chunks; FILE.safetensors holds
  latents (B, N, in_channels) packed, latents_unpacked (B, in_channels/4, h, w), sigmas (steps + 1),
  timesteps (steps), position_ids (L + N, 3); with --save-steps also latents_step_i after each step.

Other:
  --keep-padding          keep padded text tokens in the sequence (masked) instead of dropping them (same result)
  --threads N             OpenMP threads (default: all cores)
  --compute MODE          matrix products in f32 (default; exact), bf16 (bf16 inputs, f32 sums) or int8 (int8
                          weights with row scales x per-row int8 activations, int32 sums)
  --isa LEVEL             highest instruction set level of the kernels: avx2 | avx512 (default: the best the
                          CPU has; KREA2_ISA does the same, this option wins)
  --quiet                 no progress or summary on stderr (progress is shown only on a terminal)
)";

std::string help() {
  return kHelp +
         std::string(
             "\nPrompt text (instead of --prompt-embeds; the encoder is freed before the transformer "
             "loads):\n") +
         text_help() + "\nAdapters:\n" + lora_help(26);
}

Tensor require_tensor(const SafetensorsFile& f, const std::string& name) {
  const TensorView* v = f.find(name);
  if (!v) throw Error(f.path() + ": missing tensor '" + name + "'");
  return to_float_tensor(*v);
}

std::optional<Tensor> optional_tensor(const SafetensorsFile& f, const std::string& name) {
  if (!f.find(name)) return std::nullopt;
  return require_tensor(f, name);
}

TextEmbeddings load_prompt(const std::string& path) {
  SafetensorsFile f(path);
  return {require_tensor(f, "prompt_embeds"), optional_tensor(f, "prompt_embeds_mask")};
}

// A fixture's inputs.safetensors holds both prompts, so the same file serves --prompt-embeds and
// --negative-embeds.
TextEmbeddings load_negative(const std::string& path) {
  SafetensorsFile f(path);
  if (f.find("negative_prompt_embeds")) {
    return {require_tensor(f, "negative_prompt_embeds"), optional_tensor(f, "negative_prompt_embeds_mask")};
  }
  if (!f.find("prompt_embeds")) throw Error(path + ": has neither negative_prompt_embeds nor prompt_embeds");
  return {require_tensor(f, "prompt_embeds"), optional_tensor(f, "prompt_embeds_mask")};
}

// The latent size from --height/--width or --latent-height/--latent-width; nullopt when neither is given.
std::optional<LatentSize> requested_size(const Args& args) {
  const bool pixels = args.has("--height") || args.has("--width");
  const bool latent = args.has("--latent-height") || args.has("--latent-width");
  if (pixels && latent)
    throw Error("give either --height/--width or --latent-height/--latent-width, not both");
  if (pixels) {
    args.require("--height");
    args.require("--width");
    return latent_size_from_pixels(args.get_int("--height", 0), args.get_int("--width", 0));
  }
  if (latent) {
    args.require("--latent-height");
    args.require("--latent-width");
    LatentSize s{args.get_int("--latent-height", 0), args.get_int("--latent-width", 0)};
    check_latent_size(s);
    return s;
  }
  return std::nullopt;
}

Tensor initial_noise(const Args& args, const Model& model, int64_t batch) {
  const std::optional<LatentSize> size = requested_size(args);
  const int64_t channels = model.config().in_channels / 4;
  if (args.has("--noise")) {
    if (args.has("--seed")) throw Error("--seed and --noise exclude each other");
    const std::string path = args.get("--noise");
    Tensor noise = require_tensor(SafetensorsFile(path), "noise");
    if (noise.shape.size() != 4 || noise.dim(0) != batch || noise.dim(1) != channels) {
      throw Error(path + ": noise must be (" + std::to_string(batch) + ", " + std::to_string(channels) +
                  ", h, w) for this prompt batch and model, got " + shape_str(noise.shape));
    }
    if (size && (size->height != noise.dim(2) || size->width != noise.dim(3))) {
      throw Error("the requested latent size " + std::to_string(size->height) + "x" +
                  std::to_string(size->width) + " differs from the noise's " + std::to_string(noise.dim(2)) +
                  "x" + std::to_string(noise.dim(3)));
    }
    return noise;
  }
  if (!size) throw Error("give --height/--width (pixels), --latent-height/--latent-width, or --noise FILE");
  const long long seed = args.get_int("--seed", 0);
  if (seed < 0) throw Error("--seed must be non-negative");
  return gaussian_noise({batch, channels, size->height, size->width}, static_cast<uint64_t>(seed));
}

ScheduleOptions schedule_options(const Args& args) {
  ScheduleOptions o;
  o.turbo = args.has("--turbo");
  if (args.has("--sigmas")) {
    o.custom_sigmas = parse_sigmas(args.get("--sigmas"));
    if (args.has("--steps") && args.get_int("--steps", 0) != static_cast<long long>(o.custom_sigmas.size())) {
      throw Error("--steps " + args.get("--steps") + " disagrees with --sigmas (" +
                  std::to_string(o.custom_sigmas.size()) + " values)");
    }
  }
  const long long steps = args.get_int("--steps", o.turbo ? 8 : 28);
  if (steps < 1 || steps > 10000)
    throw Error("--steps must be between 1 and 10000, got " + std::to_string(steps));
  o.steps = static_cast<int>(steps);
  if (args.has("--mu")) o.mu = args.get_double("--mu", 0);
  const std::string shift = args.get("--shift", "exponential");
  if (shift == "exponential") {
    o.shift = TimeShift::kExponential;
  } else if (shift == "linear") {
    o.shift = TimeShift::kLinear;
  } else if (shift == "none") {
    o.shift = TimeShift::kNone;
  } else {
    throw Error("--shift must be exponential, linear or none, got '" + shift + "'");
  }
  return o;
}

// A double with 17 significant digits (it reads back exactly), for the metadata.
std::string exact(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

// "step 3/28 [######..........] 0.52 s/step  ETA 13.0s" on one rewritten stderr line.
void print_progress(const StepInfo& s, double total_seconds) {
  const int width = 24, done = s.step + 1, filled = done * width / s.steps;
  std::string bar(size_t(filled), '#');
  bar.append(size_t(width - filled), '.');
  const double per_step = total_seconds / done;
  std::fprintf(stderr, "\rstep %d/%d [%s] %.3f s/step  ETA %.1fs   ", done, s.steps, bar.c_str(), per_step,
               per_step * (s.steps - done));
  if (done == s.steps) std::fputc('\n', stderr);
  std::fflush(stderr);
}

}  // namespace

int cmd_generate(int argc, char** argv) {
  std::set<std::string> known = {"--model",   "--prompt-embeds", "--negative-embeds", "--height",
                                 "--width",   "--latent-height", "--latent-width",    "--noise",
                                 "--seed",    "--steps",         "--guidance",        "--mu",
                                 "--sigmas",  "--shift",         "--batch-cfg",       "--output",
                                 "--threads", "--isa",           "--compute"};
  std::set<std::string> switches = {"--turbo", "--quiet", "--save-steps", "--keep-padding", "--help"};
  known.insert(kLoraValueFlags.begin(), kLoraValueFlags.end());
  switches.insert(kLoraSwitches.begin(), kLoraSwitches.end());
  known.insert(kTextValueFlags.begin(), kTextValueFlags.end());
  switches.insert(kTextSwitches.begin(), kTextSwitches.end());
  known.insert("--vae");
  Args args(argc, argv, known, switches);
  if (args.has("--help")) {
    std::fputs(help().c_str(), stdout);
    return 0;
  }
  if (!args.positional().empty())
    throw Error("unexpected argument '" + args.positional()[0] + "' (see --help)");
  if (args.has("--threads")) set_threads(args.get_int("--threads", 0));
  apply_isa_option(args);
  const std::string model_path = args.require("--model");
  const std::string output_path = args.require("--output");
  const bool quiet = args.has("--quiet");
  const bool show_progress = !quiet && stderr_is_terminal();
  // A diffusers pipeline root as --model also names the text encoder (and its tokenizer) and the VAE.
  namespace fs = std::filesystem;
  const fs::path root(model_path);
  const bool is_root = fs::is_regular_file(root / "model_index.json");
  const std::string default_encoder = is_root && fs::is_directory(root / "text_encoder") ? model_path : "";
  const bool png_out = output_path.size() >= 4 && output_path.compare(output_path.size() - 4, 4, ".png") == 0;
  const std::string vae_path =
      args.get("--vae", is_root && fs::is_directory(root / "vae") ? (root / "vae").string() : "");
  if (png_out) {
    if (vae_path.empty())
      throw Error("a .png output needs --vae PATH (or a pipeline root with vae/ as --model)");
    check_image_output(output_path);
  } else if (args.has("--vae")) {
    throw Error(
        "--vae needs a .png --output (a .safetensors output holds the latents; decode them with krea2 "
        "decode)");
  }

  // Everything cheap is validated before the model loads.
  GenerateOptions options;
  options.schedule = schedule_options(args);
  options.guidance = args.get_double("--guidance", 0.0);
  if (!(options.guidance >= 0.0)) throw Error("--guidance must be >= 0");
  const std::string batch_cfg = args.get("--batch-cfg", "on");
  if (batch_cfg != "on" && batch_cfg != "off")
    throw Error("--batch-cfg must be on or off, got '" + batch_cfg + "'");
  options.cfg_mode = batch_cfg == "on" ? CfgMode::kBatched : CfgMode::kTwoPass;
  options.keep_step_latents = args.has("--save-steps");
  options.forward.skip_padded_text = !args.has("--keep-padding");
  const bool from_text = args.has("--prompt");
  if (from_text && args.has("--prompt-embeds")) throw Error("give --prompt or --prompt-embeds, not both");
  if (!from_text && !args.has("--prompt-embeds"))
    throw Error("missing --prompt-embeds (or --prompt with --text-encoder)");
  if (!from_text && args.has("--text-encoder")) throw Error("--text-encoder needs --prompt");
  if (from_text && !args.has("--text-encoder") && default_encoder.empty())
    throw Error("--prompt needs --text-encoder PATH (or a pipeline root with text_encoder/ as --model)");
  if (from_text && args.has("--negative-embeds") && args.has("--negative-prompt"))
    throw Error("give --negative-prompt or --negative-embeds, not both");
  TextEmbeddings prompt;
  std::optional<TextEmbeddings> negative;
  std::string taps;
  if (from_text) {
    // Encoded first, and the encoder freed, so peak memory is the larger model's, not the sum.
    const bool need_negative = options.guidance > 0 && !args.has("--negative-embeds");
    EncodedPrompts e = encode_prompts(args, need_negative, show_progress, quiet, default_encoder);
    prompt = std::move(e.prompt);
    negative = std::move(e.negative);
    taps = e.taps;
    if (!quiet)
      std::fprintf(stderr, "encoded %zu prompt(s) in %.3f s\n", args.all("--prompt").size(), e.seconds);
  } else {
    prompt = load_prompt(args.require("--prompt-embeds"));
  }
  if (options.guidance > 0 && !negative) {
    if (!args.has("--negative-embeds")) throw Error("--guidance > 0 needs --negative-embeds");
    negative = load_negative(args.get("--negative-embeds"));
  } else if (options.guidance == 0 && (args.has("--negative-embeds") || args.has("--negative-prompt")) &&
             !quiet) {
    std::fprintf(stderr, "warning: the negative prompt is unused without --guidance > 0\n");
    negative.reset();
  }
  if (prompt.embeds.shape.size() != 4) {
    throw Error("prompt_embeds must be (B, L, layers, dim), got " + shape_str(prompt.embeds.shape));
  }

  double step_total = 0;
  // The transformer lives only in this scope: its weights are unmapped before the VAE loads.
  const GenerateResult result = [&] {
    if (show_progress) std::fprintf(stderr, "loading %s\n", model_path.c_str());
    std::vector<std::string> warnings;
    LoadOptions load;
    load.compute = compute_option(args);
    load.warnings = &warnings;
    const Model loaded = Model::load(model_path, load);
    for (const auto& w : warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
    const LoraSetup lora = apply_lora_options(args, loaded);
    const Model& model = lora.model;
    options.forward.lora_scale = lora.forward_scale;
    const Tensor noise = initial_noise(args, model, prompt.embeds.dim(0));
    options.on_step = [&](const StepInfo& s) {
      step_total += s.seconds;
      if (show_progress) print_progress(s, step_total);
    };
    return generate(model, prompt, negative ? &*negative : nullptr, noise, options);
  }();

  std::map<std::string, Tensor> out;
  out["latents"] = result.latents;
  out["latents_unpacked"] = result.latents_unpacked;
  const Schedule& s = result.schedule;
  out["sigmas"] = Tensor({int64_t(s.sigmas.size())}, s.sigmas);
  out["timesteps"] = Tensor({int64_t(s.timesteps.size())}, s.timesteps);
  out["position_ids"] = result.position_ids;
  for (size_t i = 0; i < result.step_latents.size(); ++i) {
    out["latents_step_" + std::to_string(i)] = result.step_latents[i];
  }
  std::map<std::string, std::string> metadata = {{"format", "pt"},
                                                 {"steps", std::to_string(s.steps())},
                                                 {"mu", exact(s.mu)},
                                                 {"guidance", exact(options.guidance)},
                                                 {"turbo", options.schedule.turbo ? "1" : "0"}};
  if (!args.has("--noise")) metadata["seed"] = std::to_string(args.get_int("--seed", 0));
  if (from_text) {
    const std::vector<std::string> prompts = args.all("--prompt");
    metadata["prompt"] = prompts[0];
    for (size_t i = 1; i < prompts.size(); ++i) metadata["prompt_" + std::to_string(i)] = prompts[i];
    if (negative) metadata["negative_prompt"] = args.get("--negative-prompt", "");
    metadata["text_encoder"] = args.get("--text-encoder", default_encoder);
    metadata["taps"] = taps;
  }
  metadata["model"] = model_path;
  for (const auto& l : args.all("--lora")) metadata["lora"] += (metadata["lora"].empty() ? "" : ", ") + l;
  if (metadata["lora"].empty()) metadata.erase("lora");
  if (png_out) {
    Progress progress(show_progress);
    progress.message("loading VAE " + vae_path);
    const Vae vae = Vae::load(vae_path);
    const double start = progress.seconds();
    const Tensor image = decode_latents(vae, result.latents_unpacked, progress);
    const double decode_s = progress.seconds() - start;
    std::vector<std::pair<std::string, std::string>> text;
    for (const auto& [k, v] : metadata)
      if (k != "format") text.emplace_back(k, v);
    text.emplace_back("vae", vae_path);
    text.emplace_back("size", std::to_string(image.dim(3)) + "x" + std::to_string(image.dim(2)));
    text.emplace_back("software", "krea2");
    const std::vector<std::string> written = write_image_output(output_path, image, text);
    if (!quiet)
      std::fprintf(stderr, "wrote %s%s (%lld x %lld): %d steps, %.3f s/step, text %.3fs, decode %.3fs\n",
                   written[0].c_str(),
                   written.size() > 1 ? (" and " + std::to_string(written.size() - 1) + " more").c_str() : "",
                   (long long)image.dim(3), (long long)image.dim(2), s.steps(),
                   s.steps() ? step_total / s.steps() : 0.0, result.text_seconds, decode_s);
    return 0;
  }
  write_safetensors(output_path, out, metadata);
  if (!quiet) {
    std::fprintf(stderr, "wrote %s (latents %s): %d steps, %.3f s/step, text %.3fs\n", output_path.c_str(),
                 shape_str(result.latents_unpacked.shape).c_str(), s.steps(),
                 s.steps() ? step_total / s.steps() : 0.0, result.text_seconds);
  }
  return 0;
}

}  // namespace krea2::cli
