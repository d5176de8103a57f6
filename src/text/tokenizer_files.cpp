#include "text/tokenizer_files.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "io/gguf.h"
#include "io/mapped_file.h"
#include "krea2/error.h"
#include "text/pretokenize.h"

namespace krea2::text {

namespace {

using nlohmann::json;
namespace fs = std::filesystem;

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw Error(where + ": " + what);
}

// A short rendering of a JSON value for "found ..." in messages.
std::string found(const json& v) {
  std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return std::string(v.type_name()) + " " + s;
}

std::string json_quoted(std::string_view s) {
  std::string q = json(std::string(s)).dump(-1, ' ', false, json::error_handler_t::replace);
  if (q.size() > 80) q = q.substr(0, 76) + "...\"";
  return q;
}

std::string read_whole(const std::string& path) {
  MappedFile f(path);
  if (f.size() > kMaxTokenizerFileBytes)
    fail(path, "file of " + std::to_string(f.size()) + " bytes is larger than the " +
                   std::to_string(kMaxTokenizerFileBytes) + "-byte limit for tokenizer files");
  return f.size() ? std::string(reinterpret_cast<const char*>(f.data()), f.size()) : std::string();
}

json parse_json(std::string_view text, const std::string& source) {
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    fail(source, std::string("invalid JSON: ") + e.what());
  }
}

int64_t token_id(const json& v, const std::string& where) {
  if (!v.is_number_integer()) fail(where, "expected a token id (an integer), found " + found(v));
  const bool in_range = v.is_number_unsigned() ? v.get<uint64_t>() <= uint64_t(kMaxTokenId)
                                               : v.get<int64_t>() >= 0 && v.get<int64_t>() <= kMaxTokenId;
  if (!in_range)
    fail(where,
         "token id " + v.dump() + " is out of range (expected 0.." + std::to_string(kMaxTokenId) + ")");
  return v.get<int64_t>();
}

bool optional_bool(const json& obj, const char* key, bool fallback, const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) fail(where + "." + key, "expected true or false, found " + found(*it));
  return it->get<bool>();
}

// One added-token object (tokenizer.json's added_tokens[i], tokenizer_config.json's
// added_tokens_decoder[id]).
AddedTokenSpec added_token(const json& t, int64_t id, const std::string& where) {
  if (!t.is_object()) fail(where, "expected an object {\"content\": ..., ...}, found " + found(t));
  AddedTokenSpec a;
  a.id = id;
  a.where = where;
  auto c = t.find("content");
  if (c == t.end() || !c->is_string()) fail(where + ".content", "expected the token's text (a string)");
  a.content = c->get<std::string>();
  if (a.content.empty()) fail(where + ".content", "an added token cannot be empty");
  a.special = optional_bool(t, "special", false, where);
  a.normalized = optional_bool(t, "normalized", !a.special, where);
  a.lstrip = optional_bool(t, "lstrip", false, where);
  a.rstrip = optional_bool(t, "rstrip", false, where);
  if (optional_bool(t, "single_word", false, where))
    fail(where + ".single_word", "single_word true is not supported");
  return a;
}

void read_vocab_object(const json& v, const std::string& where, TokenizerData& d) {
  if (!v.is_object()) fail(where, "expected an object of token -> id, found " + found(v));
  d.vocab.reserve(v.size());
  for (auto it = v.begin(); it != v.end(); ++it) {
    const json& id = it.value();
    if (id.is_number_unsigned() && id.get<uint64_t>() <= uint64_t(kMaxTokenId))  // the usual case, no message
      d.vocab.emplace_back(it.key(), id.get<int64_t>());
    else
      d.vocab.emplace_back(it.key(), token_id(id, where + "[" + json_quoted(it.key()) + "]"));
  }
}

// "a b" -> (a, b): exactly one space, both sides non-empty (HF's rule for merges.txt lines and string
// merges).
bool split_merge(std::string_view s, MergeSpec& m) {
  const size_t sp = s.find(' ');
  if (sp == std::string_view::npos || sp == 0 || sp + 1 == s.size()) return false;
  if (s.find(' ', sp + 1) != std::string_view::npos) return false;
  m.left = std::string(s.substr(0, sp));
  m.right = std::string(s.substr(sp + 1));
  return true;
}

