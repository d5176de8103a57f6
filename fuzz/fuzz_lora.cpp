// libFuzzer harness for the adapter parser: any bytes must parse (safetensors header, key groups, PEFT
// metadata) and resolve against a model's parameters, or throw krea2::Error; never crash or read out of
// bounds.
#include <cstddef>
#include <cstdint>
#include <span>

#include "io/safetensors.h"
#include "krea2/error.h"
#include "lora/adapter.h"
#include "lora/resolve.h"

namespace {

// The SMALL fixture config (hidden 64, text 48, 3 blocks): the seeds' shapes fit it.
krea2::Config small_config() {
  krea2::Config c;
  c.in_channels = 16;
  c.num_layers = 3;
  c.attention_head_dim = 16;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.intermediate_size = 160;
  c.timestep_embed_dim = 32;
  c.text_hidden_dim = 48;
  c.num_text_layers = 4;
  c.text_num_attention_heads = 4;
  c.text_num_key_value_heads = 4;
  c.text_intermediate_size = 96;
  c.axes_dims_rope = {4, 6, 6};
  return c;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const krea2::ModuleTable small(small_config()), full{krea2::Config{}};
  try {
    const krea2::SafetensorsHeader h = krea2::parse_safetensors(
        std::span(reinterpret_cast<const std::byte*>(data), size), "fuzz.safetensors");
    krea2::LoraAdapterImpl adapter;
    adapter.path = "fuzz.safetensors";
    krea2::parse_adapter(h.tensors, h.metadata, adapter.path, adapter);
    (void)krea2::resolve_adapter(adapter, full, false);
    const krea2::Resolution r = krea2::resolve_adapter(adapter, small);
    // The first and last byte of every resolved factor: AddressSanitizer reports a view outside the input.
    volatile unsigned sink = 0;
    for (const krea2::ResolvedEntry& e : r.entries)
      for (const krea2::TensorView* t : {e.entry->down, e.entry->up, e.entry->diff, e.entry->diff_b})
        if (t && t->nbytes > 0) sink = sink + unsigned(t->data[0]) + unsigned(t->data[t->nbytes - 1]);
  } catch (const krea2::Error&) {
  }
  return 0;
}
