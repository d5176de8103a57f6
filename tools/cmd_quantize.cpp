// krea2 quantize: any checkpoint krea2 reads -> GGUF (ggml block types) or ComfyUI fp8 / int8 safetensors.
#include <cstdio>

#include "args.h"
#include "commands.h"
#include "krea2/model.h"
#include "krea2/quantize.h"
#include "progress.h"

namespace krea2::cli {

namespace {

const char* kHelp = R"(Usage: krea2 quantize --model IN --type TYPE --output OUT [--group G] [--quiet]

Reads IN (anything krea2 loads: diffusers folder, safetensors, ComfyUI fp8 / int8, GGUF), dequantizes each
weight and writes OUT, one tensor at a time (the model is never held in memory as float32), to OUT.tmp first
and renamed when complete.

TYPE (GGUF output; original Krea names, ggml dim order, general.architecture = krea2, config as krea2.*):
  F32 F16 BF16 Q8_0 Q6_K Q5_K_M Q5_K_S Q4_K_M Q4_K_S Q4_0 Q4_1 Q5_0 Q5_1 Q3_K_M Q3_K_S
  1-D tensors (norm scales, biases, modulation tables) and the projector stay F32. _M mixes store attn.wv and
  mlp.down as Q6_K (Q5_K for Q3_K_M, attn.wo Q4_K), every K type stores last.linear as Q6_K, and a weight
  whose rows do not divide the block (e.g. first, 64 wide, under a 256-block K type) falls back to Q8_0, or
  F16 when rows are not a multiple of 32 either.
TYPE fp8: ComfyUI scaled fp8 safetensors (F8_E4M3 weights with .weight_scale and .comfy_quant; first stays BF16).
TYPE int8-convrot: ComfyUI int8_tensorwise + convrot safetensors (I8 weights, per-row .weight_scale, rotation
  group --group G, default 16; weights whose rows G does not divide stay BF16).
The safetensors outputs carry the config in their __metadata__ ("config").
)";

}  // namespace

int cmd_quantize(int argc, char** argv) {
  Args args(argc, argv, {"--model", "--type", "--output", "--group"}, {"--quiet", "--help"});
  if (args.has("--help")) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  const std::string in = args.get("--model"), type = args.get("--type"), out = args.get("--output");
  if (in.empty() || type.empty() || out.empty())
    throw Error("krea2 quantize needs --model, --type and --output (see krea2 quantize --help)");
  QuantizeOptions options;
  options.recipe = quant_recipe(type).name;  // fails early on a bad TYPE
  options.rotation_group = args.get_int("--group", 16);
  Progress progress(!args.has("--quiet") && stderr_is_terminal());
  progress.message("loading " + in);
  Model model = Model::load(in);
  options.progress = [&](int64_t done, int64_t total, const std::string&) {
    progress.update("quantize", int(done), int(total));
  };
  quantize_model(model, out, options);
  progress.finish();
  if (!args.has("--quiet"))
    std::fprintf(stderr, "wrote %s (%s) in %.1f s\n", out.c_str(), options.recipe.c_str(),
                 progress.seconds());
  return 0;
}

}  // namespace krea2::cli
