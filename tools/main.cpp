// krea2: command-line entry point. Dispatches to the subcommands in tools/cmd_*.cpp.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "commands.h"
#include "cpu_info.h"
#include "krea2/error.h"

namespace {

const char* kUsage = R"(krea2 - C++ inference engine for the Krea 2 text-to-image transformer

Usage: krea2 <command> [options]        (krea2 <command> --help for details)
       krea2 --version                  the build, the CPU features found and the kernels chosen

Commands:
  generate   denoise latents from a prompt (with --text-encoder) or prompt embeddings (the main job):
             flow-matching Euler, CFG, turbo
  encode     prompt text -> prompt embeddings (Qwen3-VL text encoder, the Krea 2 template)
  decode     latents -> PNG (Qwen-Image / Wan 2.1 VAE decoder)
  forward    run one transformer forward on an inputs.safetensors, write the velocity
  inspect    print a checkpoint's config, parameter count, bytes per dtype and tensor table; or an
             adapter's format, rank, alpha and targets (--lora FILE)
  quantize   write a model as GGUF (Q8_0, Q4_K_M, ...) or ComfyUI fp8 / int8-convrot safetensors
  tokenize   print the token ids of a text (Qwen2 byte-level BPE, as HF tokenizer(text).input_ids)
  bench      time the forward (or attention alone) with random weights; GFLOP/s and % of FMA peak

A model is a diffusers folder (DIR/transformer/ or DIR with config.json and safetensors, sharded or not), a
single .safetensors file (diffusers or original Krea names; F32 / BF16 / F16, ComfyUI scaled fp8, ComfyUI
int8_tensorwise + convrot), or a GGUF file (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K..Q6_K).
Exit status: 0 on success, 1 on any error (the message names the file, tensor or option), 2 on bad usage.
The kernels use the best instruction set level the CPU has (avx512 or the avx2 floor); KREA2_ISA=avx2 or
--isa avx2 (forward, generate, bench) lowers it.
)";

int print_version() {
  std::printf("krea2 (C++20, compiler " __VERSION__
              "; built for the x86-64 AVX2 + FMA + F16C floor, AVX-512 kernels chosen at run time)\n%s",
              krea2::cli::cpu_report("").c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") ||
      !std::strcmp(argv[1], "help")) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  std::string command = argv[1];
  try {
    krea2::cli::check_isa_environment();
    if (command == "--version") return print_version();
    if (command == "forward") return krea2::cli::cmd_forward(argc - 2, argv + 2);
    if (command == "inspect") return krea2::cli::cmd_inspect(argc - 2, argv + 2);
    if (command == "generate") return krea2::cli::cmd_generate(argc - 2, argv + 2);
    if (command == "bench") return krea2::cli::cmd_bench(argc - 2, argv + 2);
    if (command == "quantize") return krea2::cli::cmd_quantize(argc - 2, argv + 2);
    if (command == "encode") return krea2::cli::cmd_encode(argc - 2, argv + 2);
    if (command == "decode") return krea2::cli::cmd_decode(argc - 2, argv + 2);
    if (command == "tokenize") return krea2::cli::cmd_tokenize(argc - 2, argv + 2);
    std::fprintf(stderr, "krea2: unknown command '%s'\n\n%s", command.c_str(), kUsage);
    return 2;
  } catch (const krea2::Error& e) {
    std::fprintf(stderr, "krea2 %s: error: %s\n", command.c_str(), e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "krea2 %s: error: out of memory\n", command.c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "krea2 %s: error: %s\n", command.c_str(), e.what());
    return 1;
  }
}