void read_normalizer(const json& n, const std::string& where, TokenizerData& d) {
  if (n.is_null()) {
    d.nfc = false;
    return;
  }
  if (!n.is_object()) fail(where, "expected an object or null, found " + found(n));
  auto type = n.find("type");
  const std::string t = type != n.end() && type->is_string() ? type->get<std::string>() : "";
  if (t == "NFC") {
    d.nfc = true;
    return;
  }
  if (t == "Sequence") {
    auto list = n.find("normalizers");
    if (list == n.end() || !list->is_array()) fail(where + ".normalizers", "expected an array");
    d.nfc = false;
    for (size_t i = 0; i < list->size(); ++i) {
      const json& e = (*list)[i];
      if (!e.is_object() || !e.contains("type") || e["type"] != "NFC")
        fail(where + ".normalizers[" + std::to_string(i) + "]",
             "unsupported normalizer " + found(e) + " (only NFC is supported)");
      d.nfc = true;
    }
    return;
  }
  fail(where, "unsupported normalizer " + found(n) + " (only NFC or none is supported)");
}

void read_pre_tokenizer(const json& p, const std::string& where, TokenizerData& d) {
  d.pattern_source = where;
  if (!p.is_object()) fail(where, "expected a pre-tokenizer object ending in ByteLevel, found " + found(p));
  std::vector<std::pair<const json*, std::string>> steps;
  auto type = p.find("type");
  if (type != p.end() && *type == "Sequence") {
    auto list = p.find("pretokenizers");
    if (list == p.end() || !list->is_array()) fail(where + ".pretokenizers", "expected an array");
    for (size_t i = 0; i < list->size(); ++i)
      steps.emplace_back(&(*list)[i], where + ".pretokenizers[" + std::to_string(i) + "]");
  } else {
    steps.emplace_back(&p, where);
  }
  bool byte_level = false;
  for (const auto& [step, at] : steps) {
    if (byte_level) fail(at, "a pre-tokenizer after ByteLevel is not supported");
    if (!step->is_object()) fail(at, "expected an object, found " + found(*step));
    auto t = step->find("type");
    const std::string name = t != step->end() && t->is_string() ? t->get<std::string>() : "";
    if (name == "Split") {
      auto pat = step->find("pattern");
      if (pat == step->end() || !pat->is_object() || !pat->contains("Regex") || !(*pat)["Regex"].is_string())
        fail(at + ".pattern", "expected {\"Regex\": \"...\"} (string patterns are not supported)");
      auto behavior = step->find("behavior");
      if (behavior == step->end() || *behavior != "Isolated")
        fail(at + ".behavior", "only \"Isolated\" is supported, found " +
                                   (behavior == step->end() ? std::string("nothing") : found(*behavior)));
      if (optional_bool(*step, "invert", false, at)) fail(at + ".invert", "invert true is not supported");
      d.split_patterns.push_back((*pat)["Regex"].get<std::string>());
    } else if (name == "ByteLevel") {
      if (optional_bool(*step, "add_prefix_space", false, at))
        fail(at + ".add_prefix_space", "add_prefix_space true is not supported");
      if (optional_bool(*step, "use_regex", true, at)) d.split_patterns.push_back(kGpt2Pattern);
      byte_level = true;
    } else {
      fail(at, "unsupported pre-tokenizer " + found(*step) + " (Split and ByteLevel are supported)");
    }
  }
  if (!byte_level) fail(where, "no ByteLevel pre-tokenizer: not a byte-level BPE tokenizer");
}

void check_format_fields(const json& model, const std::string& where, TokenizerData& d) {
  if (auto it = model.find("dropout"); it != model.end() && !it->is_null()) {
    if (!it->is_number()) fail(where + ".dropout", "expected a number or null, found " + found(*it));
    if (it->get<double>() != 0) fail(where + ".dropout", "BPE dropout is not supported");
  }
  if (optional_bool(model, "byte_fallback", false, where))
    fail(where + ".byte_fallback", "byte_fallback true is not supported");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    auto it = model.find(key);
    if (it == model.end() || it->is_null()) continue;
    if (!it->is_string() || !it->get<std::string>().empty())
      fail(where + "." + key, "expected null or \"\", found " + found(*it));
  }
  d.ignore_merges = optional_bool(model, "ignore_merges", false, where);
  if (auto it = model.find("unk_token"); it != model.end() && !it->is_null()) {
    if (!it->is_string()) fail(where + ".unk_token", "expected a string or null, found " + found(*it));
    d.unk_token = it->get<std::string>();
  }
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

