#include "support/tokenizer_util.h"

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "support/test_util.h"

namespace krea2::test {

namespace {

using json = nlohmann::json;

json read_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  return json::parse(in);
}

// GPT-2 bytes_to_unicode, written out independently of the library's table.
std::string byte_char(int b) {
  static const std::vector<std::string> table = [] {
    std::vector<int> cps(256, -1);
    int next = 256;
    for (int i = 0; i < 256; ++i) {
      const bool printable = (i >= 33 && i <= 126) || (i >= 161 && i <= 172) || (i >= 174 && i <= 255);
      cps[size_t(i)] = printable ? i : next++;
    }
    std::vector<std::string> t;
    for (int cp : cps) {
      std::string s;
      if (cp < 0x80) {
        s += char(cp);
      } else {
        s += char(0xC0 | (cp >> 6));
        s += char(0x80 | (cp & 0x3F));
      }
      t.push_back(s);
    }
    return t;
  }();
  return table[size_t(b)];
}

}  // namespace

std::string tokenizer_fixture_dir() {
  return fixture_dir("text/tokenizer");
}

const json& tokenizer_cases() {
  static const json cases = read_json_file(tokenizer_fixture_dir() + "/cases.json").at("cases");
  return cases;
}

const Tokenizer& fixture_tokenizer() {
  static const Tokenizer tok = Tokenizer::load(tokenizer_fixture_dir());
  return tok;
}

std::vector<std::pair<std::string, std::string>> fixture_merges() {
  std::ifstream in(tokenizer_fixture_dir() + "/merges.txt", std::ios::binary);
  std::vector<std::pair<std::string, std::string>> out;
  std::string line;
  bool first = true;
  while (std::getline(in, line)) {
    if (first && line.rfind("#version", 0) == 0) {
      first = false;
      continue;
    }
    first = false;
    if (line.empty()) continue;
    const size_t sp = line.find(' ');
    out.emplace_back(line.substr(0, sp), line.substr(sp + 1));
  }
  return out;
}

json tokenizer_json_from_fixture(bool pair_merges) {
  const json vocab = read_json_file(tokenizer_fixture_dir() + "/vocab.json");
  const json config = read_json_file(tokenizer_fixture_dir() + "/tokenizer_config.json");
  json merges = json::array();
  for (const auto& [a, b] : fixture_merges()) {
    if (pair_merges)
      merges.push_back(json::array({a, b}));
    else
      merges.push_back(a + " " + b);
  }
  json added = json::array();
  for (const auto& [id, t] : config.at("added_tokens_decoder").items())
    added.push_back({{"id", std::stoi(id)},
                     {"content", t.at("content")},
                     {"single_word", t.at("single_word")},
                     {"lstrip", t.at("lstrip")},
                     {"rstrip", t.at("rstrip")},
                     {"normalized", t.at("normalized")},
                     {"special", t.at("special")}});
  const char* pattern =
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  const json byte_level = {
      {"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}};
  json j;
  j["version"] = "1.0";
  j["truncation"] = nullptr;
  j["padding"] = nullptr;
  j["added_tokens"] = added;
  j["normalizer"] = {{"type", "NFC"}};
  j["pre_tokenizer"] = {{"type", "Sequence"},
                        {"pretokenizers", json::array({{{"type", "Split"},
                                                        {"pattern", {{"Regex", pattern}}},
                                                        {"behavior", "Isolated"},
                                                        {"invert", false}},
                                                       byte_level})}};
  j["post_processor"] = byte_level;
  j["decoder"] = byte_level;
  j["model"] = {{"type", "BPE"},
                {"dropout", nullptr},
                {"unk_token", nullptr},
                {"continuing_subword_prefix", ""},
                {"end_of_word_suffix", ""},
                {"fuse_unk", false},
                {"byte_fallback", false},
                {"ignore_merges", false},
                {"vocab", vocab},
                {"merges", merges}};
  return j;
}

json tiny_tokenizer_json(const std::vector<std::string>& extra, const std::vector<std::string>& merges,
                         const json& added) {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[byte_char(b)] = b;
  for (size_t i = 0; i < extra.size(); ++i) vocab[extra[i]] = 256 + int(i);
  json j;
  j["added_tokens"] = added;
  j["normalizer"] = {{"type", "NFC"}};
  j["pre_tokenizer"] = {
      {"type", "Sequence"},
      {"pretokenizers",
       json::array({{{"type", "Split"},
                     {"pattern", {{"Regex", R"( ?\p{L}+|\p{N}|\s+|[^\s\p{L}\p{N}]+)"}}},
                     {"behavior", "Isolated"},
                     {"invert", false}},
                    {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}})}};
  j["model"] = {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}};
  return j;
}

}  // namespace krea2::test
