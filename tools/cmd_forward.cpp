// krea2 forward: one transformer forward on an inputs.safetensors, velocity written to a safetensors file.
#include <cstdio>
#include <map>
#include <set>

#include "args.h"
#include "commands.h"
#include "cpu_info.h"
#include "io/safetensors.h"
#include "krea2/model.h"
#include "lora_options.h"
#include "progress.h"

namespace krea2::cli {

namespace {

const char* kHelp =
    R"(Usage: krea2 forward --model DIR --inputs IN.safetensors --output OUT.safetensors [options]

Runs one Krea2Transformer2DModel forward, exactly as diffusers computes it, and writes the velocity.

Inputs (tensor names as diffusers' forward arguments):
  hidden_states          (B, N, in_channels)                           F32/F16/BF16
  encoder_hidden_states  (B, L, num_text_layers, text_hidden_dim)      F32/F16/BF16
  timestep               (B,)  flow time in [0, 1]
  position_ids           (L + N, 3)  F32 or I64
  encoder_attention_mask (B, L)  BOOL, optional (absent: every text token valid)
Output: sample (B, N, in_channels) F32.

Options:
  --model DIR       diffusers folder (DIR/transformer or DIR with config.json + safetensors) or a single
                    .safetensors file with original Krea names
  --inputs FILE     input tensors as above
  --output FILE     where to write `sample` (written to FILE.tmp, then renamed)
  --trace           also write per-stage outputs (time_embed, txt_in, transformer_blocks.i, ...) next to sample;
                    keeps padded text rows in the sequence so every row is traced
  --keep-padding    keep padded text tokens in the sequence (masked) instead of dropping them (same result)
  --threads N       OpenMP threads (default: all cores)
  --compute MODE    matrix products in f32 (default; exact), bf16 (bf16 inputs, f32 sums) or int8 (int8
                    weights with row scales x per-row int8 activations, int32 sums)
  --isa LEVEL       highest instruction set level of the kernels: avx2 | avx512 (default: the best the
                    CPU has; KREA2_ISA does the same, this option wins)
  --quiet           no progress output
)";

std::string help() {
  return kHelp + std::string("\nAdapters:\n") + lora_help(20);
}

Tensor require_tensor(const SafetensorsFile& f, const std::string& name) {
  const TensorView* v = f.find(name);
  if (!v) throw Error(f.path() + ": missing input tensor '" + name + "'");
  return to_float_tensor(*v);
}

}  // namespace

int cmd_forward(int argc, char** argv) {
  std::set<std::string> known = {"--model", "--inputs", "--output", "--threads", "--isa", "--compute"};
  std::set<std::string> switches = {"--quiet", "--trace", "--keep-padding", "--help"};
  known.insert(kLoraValueFlags.begin(), kLoraValueFlags.end());
  switches.insert(kLoraSwitches.begin(), kLoraSwitches.end());
  Args args(argc, argv, known, switches);
  if (args.has("--help")) {
    std::fputs(help().c_str(), stdout);
    return 0;
  }
  if (args.has("--threads")) set_threads(args.get_int("--threads", 0));
  apply_isa_option(args);
  const std::string model_path = args.require("--model");
  const std::string inputs_path = args.require("--inputs");
  const std::string output_path = args.require("--output");
  Progress progress(!args.has("--quiet") && stderr_is_terminal());

  progress.message("loading " + model_path);
  std::vector<std::string> warnings;
  LoadOptions load;
  load.compute = compute_option(args);
  load.warnings = &warnings;
  const Model loaded = Model::load(model_path, load);
  for (const auto& w : warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
  const LoraSetup lora = apply_lora_options(args, loaded);
  const Model& model = lora.model;

  SafetensorsFile inputs_file(inputs_path);
  ForwardInputs in;
  in.hidden_states = require_tensor(inputs_file, "hidden_states");
  in.encoder_hidden_states = require_tensor(inputs_file, "encoder_hidden_states");
  in.timestep = require_tensor(inputs_file, "timestep");
  in.position_ids = require_tensor(inputs_file, "position_ids");
  if (inputs_file.find("encoder_attention_mask"))
    in.encoder_attention_mask = require_tensor(inputs_file, "encoder_attention_mask");

  std::map<std::string, Tensor> trace;
  ForwardOptions options;
  options.skip_padded_text = !args.has("--keep-padding") && !args.has("--trace");
  options.lora_scale = lora.forward_scale;
  if (args.has("--trace")) options.trace = &trace;
  options.progress = [&](const std::string& stage, int done, int total) {
    progress.update(stage, done, total);
  };
  Tensor sample = model.forward(in, options);
  progress.finish();

  trace["sample"] = std::move(sample);
  write_safetensors(output_path, trace, {{"format", "pt"}});
  if (!args.has("--quiet"))
    std::fprintf(stderr, "wrote %s (sample %s) in %.2fs\n", output_path.c_str(),
                 shape_str(trace["sample"].shape).c_str(), progress.seconds());
  return 0;
}

}  // namespace krea2::cli
