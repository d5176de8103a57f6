// libFuzzer harness for the GGUF header parser: any bytes must parse or throw krea2::Error, never crash, read
// out of bounds, or allocate out of proportion to the input.
#include <cstddef>
#include <cstdint>
#include <span>

#include "io/gguf.h"
#include "krea2/error.h"

namespace {

// Every typed accessor on every key: each returns a value or throws krea2::Error.
void read_all_metadata(const krea2::GgufHeader& h) {
  for (const auto& entry : h.metadata()) {
    const std::string& key = entry.first;
    auto call = [](auto&& f) {
      try {
        f();
      } catch (const krea2::Error&) {
      }
    };
    call([&] { h.get_int(key); });
    call([&] { h.get_float(key); });
    call([&] { h.get_bool(key); });
    call([&] { h.get_string(key); });
    call([&] { h.get_int_array(key); });
    call([&] { h.get_float_array(key); });
    call([&] { h.get_string_array(key); });
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const krea2::GgufHeader h =
        krea2::parse_gguf(std::span(reinterpret_cast<const std::byte*>(data), size), "fuzz.gguf");
    // The first and last byte of every view: AddressSanitizer reports a view reaching outside the input.
    volatile unsigned sink = 0;
    for (const krea2::TensorView& t : h.tensors()) {
      sink = sink + unsigned(t.numel() & 1);  // the shape's element count must not overflow (UBSan)
      if (t.nbytes > 0) sink = sink + unsigned(t.data[0]) + unsigned(t.data[t.nbytes - 1]);
      if (h.find(t.name) != &t) __builtin_trap();  // find() agrees with the list
    }
    read_all_metadata(h);
  } catch (const krea2::Error&) {
  }
  return 0;
}
