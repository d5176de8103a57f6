// The Qwen2 byte-level BPE tokenizer: every string case of fixtures/text/tokenizer/cases.json (ids,
// byte-level tokens, decoding) through the library, through every loader (vocab.json + merges.txt,
// tokenizer.json with both merge spellings, folders, a pipeline root, GGUF) and through `krea2 tokenize`; the
// merges.txt "#" trap; added-token matching; the pre-tokenizer's \s; long inputs; threads; and clear errors
// on bad files and text.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "io/gguf_writer.h"
#include "krea2/error.h"
#include "krea2/tokenizer.h"
#include "support/test_util.h"
#include "support/tokenizer_util.h"
#include "text/pretokenize.h"
#include "text/tokenizer_impl.h"

namespace krea2 {
namespace {

using ::testing::HasSubstr;
using json = nlohmann::json;
namespace fs = std::filesystem;

std::vector<int32_t> ids_of(const json& c) {
  return c.at("ids").get<std::vector<int32_t>>();
}

std::vector<const json*> string_cases() {
  std::vector<const json*> out;
  for (const json& c : test::tokenizer_cases())
    if (c.at("kind") == "string") out.push_back(&c);
  return out;
}

const json& find_case(const std::string& name) {
  for (const json& c : test::tokenizer_cases())
    if (c.at("name") == name) return c;
  throw std::runtime_error("no case " + name);
}

void expect_all_string_cases(const Tokenizer& tok, const std::string& label) {
  for (const json* c : string_cases())
    EXPECT_EQ(tok.encode(c->at("text").get<std::string>()), ids_of(*c)) << label << ": " << c->at("name");
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

std::string load_error(const std::string& path) {
  return error_of([&] { Tokenizer::load(path); });
}

void write_json(const std::string& path, const json& j) {
  test::write_file(path, j.dump());
}

// A folder holding a tokenizer.json derived from the fixture's three files.
void write_fixture_tokenizer_json(const std::string& path, bool pair_merges) {
  write_json(path, test::tokenizer_json_from_fixture(pair_merges));
}

// The fixture tokenizer as GGUF metadata (what llama.cpp's converter writes for a Qwen2 tokenizer).
void write_fixture_gguf(const std::string& path, const Tokenizer& tok) {
  const json config = json::parse(test::read_file(test::tokenizer_fixture_dir() + "/tokenizer_config.json"));
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  for (int64_t id = 0; id < tok.vocab_size(); ++id) {
    tokens.push_back(tok.token_text(int32_t(id)));
    const auto added = config.at("added_tokens_decoder").find(std::to_string(id));
    types.push_back(added == config.at("added_tokens_decoder").end() ? 1
                    : added->at("special").get<bool>()               ? 3
                                                                     : 4);
  }
  std::vector<std::string> merges;
  for (const auto& [a, b] : test::fixture_merges()) merges.push_back(a + " " + b);
  GgufWriter w(path);
  w.set_string("general.architecture", "qwen3vl");
  w.set_string("tokenizer.ggml.model", "gpt2");
  w.set_string("tokenizer.ggml.pre", "qwen2");
  w.set_string_array("tokenizer.ggml.tokens", tokens);
  w.set_i32_array("tokenizer.ggml.token_type", types);
  w.set_string_array("tokenizer.ggml.merges", merges);
  w.set_u32("tokenizer.ggml.padding_token_id", 151643);
  w.finish();
}

TEST(Tokenizer, EveryStringCaseIdsTokensAndDecode) {
  const Tokenizer& tok = test::fixture_tokenizer();
  const auto cases = string_cases();
  ASSERT_EQ(cases.size(), 64u);
  for (const json* c : cases) {
    const std::string name = c->at("name"), text = c->at("text");
    const std::vector<int32_t> ids = tok.encode(text);
    ASSERT_EQ(ids, ids_of(*c)) << name;
    const auto tokens = c->at("tokens").get<std::vector<std::string>>();
    ASSERT_EQ(tokens.size(), ids.size()) << name;
    for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(tok.token_text(ids[i]), tokens[i]) << name << " #" << i;
    // Decoding gives the NFC text back (the only non-NFC case is the NFD spelling of accents_nfc).
    const std::string expected_text =
        name == "accents_nfd" ? find_case("accents_nfc").at("text").get<std::string>() : text;
    EXPECT_EQ(tok.decode(ids), expected_text) << name;
    EXPECT_EQ(tok.encode(tok.decode(ids)), ids) << name;
  }
}

TEST(Tokenizer, DescribeVocabSizeAndFindToken) {
  const Tokenizer& tok = test::fixture_tokenizer();
  EXPECT_EQ(tok.describe(), "vocab.json + merges.txt, 151643 tokens, 151387 merges, 26 added");
  EXPECT_EQ(tok.vocab_size(), 151669);
  EXPECT_EQ(tok.find_token("<|endoftext|>"), 151643);
  EXPECT_EQ(tok.find_token("<|im_start|>"), 151644);
  EXPECT_EQ(tok.find_token("<|im_end|>"), 151645);
  EXPECT_EQ(tok.find_token("\xC4\xA0red"), 2518);  // "Ġred"
  EXPECT_EQ(tok.find_token("no such token at all"), std::nullopt);
  EXPECT_EQ(tok.token_text(151644), "<|im_start|>");
  EXPECT_EQ(tok.decode({151644, 872, 198}), "<|im_start|>user\n");
  EXPECT_EQ(tok.encode(""), std::vector<int32_t>{});
  // Copies share the tables.
  const Tokenizer copy = tok;
  EXPECT_EQ(copy.encode("a red fox"), tok.encode("a red fox"));
}

TEST(Tokenizer, EveryLoaderGivesTheSameIds) {
  const Tokenizer& reference = test::fixture_tokenizer();
  test::TempDir tmp;
  const std::string fixture = test::tokenizer_fixture_dir();
  // tokenizer.json in both merge spellings, as a file and as a folder; a pipeline root with tokenizer/.
  fs::create_directories(tmp.file("strings"));
  fs::create_directories(tmp.file("pairs"));
  fs::create_directories(tmp.file("pipeline/tokenizer"));
  fs::create_directories(tmp.file("pipeline_slow/tokenizer"));
  write_fixture_tokenizer_json(tmp.file("strings/tokenizer.json"), false);
  write_fixture_tokenizer_json(tmp.file("pairs/tokenizer.json"), true);
  fs::copy_file(tmp.file("strings/tokenizer.json"), tmp.file("pipeline/tokenizer/tokenizer.json"));
  for (const char* f : {"vocab.json", "merges.txt", "tokenizer_config.json"})
    fs::copy_file(fixture + "/" + f, tmp.file(std::string("pipeline_slow/tokenizer/") + f));
  write_fixture_gguf(tmp.file("tok.gguf"), reference);
  // A GGUF under another extension is recognised by its magic.
  fs::copy_file(tmp.file("tok.gguf"), tmp.file("tok.bin"));

  const std::vector<std::pair<std::string, std::string>> paths = {
      {fixture + "/vocab.json", "vocab.json + merges.txt"},
      {tmp.file("strings/tokenizer.json"), "tokenizer.json"},
      {tmp.file("pairs/tokenizer.json"), "tokenizer.json"},
      {tmp.file("strings"), "tokenizer.json"},
      {tmp.file("pipeline"), "tokenizer.json"},
      {tmp.file("pipeline_slow"), "vocab.json + merges.txt"},
      {tmp.file("tok.gguf"), "GGUF"},
      {tmp.file("tok.bin"), "GGUF"},
  };
  for (const auto& [path, format] : paths) {
    const Tokenizer tok = Tokenizer::load(path);
    EXPECT_EQ(tok.describe(), format + ", 151643 tokens, 151387 merges, 26 added") << path;
    EXPECT_EQ(tok.vocab_size(), reference.vocab_size()) << path;
    EXPECT_EQ(tok.find_token("<|endoftext|>"), 151643) << path;
    expect_all_string_cases(tok, path);
    for (const json* c : string_cases()) {
      const std::vector<int32_t> ids = ids_of(*c);
      EXPECT_EQ(tok.decode(ids), reference.decode(ids)) << path << ": " << c->at("name");
    }
  }
}

TEST(Tokenizer, TokenizerJsonFromMemory) {
  const Tokenizer tok =
      text::tokenizer_from_json_text(test::tokenizer_json_from_fixture(false).dump(), "memory");
  expect_all_string_cases(tok, "memory");
}

// merges.txt: only line 1 may be the #version header; "#" lines after it are merges (README: hash_markdown).
TEST(Tokenizer, MergesStartingWithHashAreMerges) {
  const Tokenizer& tok = test::fixture_tokenizer();
  const json& c = find_case("hash_markdown");
  EXPECT_EQ(tok.encode(c.at("text").get<std::string>()), ids_of(c));
  EXPECT_EQ(tok.find_token("##"), tok.encode("##").front());

  test::TempDir tmp;
  write_json(tmp.file("vocab.json"), {{"#", 0}, {"a", 1}, {"##", 2}, {"#a", 3}, {"version:", 4}});
  test::write_file(tmp.file("merges.txt"), "#version: 0.2\n# #\n# a\n");
  Tokenizer t = Tokenizer::load(tmp.path());
  EXPECT_EQ(t.encode("##"), (std::vector<int32_t>{2}));
  EXPECT_EQ(t.encode("#a"), (std::vector<int32_t>{3}));
  EXPECT_EQ(t.describe(), "vocab.json + merges.txt, 5 tokens, 2 merges, 0 added");
  // Without a header the first line is a merge too; CRLF line ends and blank lines are fine.
  test::write_file(tmp.file("merges.txt"), "# #\r\n\r\n# a\r\n");
  t = Tokenizer::load(tmp.file("vocab.json"));
  EXPECT_EQ(t.encode("###a"), (std::vector<int32_t>{2, 0, 1}));  // pre-tokens "###" and "a"
  EXPECT_EQ(t.encode("#a"), (std::vector<int32_t>{3}));
  // "#version" after line 1 is an ordinary (here: invalid) merge line.
  test::write_file(tmp.file("merges.txt"), "# #\n#version: 0.2\n");
  EXPECT_THAT(load_error(tmp.path()), HasSubstr("merges.txt: line 2"));
}

TEST(Tokenizer, MergeRanksDecideTheOrder) {
  // "abc": (b c) ranks before (a b), so a + bc; with the ranks swapped, ab + c.
  test::TempDir tmp;
  write_json(tmp.file("bc.json"), test::tiny_tokenizer_json({"ab", "bc", "abc"}, {"b c", "a bc", "a b"}));
  write_json(tmp.file("ab.json"), test::tiny_tokenizer_json({"ab", "bc", "abc"}, {"a b", "ab c", "b c"}));
  EXPECT_EQ(Tokenizer::load(tmp.file("bc.json")).encode("abc"), (std::vector<int32_t>{258}));
  EXPECT_EQ(Tokenizer::load(tmp.file("ab.json")).encode("abc"), (std::vector<int32_t>{258}));
  write_json(tmp.file("noabc.json"), test::tiny_tokenizer_json({"ab", "bc"}, {"b c", "a b"}));
  EXPECT_EQ(Tokenizer::load(tmp.file("noabc.json")).encode("abc"), (std::vector<int32_t>{'a', 257}));
  write_json(tmp.file("noabc2.json"), test::tiny_tokenizer_json({"ab", "bc"}, {"a b", "b c"}));
  EXPECT_EQ(Tokenizer::load(tmp.file("noabc2.json")).encode("abc"), (std::vector<int32_t>{256, 'c'}));
  // Overlapping equal pairs merge left to right: aaa -> aa + a; aaaa -> aa + aa -> aaaa.
  write_json(tmp.file("aa.json"), test::tiny_tokenizer_json({"aa", "aaaa"}, {"a a", "aa aa"}));
  const Tokenizer aa = Tokenizer::load(tmp.file("aa.json"));
  EXPECT_EQ(aa.encode("aaa"), (std::vector<int32_t>{256, 'a'}));
  EXPECT_EQ(aa.encode("aaaa"), (std::vector<int32_t>{257}));
  EXPECT_EQ(aa.encode("aaaaa"), (std::vector<int32_t>{257, 'a'}));
}

TEST(Tokenizer, AddedTokensLeftmostLongestAndStrip) {
  test::TempDir tmp;
  const json added = json::array({
      {{"id", 300}, {"content", "<a>"}, {"special", true}, {"normalized", false}},
      {{"id", 301}, {"content", "<a><b>"}, {"special", true}, {"normalized", false}},
      {{"id", 302}, {"content", "b><c"}, {"special", false}, {"normalized", false}},
      {{"id", 303}, {"content", "[L]"}, {"lstrip", true}, {"normalized", false}},
      {{"id", 304}, {"content", "[R]"}, {"rstrip", true}, {"normalized", false}},
      {{"id", 305}, {"content", "caf\xC3\xA9"}, {"normalized", true}},  // NFC "café"
  });
  write_json(tmp.file("t.json"), test::tiny_tokenizer_json({}, {}, added));
  const Tokenizer t = Tokenizer::load(tmp.file("t.json"));
  EXPECT_EQ(t.describe(), "tokenizer.json, 256 tokens, 0 merges, 6 added");
  EXPECT_EQ(t.encode("<a><b>"), (std::vector<int32_t>{301}));              // longest at the leftmost start
  EXPECT_EQ(t.encode("<a><b><c"), (std::vector<int32_t>{301, '<', 'c'}));  // "b><c" starts later
  EXPECT_EQ(t.encode("<a>b><c"), (std::vector<int32_t>{300, 302}));
  EXPECT_EQ(t.encode("x  [L]"), (std::vector<int32_t>{'x', 303}));    // lstrip takes the spaces before
  EXPECT_EQ(t.encode("[R] \t y"), (std::vector<int32_t>{304, 'y'}));  // rstrip the white space after
  // A normalized token matches after NFC: the NFD spelling "cafe\u0301" finds it too.
  EXPECT_EQ(t.encode("caf\xC3\xA9"), (std::vector<int32_t>{305}));
  EXPECT_EQ(t.encode("cafe\xCC\x81"), (std::vector<int32_t>{305}));
  EXPECT_EQ(t.decode({301, 'x', 305}), "<a><b>xcaf\xC3\xA9");
  // A raw (normalized: false) token is matched before NFC, on the bytes as typed.
  const Tokenizer& q = test::fixture_tokenizer();
  EXPECT_EQ(q.encode("<|im_end|>"), (std::vector<int32_t>{151645}));
  EXPECT_EQ(q.encode("<|im_end|>\xCC\xB8").front(), 151645);  // NFC would make ">\u0338" one char
}

TEST(Tokenizer, IgnoreMergesUsesWholeVocabTokens) {
  test::TempDir tmp;
  json j = test::tiny_tokenizer_json({"ab", "abc"}, {"a b"});
  j["model"]["ignore_merges"] = true;
  write_json(tmp.file("t.json"), j);
  // "abc" is in the vocab but no merge makes it: ignore_merges takes it whole.
  EXPECT_EQ(Tokenizer::load(tmp.file("t.json")).encode("abc"), (std::vector<int32_t>{257}));
  j["model"]["ignore_merges"] = false;
  write_json(tmp.file("t.json"), j);
  EXPECT_EQ(Tokenizer::load(tmp.file("t.json")).encode("abc"), (std::vector<int32_t>{256, 'c'}));
}

// \s is Unicode White_Space as in Oniguruma / Python's regex (U+0085 yes, U+180E and U+001C no); splits
// computed with Python's regex module on the Qwen2 pattern.
TEST(Tokenizer, PreTokenizerWhiteSpaceMatchesPythonRegex) {
  text::PreTokenizer pre;
  pre.add_split(text::kQwen2Pattern, "test");
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
      {"a\xE1\xA0\x8E b", {"a", "\xE1\xA0\x8E", " b"}},
      {"x\xC2\x85 y\xC2\x85\xC2\x85z", {"x", "\xC2\x85", " y", "\xC2\x85", "\xC2\x85z"}},
      {"a \x1C b", {"a", " \x1C", " b"}},
      {"it\xC5\xBFS", {"it\xC5\xBFS"}},
      {"A\xE2\x80\xA8\xE2\x80\xA8"
       "B  \t\n c",
       {"A", "\xE2\x80\xA8",
        "\xE2\x80\xA8"
        "B",
        "  \t\n", " c"}},
      {"IT'S \xC5\xBF 's", {"IT", "'S", " \xC5\xBF", " '", "s"}},
  };
  for (const auto& [input, want] : cases) {
    std::vector<std::string_view> got;
    pre.split(input, got);
    EXPECT_EQ(std::vector<std::string>(got.begin(), got.end()), want) << input;
  }
  EXPECT_EQ(
      text::rewrite_white_space(R"(\s+(?!\S)|[^\s\p{L}]|\\s)"),
      R"([\t\n\x{0B}\f\r \x{85}\p{Z}]+(?![^\t\n\x{0B}\f\r \x{85}\p{Z}])|[^\t\n\x{0B}\f\r \x{85}\p{Z}\p{L}]|\\s)");
  EXPECT_EQ(text::rewrite_white_space(R"([]\s][^]a][[:alpha:]\s])"),
            R"([]\t\n\x{0B}\f\r \x{85}\p{Z}][^]a][[:alpha:]\t\n\x{0B}\f\r \x{85}\p{Z}])");
  EXPECT_THAT(error_of([] { text::rewrite_white_space(R"([\S])"); }),
              HasSubstr("\\S inside a character class"));
}

TEST(Tokenizer, InvalidUtf8NamesTheByteOffset) {
  const Tokenizer& tok = test::fixture_tokenizer();
  const std::vector<std::pair<std::string, size_t>> cases = {
      {"\xFF", 0},
      {"ab\xC3", 2},               // truncated two-byte sequence
      {"a\xC0\xAF", 1},            // overlong '/'
      {"ok \xED\xA0\x80", 3},      // UTF-16 surrogate
      {"\xF4\x90\x80\x80", 0},     // above U+10FFFF
      {"caf\xC3\xA9 \x80", 6},     // lone continuation byte
      {"<|im_end|>\xE2\x82", 10},  // truncated after an added token
  };
  for (const auto& [text, offset] : cases)
    EXPECT_THAT(error_of([&] { tok.encode(text); }),
                HasSubstr("invalid UTF-8 in the text at byte offset " + std::to_string(offset)))
        << offset;
  // NUL and other control bytes are valid text.
  const std::string with_nul("a\0b\x01\x7F", 5);
  EXPECT_EQ(tok.decode(tok.encode(with_nul)), with_nul);
}

TEST(Tokenizer, UnknownIdsAreErrors) {
  const Tokenizer& tok = test::fixture_tokenizer();
  EXPECT_THAT(error_of([&] { tok.token_text(151669); }),
              HasSubstr("token id 151669 is not in the tokenizer"));
  EXPECT_THAT(error_of([&] { tok.token_text(-1); }), HasSubstr("token id -1"));
  EXPECT_THAT(error_of([&] { tok.decode({1, 2, 999999}); }), HasSubstr("cannot decode token id 999999"));
}

TEST(Tokenizer, BadFilesGiveClearErrors) {
  test::TempDir tmp;
  auto tiny = [&](const std::string& name, const json& j) {
    write_json(tmp.file(name), j);
    return tmp.file(name);
  };
  // Paths.
  EXPECT_THAT(load_error(tmp.file("missing")), HasSubstr(tmp.file("missing") + ": no such file or folder"));
  fs::create_directories(tmp.file("empty/tokenizer"));
  EXPECT_THAT(load_error(tmp.file("empty")),
              HasSubstr("no tokenizer here: expected tokenizer.json, or vocab.json"));
  fs::create_directories(tmp.file("nomerges"));
  write_json(tmp.file("nomerges/vocab.json"), {{"a", 0}});
  EXPECT_THAT(load_error(tmp.file("nomerges")), HasSubstr("vocab.json: no merges.txt beside it"));

  // tokenizer.json.
  test::write_file(tmp.file("bad.json"), "{\"model\": {\"vocab\": {\"a\": 0,}}}");
  EXPECT_THAT(load_error(tmp.file("bad.json")), HasSubstr(tmp.file("bad.json") + ": invalid JSON: "));
  EXPECT_THAT(load_error(tmp.file("bad.json")), HasSubstr("line 1, column 29"));
  EXPECT_THAT(load_error(tiny("nomodel.json", {{"version", "1.0"}})), HasSubstr("no \"model\" object"));
  json j = test::tiny_tokenizer_json({}, {});
  j["model"]["type"] = "WordPiece";
  EXPECT_THAT(load_error(tiny("wp.json", j)),
              HasSubstr("model.type: unsupported tokenizer model string \"WordPiece\""));
  j = test::tiny_tokenizer_json({}, {});
  j["model"]["vocab"]["xyz"] = "seven";
  EXPECT_THAT(load_error(tiny("strid.json", j)),
              HasSubstr("model.vocab[\"xyz\"]: expected a token id (an integer), found string \"seven\""));
  j["model"]["vocab"]["xyz"] = 2.5;
  EXPECT_THAT(load_error(tiny("floatid.json", j)), HasSubstr("found number 2.5"));
  j["model"]["vocab"]["xyz"] = -3;
  EXPECT_THAT(load_error(tiny("negid.json", j)), HasSubstr("token id -3 is out of range"));
  j["model"]["vocab"]["xyz"] = 4000000000LL;
  EXPECT_THAT(load_error(tiny("bigid.json", j)),
              HasSubstr("token id 4000000000 is out of range (expected 0..4194303)"));
  j["model"]["vocab"]["xyz"] = 65;  // byte 'A' has it
  EXPECT_THAT(load_error(tiny("dupid.json", j)), HasSubstr("id 65 is given to both"));
  EXPECT_THAT(
      load_error(tiny("nomerge.json", test::tiny_tokenizer_json({"ab"}, {"a b", "ab"}))),
      HasSubstr("model.merges[1]: expected \"a b\" (one space) or [\"a\", \"b\"], found string \"ab\""));
  EXPECT_THAT(load_error(tiny("twospace.json", test::tiny_tokenizer_json({"ab"}, {"a  b"}))),
              HasSubstr("model.merges[0]"));
  j = test::tiny_tokenizer_json({"ab"}, {});
  j["model"]["merges"] = json::array({json::array({"a", "b"}), json::array({"a", 7})});
  EXPECT_THAT(load_error(tiny("pairbad.json", j)), HasSubstr("model.merges[1]"));
  EXPECT_THAT(load_error(tiny("unk.json", test::tiny_tokenizer_json({"ab"}, {"a b", "ab zz"}))),
              HasSubstr("model.merges[1]: merge \"ab zz\" names \"zz\", which is not in the vocab"));
  EXPECT_THAT(load_error(tiny("result.json", test::tiny_tokenizer_json({}, {"a b"}))),
              HasSubstr("model.merges[0]: merge \"a b\" makes \"ab\", which is not in the vocab"));
  j = test::tiny_tokenizer_json({}, {});
  j["normalizer"] = {{"type", "Lowercase"}};
  EXPECT_THAT(load_error(tiny("norm.json", j)), HasSubstr("normalizer: unsupported normalizer"));
  j = test::tiny_tokenizer_json({}, {});
  j["pre_tokenizer"] = {{"type", "Whitespace"}};
  EXPECT_THAT(load_error(tiny("pre.json", j)), HasSubstr("pre_tokenizer: unsupported pre-tokenizer"));
  j["pre_tokenizer"] = nullptr;
  EXPECT_THAT(load_error(tiny("nopre.json", j)), HasSubstr("pre_tokenizer: expected a pre-tokenizer object"));
  j = test::tiny_tokenizer_json({}, {});
  j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(unclosed";
  EXPECT_THAT(load_error(tiny("regex.json", j)), HasSubstr("the pre-tokenizer regex does not compile"));
  j = test::tiny_tokenizer_json({}, {});
  j["model"]["byte_fallback"] = true;
  EXPECT_THAT(load_error(tiny("fallback.json", j)), HasSubstr("model.byte_fallback"));

  // Added-token conflicts.
  auto with_added = [&](const std::string& name, const json& added) {
    return load_error(tiny(name, test::tiny_tokenizer_json({"ab"}, {"a b"}, added)));
  };
  EXPECT_THAT(with_added("a1.json", json::array({{{"id", 256}, {"content", "<x>"}}})),
              HasSubstr("added_tokens[0]: added token \"<x>\" has id 256, which the vocab gives to \"ab\""));
  EXPECT_THAT(with_added("a2.json",
                         json::array({{{"id", 300}, {"content", "<x>"}}, {{"id", 300}, {"content", "<y>"}}})),
              HasSubstr("added_tokens[1]: added token \"<y>\" has id 300, which"));
  EXPECT_THAT(with_added("a3.json",
                         json::array({{{"id", 300}, {"content", "<x>"}}, {{"id", 301}, {"content", "<x>"}}})),
              HasSubstr("added_tokens[1]: added token \"<x>\" has id 301 but was already added with id 300"));
  EXPECT_THAT(with_added("a4.json", json::array({{{"id", 300}, {"content", "ab"}}})),
              HasSubstr("added token \"ab\" has id 300 but the vocab has it as id 256"));
  EXPECT_THAT(with_added("a5.json", json::array({{{"id", 300}, {"content", ""}}})),
              HasSubstr("added_tokens[0].content: an added token cannot be empty"));
  EXPECT_THAT(with_added("a6.json", json::array({{{"id", "300"}, {"content", "<x>"}}})),
              HasSubstr("added_tokens[0].id: expected a token id (an integer)"));
  EXPECT_THAT(with_added("a7.json", json::array({{{"id", 300}, {"content", "<x>"}, {"single_word", true}}})),
              HasSubstr("single_word true is not supported"));
  // The same token listed twice with the same id is fine (as the vocab's own id too).
  EXPECT_EQ(with_added("ok.json", json::array({{{"id", 300}, {"content", "<x>"}},
                                               {{"id", 300}, {"content", "<x>"}},
                                               {{"id", 256}, {"content", "ab"}}})),
            "(no error)");

  // vocab.json + merges.txt + tokenizer_config.json.
  fs::create_directories(tmp.file("slow"));
  const std::string slow = tmp.file("slow");
  write_json(slow + "/vocab.json", {{"a", 0}, {"b", 1}, {"ab", 2}});
  test::write_file(slow + "/merges.txt", "#version: 0.2\na b\nab\n");
  EXPECT_THAT(
      load_error(slow),
      HasSubstr(slow + "/merges.txt: line 3: expected two tokens separated by one space, found \"ab\""));
  test::write_file(slow + "/merges.txt", "#version: 0.2\na b\na\tb\n");
  EXPECT_THAT(load_error(slow), HasSubstr("merges.txt: line 3"));
  test::write_file(slow + "/merges.txt", "#version: 0.2\na b\n\nab c\n");
  EXPECT_THAT(load_error(slow),
              HasSubstr(slow + "/merges.txt: line 4: merge \"ab c\" names \"c\", which is not in the vocab"));
  test::write_file(slow + "/merges.txt", "a b\n");
  write_json(slow + "/vocab.json", {{"a", 0}, {"b", "1"}, {"ab", 2}});
  EXPECT_THAT(load_error(slow + "/vocab.json"),
              HasSubstr(slow + "/vocab.json[\"b\"]: expected a token id (an integer), found string \"1\""));
  test::write_file(slow + "/vocab.json", "[1, 2]");
  EXPECT_THAT(load_error(slow), HasSubstr("vocab.json: expected an object of token -> id, found array"));
  test::write_file(slow + "/vocab.json", "{\"a\": 0, \"b\": 1");
  EXPECT_THAT(load_error(slow), HasSubstr(slow + "/vocab.json: invalid JSON"));
  write_json(slow + "/vocab.json", {{"a", 0}, {"b", 1}, {"ab", 2}});
  write_json(slow + "/tokenizer_config.json", {{"added_tokens_decoder", {{"x5", {{"content", "<x>"}}}}}});
  EXPECT_THAT(load_error(slow),
              HasSubstr("tokenizer_config.json: added_tokens_decoder[\"x5\"]: the key must be a token id"));
  write_json(slow + "/tokenizer_config.json", {{"added_tokens_decoder", {{"1", {{"content", "<x>"}}}}}});
  EXPECT_THAT(load_error(slow),
              HasSubstr("added_tokens_decoder[\"1\"]: added token \"<x>\" has id 1, which the vocab "
                        "gives to \"b\""));
  write_json(slow + "/tokenizer_config.json", {{"added_tokens_decoder", {{"3", {{"content", 5}}}}}});
  EXPECT_THAT(load_error(slow), HasSubstr("added_tokens_decoder[\"3\"].content: expected the token's text"));
  write_json(slow + "/tokenizer_config.json", {{"tokenizer_class", "LlamaTokenizer"}});
  EXPECT_THAT(load_error(slow), HasSubstr("tokenizer_class: unsupported string \"LlamaTokenizer\""));
  write_json(slow + "/tokenizer_config.json", {{"tokenizer_class", "Qwen2Tokenizer"},
                                               {"added_tokens_decoder", {{"3", {{"content", "<x>"}}}}}});
  write_json(slow + "/added_tokens.json", {{"<x>", 3}, {"<y>", 3}});
  EXPECT_THAT(load_error(slow), HasSubstr("added_tokens.json[\"<y>\"]: added token \"<y>\" has id 3, which"));
  write_json(slow + "/added_tokens.json", {{"<x>", 3}, {"<y>", 4}});
  const Tokenizer ok = Tokenizer::load(slow);
  EXPECT_EQ(ok.describe(), "vocab.json + merges.txt, 3 tokens, 1 merges, 2 added");
  EXPECT_EQ(ok.encode("ab<y>a<x>"), (std::vector<int32_t>{2, 4, 0, 3}));

  // GGUF.
  {
    GgufWriter w(tmp.file("model.gguf"));
    w.set_string("general.architecture", "krea2");
    w.finish();
  }
  EXPECT_THAT(
      load_error(tmp.file("model.gguf")),
      HasSubstr(tmp.file("model.gguf") + ": no tokenizer metadata (tokenizer.ggml.model is missing)"));
  auto gguf = [&](const std::string& name, const std::string& model, const std::vector<std::string>& tokens,
                  const std::vector<int32_t>& types, const std::vector<std::string>& merges) {
    GgufWriter w(tmp.file(name));
    w.set_string("tokenizer.ggml.model", model);
    w.set_string_array("tokenizer.ggml.tokens", tokens);
    if (!types.empty()) w.set_i32_array("tokenizer.ggml.token_type", types);
    w.set_string_array("tokenizer.ggml.merges", merges);
    w.finish();
    return load_error(tmp.file(name));
  };
  EXPECT_THAT(gguf("llama.gguf", "llama", {"a"}, {}, {}), HasSubstr("unsupported tokenizer model \"llama\""));
  EXPECT_THAT(gguf("types.gguf", "gpt2", {"a", "b"}, {1}, {}),
              HasSubstr("tokenizer.ggml.token_type: 1 entries for 2 tokens"));
  EXPECT_THAT(gguf("type9.gguf", "gpt2", {"a", "b"}, {1, 9}, {}),
              HasSubstr("tokenizer.ggml.token_type[1]: unknown token type 9"));
  EXPECT_THAT(gguf("merge.gguf", "gpt2", {"a", "b", "ab"}, {}, {"a b", "ab"}),
              HasSubstr("tokenizer.ggml.merges[1]: expected two tokens separated by one space"));
  EXPECT_THAT(gguf("mergeunk.gguf", "gpt2", {"a", "b"}, {}, {"a b"}),
              HasSubstr("tokenizer.ggml.merges[0]: merge \"a b\" makes \"ab\", which is not in the vocab"));
  EXPECT_THAT(gguf("dup.gguf", "gpt2", {"a", "a"}, {}, {}), HasSubstr("token \"a\" appears twice"));
  EXPECT_EQ(gguf("ok.gguf", "gpt2", {"a", "b", "ab", "<c>", "[PAD4]"}, {1, 1, 1, 3, 5}, {"a b"}),
            "(no error)");
  const Tokenizer g = Tokenizer::load(tmp.file("ok.gguf"));
  EXPECT_EQ(g.describe(), "GGUF, 3 tokens, 1 merges, 1 added, 1 unused");
  EXPECT_EQ(g.vocab_size(), 5);
  EXPECT_EQ(g.encode("ab<c>ba"), (std::vector<int32_t>{2, 3, 1, 0}));
  EXPECT_EQ(g.find_token("[PAD4]"), std::nullopt);
  EXPECT_EQ(g.token_text(4), "[PAD4]");
}

TEST(Tokenizer, LongInputsStayFast) {
  const Tokenizer& tok = test::fixture_tokenizer();
  for (const std::string& text :
       {std::string(1 << 20, ' '), std::string(1 << 20, 'a'), std::string(1 << 18, '\n'),
        std::string(1 << 19, '.'), std::string(1 << 18, '7')}) {
    const auto t0 = std::chrono::steady_clock::now();
    const std::vector<int32_t> ids = tok.encode(text);
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::printf("encode %zu x '%s': %zu ids in %.1f ms\n", text.size(),
                text[0] == '\n' ? "\\n" : text.substr(0, 1).c_str(), ids.size(), ms);
    EXPECT_EQ(tok.decode(ids), text);
  }
}

// A 500-word prompt: the time is printed, not asserted (the target is well under 10 ms).
TEST(Tokenizer, FiveHundredWordPromptTime) {
  const Tokenizer& tok = test::fixture_tokenizer();
  const std::string long_case = find_case("long_600_words").at("text");
  std::string prompt;
  size_t words = 0, pos = 0;
  while (words < 500 && pos < long_case.size()) {
    size_t end = long_case.find(' ', pos + 1);
    if (end == std::string::npos) end = long_case.size();
    prompt += long_case.substr(pos, end - pos);
    pos = end;
    ++words;
  }
  ASSERT_EQ(words, 500u);
  std::vector<double> times;
  size_t n = 0;
  for (int run = 0; run < 21; ++run) {
    const auto t0 = std::chrono::steady_clock::now();
    n = tok.encode(prompt).size();
    times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(times.begin(), times.end());
  std::printf("500-word prompt (%zu bytes, %zu tokens): median %.3f ms, min %.3f ms, first run included\n",
              prompt.size(), n, times[times.size() / 2], times[0]);
  RecordProperty("encode_500_words_ms", std::to_string(times[times.size() / 2]));
}

TEST(Tokenizer, ConcurrentEncodesAgree) {
  const Tokenizer& tok = test::fixture_tokenizer();
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int round = 0; round < 3; ++round)
        for (const json* c : string_cases())
          if (tok.encode(c->at("text").get<std::string>()) != ids_of(*c)) ++failures[size_t(t)];
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures, std::vector<int>(4, 0));
}

// `krea2 tokenize`: every case through --file (exact bytes) with --json; plain output; --text; errors.
TEST(TokenizerCli, EveryStringCaseThroughTheCli) {
  test::TempDir tmp;
  const std::string tok = test::tokenizer_fixture_dir();
  // One process per case would load the tokenizer 64 times; the cases run as one shell script instead.
  std::string script;
  const auto cases = string_cases();
  for (size_t i = 0; i < cases.size(); ++i) {
    const std::string file = tmp.file("case" + std::to_string(i) + ".txt");
    test::write_file(file, cases[i]->at("text").get<std::string>());
    script += test::cli_path() + " tokenize --tokenizer " + tok + " --file " + file + " --json > " + file +
              ".out || echo FAILED " + std::to_string(i) + "\n";
  }
  test::write_file(tmp.file("run.sh"), script);
  std::string out;
  ASSERT_EQ(test::run_command("sh " + tmp.file("run.sh"), &out), 0) << out;
  EXPECT_EQ(out, "");
  for (size_t i = 0; i < cases.size(); ++i) {
    const std::string text = test::read_file(tmp.file("case" + std::to_string(i) + ".txt.out"));
    ASSERT_FALSE(text.empty()) << cases[i]->at("name");
    EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1) << cases[i]->at("name");
    const json j = json::parse(text);
    EXPECT_EQ(j.size(), 2u);
    EXPECT_EQ(j.at("ids"), cases[i]->at("ids")) << cases[i]->at("name");
    EXPECT_EQ(j.at("tokens"), cases[i]->at("tokens")) << cases[i]->at("name");
  }
}

TEST(TokenizerCli, PlainOutputTextAndErrors) {
  test::TempDir tmp;
  const std::string cli = test::cli_path() + " tokenize ";
  const std::string tok = " --tokenizer " + test::tokenizer_fixture_dir();
  std::string out;
  ASSERT_EQ(test::run_command(cli + tok + " --text 'A red fox standing in fresh snow, looking at the camera'",
                              &out),
            0)
      << out;
  EXPECT_EQ(out, "32 2518 38835 11259 304 7722 11794 11 3330 518 279 6249\n");
  ASSERT_EQ(test::run_command(cli + tok + " --text=''", &out), 0) << out;
  EXPECT_EQ(out, "\n");
  ASSERT_EQ(test::run_command(cli + tok + " --text '<|im_start|>user' --json", &out), 0) << out;
  EXPECT_EQ(out, "{\"ids\":[151644,872],\"tokens\":[\"<|im_start|>\",\"user\"]}\n");
  ASSERT_EQ(test::run_command(cli + "--help", &out), 0);
  EXPECT_THAT(out, HasSubstr("Usage: krea2 tokenize"));

  EXPECT_EQ(test::run_command(cli + "--text hi", &out), 1);
  EXPECT_THAT(out, HasSubstr("missing --tokenizer"));
  EXPECT_EQ(test::run_command(cli + tok, &out), 1);
  EXPECT_THAT(out, HasSubstr("give exactly one of --text and --file"));
  EXPECT_EQ(test::run_command(cli + tok + " --text a --file b", &out), 1);
  EXPECT_THAT(out, HasSubstr("give exactly one of --text and --file"));
  EXPECT_EQ(test::run_command(cli + tok + " --file " + tmp.file("nope.txt"), &out), 1);
  EXPECT_THAT(out, HasSubstr(tmp.file("nope.txt")));
  EXPECT_EQ(test::run_command(cli + "--tokenizer " + tmp.file("none") + " --text hi", &out), 1);
  EXPECT_THAT(out, HasSubstr(tmp.file("none") + ": no such file or folder"));
  test::write_file(tmp.file("bad.txt"), "ok \xFF");
  EXPECT_EQ(test::run_command(cli + tok + " --file " + tmp.file("bad.txt"), &out), 1);
  EXPECT_THAT(out, HasSubstr("krea2 tokenize: error: invalid UTF-8 in the text at byte offset 3"));
  EXPECT_EQ(test::run_command(cli + tok + " --text hi extra", &out), 1);
  EXPECT_THAT(out, HasSubstr("unexpected argument 'extra'"));
}

}  // namespace
}  // namespace krea2
