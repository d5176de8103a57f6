// Helpers of the tokenizer tests: the fixture tokenizer (tests/fixtures/text/tokenizer), its cases.json, a
// tokenizer.json derived from the fixture's three files, and tiny byte-level tokenizers written on the fly.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "krea2/tokenizer.h"

namespace krea2::test {

std::string tokenizer_fixture_dir();
const nlohmann::json& tokenizer_cases();  // cases.json's "cases"
// Loaded once from the fixture folder (vocab.json + merges.txt + tokenizer_config.json).
const Tokenizer& fixture_tokenizer();

// The fixture's merges.txt as (left, right) pairs, without the #version line.
std::vector<std::pair<std::string, std::string>> fixture_merges();
// HF tokenizer.json equivalent to the fixture files (the README's "Tokenizer" section); merges as "a b"
// strings, or as ["a", "b"] pairs.
nlohmann::json tokenizer_json_from_fixture(bool pair_merges);

// A tiny byte-level tokenizer.json: the 256 byte characters as ids 0..255, then `extra` tokens from 256 on,
// `merges` ("a b" in byte-level spelling), `added` tokens as tokenizer.json objects (ids given by the
// caller).
nlohmann::json tiny_tokenizer_json(const std::vector<std::string>& extra,
                                   const std::vector<std::string>& merges,
                                   const nlohmann::json& added = nlohmann::json::array());

}  // namespace krea2::test