TokenizerData parse_tokenizer_json(std::string_view text, const std::string& source) {
  const json j = parse_json(text, source);
  if (!j.is_object()) fail(source, "expected a tokenizer.json object, found " + found(j));
  auto model_it = j.find("model");
  if (model_it == j.end() || !model_it->is_object())
    fail(source, "not a tokenizer.json (no \"model\" object)");
  const json& model = *model_it;
  TokenizerData d;
  d.format = "tokenizer.json";
  if (auto t = model.find("type"); t != model.end() && !(t->is_string() && *t == "BPE"))
    fail(source + ": model.type", "unsupported tokenizer model " + found(*t) + " (expected \"BPE\")");
  auto vocab = model.find("vocab");
  if (vocab == model.end()) fail(source, "model.vocab is missing");
  d.vocab_source = source + ": model.vocab";
  read_vocab_object(*vocab, d.vocab_source, d);
  auto merges = model.find("merges");
  if (merges == model.end() || !merges->is_array())
    fail(source + ": model.merges", "expected an array of merges (\"a b\" or [\"a\", \"b\"])");
  d.merges_source = source + ": model.merges";
  d.merges.reserve(merges->size());
  for (size_t i = 0; i < merges->size(); ++i) {
    const json& m = (*merges)[i];
    MergeSpec spec;
    spec.where = uint32_t(i);
    const bool ok = m.is_string() ? split_merge(m.get_ref<const std::string&>(), spec)
                                  : m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string();
    if (!ok)
      fail(d.merges_source + "[" + std::to_string(i) + "]",
           "expected \"a b\" (one space) or [\"a\", \"b\"], found " + found(m));
    if (m.is_array()) {
      spec.left = m[0].get<std::string>();
      spec.right = m[1].get<std::string>();
    }
    d.merges.push_back(std::move(spec));
  }
  check_format_fields(model, source + ": model", d);
  read_normalizer(j.value("normalizer", json()), source + ": normalizer", d);
  read_pre_tokenizer(j.value("pre_tokenizer", json()), source + ": pre_tokenizer", d);
  if (auto added = j.find("added_tokens"); added != j.end() && !added->is_null()) {
    if (!added->is_array()) fail(source + ": added_tokens", "expected an array, found " + found(*added));
    for (size_t i = 0; i < added->size(); ++i) {
      const std::string where = source + ": added_tokens[" + std::to_string(i) + "]";
      const json& t = (*added)[i];
      if (!t.is_object() || !t.contains("id")) fail(where, "expected an object with \"id\" and \"content\"");
      d.added.push_back(added_token(t, token_id(t["id"], where + ".id"), where));
    }
  }
  return d;
}

TokenizerData read_tokenizer_json(const std::string& path) {
  return parse_tokenizer_json(read_whole(path), path);
}

