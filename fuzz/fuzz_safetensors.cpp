// libFuzzer harness for the safetensors header parser: any bytes must parse or throw krea2::Error, never
// crash or read out of bounds.
#include <cstddef>
#include <cstdint>
#include <span>

#include "io/safetensors.h"
#include "krea2/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const krea2::SafetensorsHeader h = krea2::parse_safetensors(
        std::span(reinterpret_cast<const std::byte*>(data), size), "fuzz.safetensors");
    // The first and last byte of every view: AddressSanitizer reports a view reaching outside the input.
    volatile unsigned sink = 0;
    for (const krea2::TensorView& t : h.tensors) {
      if (t.nbytes > 0) sink = sink + unsigned(t.data[0]) + unsigned(t.data[t.nbytes - 1]);
    }
  } catch (const krea2::Error&) {
  }
  return 0;
}
