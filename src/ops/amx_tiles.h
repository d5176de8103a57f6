// The AMX tile configuration shared by the AMX GEMM variants (gemm_bf16_amx.cpp, gemm_int8_amx.cpp) and the
// AMX peak loop: every tile register 16 rows x 64 bytes. Include only from *_amx.cpp files (compiled with
// -mamx-*): everything here has internal linkage, so no AMX copy of a function can reach other code.
#pragma once
// GCC 12's AVX-512 intrinsics start from a self-initialised "undefined" vector and warn about it wherever
// they are inlined (GCC bug 105593); the warning is about the header, not about our code.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <cstdint>

namespace krea2 {
namespace {

// The 64-byte operand of ldtilecfg (palette 1).
struct alignas(64) AmxTileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t bytes_per_row[16] = {};
  uint8_t rows[16] = {};
};

// All 8 tiles 16 x 64 bytes: an fp32 / int32 tile of 16 x 16, a bf16 tile of 16 rows x 32 depths, an int8
// tile of 16 rows x 64 depths, or their pair / quad layout as the B operand.
inline const AmxTileConfig& full_tiles() {
  static const AmxTileConfig config = [] {
    AmxTileConfig c;
    for (int t = 0; t < 8; ++t) {
      c.bytes_per_row[t] = 64;
      c.rows[t] = 16;
    }
    return c;
  }();
  return config;
}

// Loads the configuration on the calling thread. It is per thread and survives context switches, but other
// AMX code in the process (oneDNN's kernels) may replace it, so every kernel call loads it again (a few
// dozen cycles against ~1000 per call).
inline void configure_full_tiles() {
  _tile_loadconfig(&full_tiles());
}

}  // namespace
}  // namespace krea2
