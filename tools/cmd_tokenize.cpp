// krea2 tokenize: token ids of a text with the Qwen2 byte-level BPE tokenizer, exactly as HF
// `tokenizer(text).input_ids`.
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "args.h"
#include "commands.h"
#include "io/mapped_file.h"
#include "krea2/tokenizer.h"

namespace krea2::cli {

namespace {

const char* kHelp = R"(Usage: krea2 tokenize --tokenizer PATH (--text S | --file F) [--json]

Prints the token ids of the text S (or of the exact bytes of file F), as HF `tokenizer(text).input_ids` gives
them (no BOS/EOS): added tokens such as <|im_start|> typed in the text become their ids, the rest is
NFC-normalised, pre-tokenized by the Qwen2 regex and BPE-merged. Plain output: the ids on one line, separated
by spaces. --json: one object {"ids": [...], "tokens": [...]} with the byte-level piece of each id.

PATH: a tokenizer.json; a vocab.json (merges.txt and tokenizer_config.json beside it); a folder holding either;
a diffusers pipeline root (its tokenizer/ folder); or a GGUF file with tokenizer.ggml.* metadata.
)";

}  // namespace

int cmd_tokenize(int argc, char** argv) {
  Args args(argc, argv, {"--tokenizer", "--text", "--file"}, {"--json", "--help"});
  if (args.has("--help")) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  if (!args.positional().empty())
    throw Error("unexpected argument '" + args.positional()[0] + "' (see krea2 tokenize --help)");
  const std::string path = args.require("--tokenizer");
  if (args.has("--text") == args.has("--file"))
    throw Error("give exactly one of --text and --file (see krea2 tokenize --help)");
  std::string text;
  if (args.has("--text")) {
    text = args.get("--text");
  } else {
    MappedFile f(args.get("--file"));
    if (f.size()) text.assign(reinterpret_cast<const char*>(f.data()), f.size());
  }
  const Tokenizer tok = Tokenizer::load(path);
  const std::vector<int32_t> ids = tok.encode(text);
  if (args.has("--json")) {
    nlohmann::json j;
    j["ids"] = ids;
    j["tokens"] = nlohmann::json::array();
    for (int32_t id : ids) j["tokens"].push_back(tok.token_text(id));
    std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return 0;
  }
  std::string line;
  for (size_t i = 0; i < ids.size(); ++i) line += (i ? " " : "") + std::to_string(ids[i]);
  std::printf("%s\n", line.c_str());
  return 0;
}

}  // namespace krea2::cli