TokenizerData read_vocab_merges(const std::string& vocab_path, const std::string& merges_path,
                                const std::string& config_path, const std::string& added_path) {
  TokenizerData d;
  d.format = "vocab.json + merges.txt";
  d.vocab_source = vocab_path;
  read_vocab_object(parse_json(read_whole(vocab_path), vocab_path), vocab_path, d);

  // merges.txt: only line 1 may be the "#version" header; every other line is a merge, "#" or not (the slow
  // tokenizer's old skip of "#" lines dropped merges such as "# #" and "## ##").
  const std::string text = read_whole(merges_path);
  d.merges_source = merges_path;
  d.merges_by_line = true;
  size_t pos = 0;
  uint32_t line_no = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    ++line_no;
    auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; };
    while (!line.empty() && is_space(line.back())) line.remove_suffix(1);
    while (!line.empty() && is_space(line.front())) line.remove_prefix(1);
    if (line.empty() || (line_no == 1 && line.substr(0, 8) == "#version")) continue;
    MergeSpec m;
    m.where = line_no;
    if (line.find('\t') != std::string_view::npos || !split_merge(line, m))
      fail(merges_path + ": line " + std::to_string(line_no),
           "expected two tokens separated by one space, found " + json_quoted(line));
    d.merges.push_back(std::move(m));
  }

  d.nfc = true;  // Qwen2Tokenizer normalises to NFC
  d.split_patterns = {kQwen2Pattern};
  d.pattern_source = vocab_path;
  if (!config_path.empty()) {
    const json c = parse_json(read_whole(config_path), config_path);
    if (!c.is_object()) fail(config_path, "expected a JSON object, found " + found(c));
    if (auto cls = c.find("tokenizer_class"); cls != c.end() && !cls->is_null()) {
      const std::string name = cls->is_string() ? cls->get<std::string>() : "";
      if (name != "Qwen2Tokenizer" && name != "Qwen2TokenizerFast")
        fail(config_path + ": tokenizer_class",
             "unsupported " + found(*cls) + " (vocab.json + merges.txt are read as a Qwen2Tokenizer)");
    }
    if (auto dec = c.find("added_tokens_decoder"); dec != c.end() && !dec->is_null()) {
      const std::string where = config_path + ": added_tokens_decoder";
      if (!dec->is_object()) fail(where, "expected an object of id -> token, found " + found(*dec));
      for (auto it = dec->begin(); it != dec->end(); ++it) {
        const std::string& key = it.key();
        const std::string at = where + "[" + json_quoted(key) + "]";
        if (key.empty() || key.size() > 9 || key.find_first_not_of("0123456789") != std::string::npos)
          fail(at, "the key must be a token id (decimal digits)");
        const int64_t id = std::stoll(key);
        if (id > kMaxTokenId)
          fail(at, "token id " + key + " is out of range (expected 0.." + std::to_string(kMaxTokenId) + ")");
        d.added.push_back(added_token(it.value(), id, at));
      }
    }
  }
  if (!added_path.empty()) {
    const json a = parse_json(read_whole(added_path), added_path);
    if (!a.is_object()) fail(added_path, "expected an object of token -> id, found " + found(a));
    for (auto it = a.begin(); it != a.end(); ++it) {
      const std::string at = added_path + "[" + json_quoted(it.key()) + "]";
      AddedTokenSpec t;
      t.id = token_id(it.value(), at);
      t.content = it.key();
      t.where = at;
      if (t.content.empty()) fail(at, "an added token cannot be empty");
      bool known = false;  // tokenizer_config.json's entry, if any, has the flags
      for (const auto& e : d.added) known = known || (e.id == t.id && e.content == t.content);
      if (!known) d.added.push_back(std::move(t));
    }
  }
  return d;
}

