// libFuzzer harness for the config.json parser: any bytes must give a Config or throw krea2::Error, never
// crash; a parsed config must survive its own round trip.
#include <cstddef>
#include <cstdint>
#include <string>

#include "krea2/config.h"
#include "krea2/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const krea2::Config c =
        krea2::Config::from_json_text(std::string(reinterpret_cast<const char*>(data), size), "fuzz.json");
    const krea2::Config again = krea2::Config::from_json_text(c.to_json_text(), "round trip");
    if (again.to_json_text() != c.to_json_text()) __builtin_trap();
  } catch (const krea2::Error&) {
  }
  return 0;
}
