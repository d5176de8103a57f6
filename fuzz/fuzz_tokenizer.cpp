// libFuzzer harness for the tokenizer: any bytes as text to the fixture tokenizer (loaded once) must give ids
// or a krea2::Error (invalid UTF-8), never crash; valid ids decode, and the decoded text encodes to the same
// ids. Inputs starting with '{' are also parsed as a tokenizer.json, and a tokenizer built from them encodes
// a few fixed strings.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "krea2/error.h"
#include "krea2/tokenizer.h"
#include "text/tokenizer_impl.h"

namespace {

void check_ids(const krea2::Tokenizer& tok, const std::vector<int32_t>& ids) {
  for (int32_t id : ids)
    if (id < 0 || id >= tok.vocab_size()) __builtin_trap();
  for (int32_t id : ids) (void)tok.token_text(id);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const krea2::Tokenizer fixture = krea2::Tokenizer::load(KREA2_TOKENIZER_FIXTURE_DIR);
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const std::vector<int32_t> ids = fixture.encode(text);
    check_ids(fixture, ids);
    if (fixture.encode(fixture.decode(ids)) != ids) __builtin_trap();
  } catch (const krea2::Error&) {
  }
  if (size > 0 && data[0] == '{') {
    try {
      const krea2::Tokenizer tok = krea2::text::tokenizer_from_json_text(text, "fuzz.json");
      for (const char* s :
           {"a red fox<|im_end|>\n", "  \t x\r\n\n", "caf\xC3\xA9 caf\x65\xCC\x81 123 ##", ""}) {
        const std::vector<int32_t> ids = tok.encode(s);
        check_ids(tok, ids);
        (void)tok.decode(ids);
      }
      (void)tok.describe();
    } catch (const krea2::Error&) {
    }
  }
  return 0;
}
