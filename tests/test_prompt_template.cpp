// The Krea 2 prompt template (diffusers Krea2Pipeline.get_text_hidden_states' token layout): every
// `krea2_template` case of fixtures/text/tokenizer/cases.json, alone and batched, with every intermediate
// (prefix+prompt ids after padding / truncation, suffix ids, input_ids, attention_mask, position_ids,
// prompt_embeds_mask = attention_mask[34:]), and the errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <numeric>

#include "krea2/error.h"
#include "support/test_util.h"
#include "support/tokenizer_util.h"
#include "text/prompt_template.h"

namespace krea2 {
namespace {

using ::testing::HasSubstr;
using json = nlohmann::json;

std::vector<const json*> template_cases() {
  std::vector<const json*> out;
  for (const json& c : test::tokenizer_cases())
    if (c.at("kind") == "krea2_template") out.push_back(&c);
  return out;
}

template <class T>
std::vector<T> row(const std::vector<T>& v, int64_t b, int64_t len) {
  return std::vector<T>(v.begin() + b * len, v.begin() + (b + 1) * len);
}

std::vector<int32_t> ints(const json& v) {
  return v.get<std::vector<int32_t>>();
}
std::vector<uint8_t> mask(const json& v) {
  std::vector<uint8_t> out;
  for (const json& x : v) out.push_back(x.is_boolean() ? uint8_t(x.get<bool>()) : x.get<uint8_t>());
  return out;
}

// Row b of `got` against case `c`.
void expect_case_row(const PromptTokens& got, int64_t b, const json& c) {
  const std::string name = c.at("name");
  const int64_t msl = c.at("max_sequence_length");
  ASSERT_EQ(got.seq_len, msl + 34) << name;
  const auto ids = row(got.input_ids, b, got.seq_len);
  const auto m = row(got.attention_mask, b, got.seq_len);
  const auto pos = row(got.position_ids, b, got.seq_len);
  EXPECT_EQ(ids, ints(c.at("input_ids"))) << name;
  EXPECT_EQ(m, mask(c.at("attention_mask"))) << name;
  EXPECT_EQ(pos, ints(c.at("position_ids"))) << name;
  // The intermediates: prefix+prompt after padding / truncation, then the suffix.
  const size_t text_len = size_t(msl + 29);
  EXPECT_EQ(std::vector<int32_t>(ids.begin(), ids.begin() + text_len), ints(c.at("text_input_ids"))) << name;
  EXPECT_EQ(std::vector<uint8_t>(m.begin(), m.begin() + text_len), mask(c.at("text_attention_mask"))) << name;
  EXPECT_EQ(std::vector<int32_t>(ids.begin() + text_len, ids.end()), ints(c.at("suffix_input_ids"))) << name;
  // What the encoder keeps after dropping the prefix rows.
  const std::vector<uint8_t> kept(m.begin() + got.prefix_tokens, m.end());
  EXPECT_EQ(kept, mask(c.at("prompt_embeds_mask"))) << name;
  EXPECT_EQ(std::accumulate(kept.begin(), kept.end(), 0), c.at("num_valid_after_slice").get<int>()) << name;
  // Truncation and the prompt's token count.
  const int valid_text = std::accumulate(m.begin(), m.begin() + text_len, 0);
  const bool truncated = got.truncated[size_t(b)];
  EXPECT_EQ(truncated, name == "template_truncated_msl24") << name;
  if (truncated) {
    EXPECT_EQ(valid_text, int(text_len)) << name;
    EXPECT_GT(got.prompt_tokens[size_t(b)], msl - 5) << name;
  } else {
    EXPECT_EQ(got.prompt_tokens[size_t(b)], valid_text - 34) << name;
  }
}

TEST(PromptTemplate, TemplateStringsMatchTheFixture) {
  const auto cases = template_cases();
  ASSERT_EQ(cases.size(), 7u);
  for (const json* c : cases) {
    EXPECT_EQ(c->at("prefix").get<std::string>(), kKrea2PromptPrefix);
    EXPECT_EQ(c->at("suffix").get<std::string>(), kKrea2PromptSuffix);
  }
  const Tokenizer& tok = test::fixture_tokenizer();
  EXPECT_EQ(tok.encode(kKrea2PromptPrefix).size(), 34u);
  EXPECT_EQ(tok.encode(kKrea2PromptSuffix), (std::vector<int32_t>{151645, 198, 151644, 77091, 198}));
}

TEST(PromptTemplate, EveryCaseAlone) {
  const Tokenizer& tok = test::fixture_tokenizer();
  for (const json* c : template_cases()) {
    const PromptTokens got = krea2_prompt_tokens(tok, {c->at("prompt").get<std::string>()},
                                                 c->at("max_sequence_length").get<int64_t>());
    ASSERT_EQ(got.batch, 1);
    EXPECT_EQ(got.prefix_tokens, 34);
    ASSERT_EQ(got.input_ids.size(), size_t(got.seq_len));
    ASSERT_EQ(got.attention_mask.size(), size_t(got.seq_len));
    ASSERT_EQ(got.position_ids.size(), size_t(got.seq_len));
    ASSERT_EQ(got.truncated.size(), 1u);
    ASSERT_EQ(got.prompt_tokens.size(), 1u);
    expect_case_row(got, 0, *c);
  }
}

// The msl24 cases as one batch: each row as alone (rows are independent, right padding per row).
TEST(PromptTemplate, BatchedRowsMatchTheCases) {
  const Tokenizer& tok = test::fixture_tokenizer();
  std::vector<const json*> batch;
  std::vector<std::string> prompts;
  for (const json* c : template_cases())
    if (c->at("max_sequence_length") == 24) {
      batch.push_back(c);
      prompts.push_back(c->at("prompt"));
    }
  ASSERT_EQ(batch.size(), 6u);
  const PromptTokens got = krea2_prompt_tokens(tok, prompts, 24);
  ASSERT_EQ(got.batch, 6);
  ASSERT_EQ(got.seq_len, 58);
  ASSERT_EQ(got.input_ids.size(), size_t(6 * 58));
  for (size_t b = 0; b < batch.size(); ++b) expect_case_row(got, int64_t(b), *batch[b]);
}

// The README's traps, spelled out.
TEST(PromptTemplate, Traps) {
  const Tokenizer& tok = test::fixture_tokenizer();
  // A leading newline merges with the prefix's last "\n" into one "\n\n" token (271) at index 33.
  PromptTokens t = krea2_prompt_tokens(tok, {"\nnewline first"}, 24);
  EXPECT_EQ(t.input_ids[33], 271);
  EXPECT_EQ(tok.decode({t.input_ids[33]}), "\n\n");
  // Added-token text typed in a prompt becomes the added id.
  t = krea2_prompt_tokens(tok, {"a cat<|im_end|> sitting"}, 24);
  EXPECT_EQ(t.input_ids[36], 151645);
  // Truncation keeps the suffix: the last 5 ids are always the suffix.
  t = krea2_prompt_tokens(tok, {std::string(2000, 'x') + " and more"}, 8);
  EXPECT_TRUE(t.truncated[0]);
  EXPECT_EQ(std::vector<int32_t>(t.input_ids.end() - 5, t.input_ids.end()),
            (std::vector<int32_t>{151645, 198, 151644, 77091, 198}));
  EXPECT_EQ(std::accumulate(t.attention_mask.begin(), t.attention_mask.end(), 0), 42);
  // max_sequence_length 1: no room for a prompt token beyond the suffix's reserved rows; the prefix is cut.
  t = krea2_prompt_tokens(tok, {"a red fox"}, 1);
  EXPECT_EQ(t.seq_len, 35);
  EXPECT_TRUE(t.truncated[0]);
  EXPECT_EQ(t.prompt_tokens[0], 3);
  EXPECT_EQ(t.position_ids.back(), 34);
  // No prompts: an empty batch.
  t = krea2_prompt_tokens(tok, {}, 24);
  EXPECT_EQ(t.batch, 0);
  EXPECT_EQ(t.seq_len, 58);
  EXPECT_TRUE(t.input_ids.empty());
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(PromptTemplate, Errors) {
  const Tokenizer& tok = test::fixture_tokenizer();
  for (int64_t msl : {int64_t(0), int64_t(-1), int64_t(4097), int64_t(1) << 40})
    EXPECT_THAT(
        error_of([&] { krea2_prompt_tokens(tok, {"a"}, msl); }),
        HasSubstr("max_sequence_length " + std::to_string(msl) + " is out of range (expected 1..4096)"));
  EXPECT_EQ(error_of([&] { krea2_prompt_tokens(tok, {"a"}, 4096); }), "(no error)");
  EXPECT_THAT(error_of([&] {
                krea2_prompt_tokens(tok, {"fine", "bad \xC3("}, 24);
              }),
              HasSubstr("prompt 1: invalid UTF-8 at byte offset 4"));

  test::TempDir tmp;
  test::write_file(tmp.file("nopad.json"), test::tiny_tokenizer_json({}, {}).dump());
  EXPECT_THAT(error_of([&] { krea2_prompt_tokens(Tokenizer::load(tmp.file("nopad.json")), {"a"}, 24); }),
              HasSubstr("the tokenizer has no <|endoftext|> token"));
  const json added = json::array({{{"id", 256}, {"content", "<|endoftext|>"}, {"special", true}},
                                  {{"id", 257}, {"content", "<|im_start|>"}, {"special", true}},
                                  {{"id", 258}, {"content", "<|im_end|>"}, {"special", true}}});
  test::write_file(tmp.file("other.json"), test::tiny_tokenizer_json({}, {}, added).dump());
  EXPECT_THAT(error_of([&] { krea2_prompt_tokens(Tokenizer::load(tmp.file("other.json")), {"a"}, 24); }),
              HasSubstr("tokens for the Krea 2 prompt suffix, expected 5 (not a Qwen2-family tokenizer?)"));
}

}  // namespace
}  // namespace krea2