TokenizerData read_gguf_tokenizer(const std::string& path) {
  GgufFile f(path);
  const GgufHeader& h = f.header();
  const auto model = h.get_string("tokenizer.ggml.model");
  if (!model) fail(path, "no tokenizer metadata (tokenizer.ggml.model is missing)");
  if (*model != "gpt2")
    fail(path + ": tokenizer.ggml.model",
         "unsupported tokenizer model \"" + *model + "\" (expected \"gpt2\", byte-level BPE)");
  if (const auto pre = h.get_string("tokenizer.ggml.pre"); pre && *pre != "qwen2")
    fail(path + ": tokenizer.ggml.pre", "unsupported pre-tokenizer \"" + *pre + "\" (expected \"qwen2\")");
  const auto tokens = h.get_string_array("tokenizer.ggml.tokens");
  if (!tokens) fail(path, "tokenizer.ggml.tokens is missing");
  if (int64_t(tokens->size()) > kMaxTokenId + 1)
    fail(path + ": tokenizer.ggml.tokens", std::to_string(tokens->size()) + " tokens is above the limit");
  std::vector<int64_t> types(tokens->size(), 1);
  if (const auto t = h.get_int_array("tokenizer.ggml.token_type")) {
    if (t->size() != tokens->size())
      fail(path + ": tokenizer.ggml.token_type",
           std::to_string(t->size()) + " entries for " + std::to_string(tokens->size()) + " tokens");
    types = *t;
  }
  const auto merges = h.get_string_array("tokenizer.ggml.merges");
  if (!merges) fail(path, "tokenizer.ggml.merges is missing");

  TokenizerData d;
  d.format = "GGUF";
  d.vocab_source = path + ": tokenizer.ggml.tokens";
  d.merges_source = path + ": tokenizer.ggml.merges";
  for (size_t i = 0; i < tokens->size(); ++i) {
    const std::string& tok = (*tokens)[i];
    const int64_t id = int64_t(i);
    switch (types[i]) {
      case 1:  // normal
      case 2:  // unknown
      case 6:  // byte
        d.vocab.emplace_back(tok, id);
        break;
      case 3:    // control
      case 4: {  // user defined
        AddedTokenSpec a;
        a.id = id;
        a.content = tok;
        a.special = types[i] == 3;
        a.where = path + ": tokenizer.ggml.tokens[" + std::to_string(i) + "]";
        if (tok.empty()) fail(a.where, "an added (control / user-defined) token cannot be empty");
        d.added.push_back(std::move(a));
        break;
      }
      case 5:  // unused: kept for the id table only
        d.unused.emplace_back(id, tok);
        break;
      default:
        fail(path + ": tokenizer.ggml.token_type[" + std::to_string(i) + "]",
             "unknown token type " + std::to_string(types[i]) + " (expected 1..6)");
    }
  }
  d.merges.reserve(merges->size());
  for (size_t i = 0; i < merges->size(); ++i) {
    MergeSpec m;
    m.where = uint32_t(i);
    if (!split_merge((*merges)[i], m))
      fail(d.merges_source + "[" + std::to_string(i) + "]",
           "expected two tokens separated by one space, found " + json_quoted((*merges)[i]));
    d.merges.push_back(std::move(m));
  }
  d.nfc = true;
  d.split_patterns = {kQwen2Pattern};
  d.pattern_source = path;
  return d;
}

TokenizerData read_tokenizer_files(const std::string& path) {
  std::error_code ec;
  const fs::path p(path);
  auto is_file = [](const fs::path& f) {
    std::error_code e;
    return fs::is_regular_file(f, e);
  };
  auto from_folder = [&](const fs::path& dir) -> std::optional<TokenizerData> {
    if (is_file(dir / "tokenizer.json")) return read_tokenizer_json((dir / "tokenizer.json").string());
    if (is_file(dir / "vocab.json")) {
      if (!is_file(dir / "merges.txt")) fail((dir / "vocab.json").string(), "no merges.txt beside it");
      const fs::path config = dir / "tokenizer_config.json", added = dir / "added_tokens.json";
      return read_vocab_merges((dir / "vocab.json").string(), (dir / "merges.txt").string(),
                               is_file(config) ? config.string() : "", is_file(added) ? added.string() : "");
    }
    return std::nullopt;
  };
  if (fs::is_directory(p, ec)) {
    if (auto d = from_folder(p)) return std::move(*d);
    if (fs::is_directory(p / "tokenizer", ec))
      if (auto d = from_folder(p / "tokenizer")) return std::move(*d);
    fail(path,
         "no tokenizer here: expected tokenizer.json, or vocab.json + merges.txt, in this folder or in " +
             (p / "tokenizer").string());
  }
  if (!fs::exists(p, ec)) fail(path, "no such file or folder");
  const std::string name = p.filename().string();
  bool gguf = ends_with(name, ".gguf");
  if (!gguf) {
    MappedFile f(path);
    gguf = f.size() >= 4 && std::string_view(reinterpret_cast<const char*>(f.data()), 4) == "GGUF";
  }
  if (gguf) return read_gguf_tokenizer(path);
  if (ends_with(name, "vocab.json")) {
    const fs::path dir = p.parent_path();
    fs::path merges = dir / (name.substr(0, name.size() - 10) + "merges.txt");
    if (!is_file(merges)) merges = dir / "merges.txt";
    if (!is_file(merges)) fail(path, "no merges.txt beside it");
    const fs::path config = dir / "tokenizer_config.json", added = dir / "added_tokens.json";
    return read_vocab_merges(path, merges.string(), is_file(config) ? config.string() : "",
                             is_file(added) ? added.string() : "");
  }
  return read_tokenizer_json(path);
}

}  // namespace krea2::text
