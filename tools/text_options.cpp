#include "text_options.h"

#include <cstdio>
#include <filesystem>
#include <sstream>

#include "cpu_info.h"
#include "krea2/error.h"
#include "krea2/pipeline.h"
#include "krea2/text_encoder.h"
#include "krea2/tokenizer.h"
#include "progress.h"

namespace krea2::cli {

namespace fs = std::filesystem;

const std::set<std::string> kTextValueFlags = {
    "--text-encoder",          "--tokenizer",   "--prompt",
    "--negative-prompt",       "--taps",        "--max-sequence-length",
    "--num-images-per-prompt", "--text-compute"};
const std::set<std::string> kTextSwitches = {"--keep-text-padding"};

std::string text_help() {
  return R"(  --text-encoder PATH     Qwen3-VL text encoder: a transformers folder (config.json + safetensors), a
                          diffusers pipeline root (its text_encoder/), a ComfyUI single file or a GGUF
  --tokenizer PATH        tokenizer.json, vocab.json (+ merges.txt), a folder holding them, or a GGUF with
                          tokenizer metadata (default: the pipeline root's tokenizer/, the encoder's folder, or
                          the encoder GGUF itself)
  --prompt S              prompt text (repeatable: a batch)
  --negative-prompt S     negative prompt (default "" when guidance needs one)
  --max-sequence-length N text tokens per prompt after the template, padded / truncated (default 512)
  --taps LIST             hidden states to stack, e.g. 2,5,8 (default: the pipeline's model_index.json
                          text_encoder_select_layers, else 2,5,...,35); 0 = embeddings, num_layers = after the
                          final norm
  --num-images-per-prompt N  rows per prompt (default 1)
  --text-compute MODE     the text encoder's products: f32 (default), bf16 or int8
  --keep-text-padding     run the padded sequence with the mask, as upstream (default: valid tokens only; the
                          valid rows are the same)
)";
}

namespace {

std::vector<int> parse_taps(const std::string& text) {
  std::vector<int> taps;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t used = 0;
    int v = -1;
    try {
      v = std::stoi(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || item.empty() || v < 0)
      throw Error("--taps: '" + item + "' is not a non-negative integer (expected e.g. 2,5,8)");
    taps.push_back(v);
  }
  if (taps.empty()) throw Error("--taps: empty list");
  return taps;
}

}  // namespace

EncodedPrompts encode_prompts(const Args& args, bool with_negative, bool progress, bool quiet,
                              const std::string& default_encoder) {
  const std::vector<std::string> prompts = args.all("--prompt");
  if (prompts.empty()) throw Error("missing --prompt");
  if (!args.has("--text-encoder") && default_encoder.empty()) args.require("--text-encoder");
  const std::string encoder_path = args.get("--text-encoder", default_encoder);
  EncodeOptions options;
  options.max_sequence_length = args.get_int("--max-sequence-length", 512);
  if (options.max_sequence_length < 1 || options.max_sequence_length > 4096)
    throw Error("--max-sequence-length must be in 1..4096, got " + args.get("--max-sequence-length"));
  options.num_images_per_prompt = args.get_int("--num-images-per-prompt", 1);
  if (options.num_images_per_prompt < 1 || options.num_images_per_prompt > 256)
    throw Error("--num-images-per-prompt must be in 1..256, got " + args.get("--num-images-per-prompt"));
  if (args.has("--taps")) options.taps = parse_taps(args.get("--taps"));
  options.skip_padding = !args.has("--keep-text-padding");
  std::vector<std::string> warnings;
  options.warnings = &warnings;

  Progress bar(progress);
  std::string tokenizer_path = args.get("--tokenizer", "");
  if (tokenizer_path.empty()) {
    try {
      tokenizer_path = find_tokenizer(encoder_path);
    } catch (const Error& e) {
      throw Error(std::string(e.what()) + " with --tokenizer PATH");
    }
  }
  const Tokenizer tokenizer = Tokenizer::load(tokenizer_path);
  bar.message("loading text encoder " + encoder_path);
  TextEncoderLoadOptions load;
  load.compute = compute_option(args, "--text-compute");
  std::vector<std::string> load_warnings;
  load.warnings = &load_warnings;
  EncodedPrompts out;
  {
    const TextEncoder encoder = TextEncoder::load(encoder_path, load);
    for (const std::string& w : load_warnings)
      if (!quiet) std::fprintf(stderr, "warning: %s\n", w.c_str());
    const std::vector<int>& taps = options.taps.empty() ? encoder.default_taps() : options.taps;
    for (size_t i = 0; i < taps.size(); ++i) out.taps += (i ? "," : "") + std::to_string(taps[i]);
    options.progress = [&](int done, int total) { bar.update("encode", done, total); };
    const double start = bar.seconds();
    out.prompt = encoder.encode(tokenizer, prompts, options);
    if (with_negative || args.has("--negative-prompt")) {
      const std::vector<std::string> negative(prompts.size(), args.get("--negative-prompt", ""));
      out.negative = encoder.encode(tokenizer, negative, options);
    }
    out.seconds = bar.seconds() - start;
  }  // the encoder's weights are unmapped here, before anything else loads
  bar.finish();
  if (!quiet)
    for (const std::string& w : warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
  return out;
}

}  // namespace krea2::cli
