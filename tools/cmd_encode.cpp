// krea2 encode: prompt text -> prompt_embeds / prompt_embeds_mask (and the negative prompt's), exactly as
// diffusers' Krea2Pipeline.encode_prompt, written for `krea2 generate --prompt-embeds`.
#include <cstdio>
#include <map>

#include "args.h"
#include "commands.h"
#include "cpu_info.h"
#include "io/safetensors.h"
#include "text_options.h"

namespace krea2::cli {

namespace {

const char* kHelp =
    R"(Usage: krea2 encode --text-encoder PATH --prompt S [--negative-prompt S] --output embeds.safetensors
                    [options]

Encodes prompts with the Krea 2 template (system prefix, suffix, max_sequence_length padding / truncation), runs
the Qwen3-VL text tower up to the deepest tap, stacks the tapped hidden states and drops the 34 template rows.
Writes prompt_embeds (B, L, taps, hidden) and prompt_embeds_mask (B, L) (1 = valid token), plus
negative_prompt_embeds / negative_prompt_embeds_mask when --negative-prompt is given: the file `krea2 generate
--prompt-embeds FILE --negative-embeds FILE` reads. A prompt longer than the limit is truncated (said on stderr).

Options:
)";

}  // namespace

int cmd_encode(int argc, char** argv) {
  std::set<std::string> known = {"--output", "--threads", "--isa"};
  std::set<std::string> switches = {"--quiet", "--help"};
  known.insert(kTextValueFlags.begin(), kTextValueFlags.end());
  switches.insert(kTextSwitches.begin(), kTextSwitches.end());
  Args args(argc, argv, known, switches);
  if (args.has("--help")) {
    std::fputs((kHelp + text_help() +
                R"(  --output FILE           the safetensors file to write (FILE.tmp, then renamed)
  --threads N             OpenMP threads (default: all cores)
  --isa LEVEL             avx2 | avx512 (default: the best the CPU has)
  --quiet                 no progress or summary on stderr
)")
                   .c_str(),
               stdout);
    return 0;
  }
  if (!args.positional().empty())
    throw Error("unexpected argument '" + args.positional()[0] + "' (see --help)");
  if (args.has("--threads")) set_threads(args.get_int("--threads", 0));
  apply_isa_option(args);
  const std::string output = args.require("--output");
  const bool quiet = args.has("--quiet");
  const EncodedPrompts e =
      encode_prompts(args, /*with_negative=*/false, !quiet && stderr_is_terminal(), quiet);
  std::map<std::string, Tensor> out;
  out["prompt_embeds"] = e.prompt.embeds;
  out["prompt_embeds_mask"] = *e.prompt.mask;
  if (e.negative) {
    out["negative_prompt_embeds"] = e.negative->embeds;
    out["negative_prompt_embeds_mask"] = *e.negative->mask;
  }
  write_safetensors(output, out, {{"format", "pt"}, {"taps", e.taps}});
  if (!quiet)
    std::fprintf(stderr, "wrote %s (prompt_embeds %s) in %.3f s\n", output.c_str(),
                 shape_str(e.prompt.embeds.shape).c_str(), e.seconds);
  return 0;
}

}  // namespace krea2::cli
