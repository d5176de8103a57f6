// The GEMM's bf16 variant on AMX tiles (tdpbf16ps; Sapphire Rapids and later): a 32x32 microkernel on four
// 16x16 float32 accumulator tiles, two A tiles (16 rows x 32 depths of x) and two B tiles (16 depth pairs x
// 16 columns of W^T), and its packers, which round x and F32 / F16 weights to bf16 (round to nearest even,
// as the AVX512_BF16 variant) and take BF16 weights as stored. Compiled with -mavx512*, -mamx-tile/bf16/int8
// (CMakeLists.txt, *_amx.cpp) and reached only through kGemmKernelsBf16Amx (gemm_dispatch.cpp: avx512 + bf16
// compute on a CPU with AMX-BF16 whose tile state Linux granted). Internal linkage only, as in the other
// variants.
//
// Panels are laid out in blocks of 32 depths (16 words of bf16 pairs), one tile load each:
//   A: per block, 32 rows x 16 words (row r at word 16 r: a tile of rows 0..15, one of rows 16..31, stride
//      64 bytes);
//   B: per block, 16 depth-pair steps x 32 columns (the AVX512_BF16 layout: a tile of columns 0..15 and one
//      of 16..31, stride 128 bytes).
// A depth count that is not a multiple of 32 is padded with zeros to the next block, in both operands (so
// the padding adds exact zeros); a_extra / b_extra reserve the room.
//
// tdpbf16ps treats bf16 denormal inputs as zero and flushes denormal results, like vdpbf16ps.
#include "ops/amx_tiles.h"
#include "ops/gemm_kernels.h"
#include "ops/pack_avx512.h"

#if !defined(__AMX_TILE__) || !defined(__AMX_BF16__) || !defined(__AVX512BF16__)
#error "gemm_bf16_amx.cpp needs -mamx-tile -mamx-bf16 -mavx512bf16 (set for *_amx.cpp by CMakeLists.txt)"
#endif

namespace krea2 {
namespace {

constexpr int64_t kMR = 32;
constexpr int64_t kNR = 32;
constexpr int64_t kBlockDepths = 32;  // one tile row: 64 bytes of bf16
constexpr int64_t kBlockWords = kBlockDepths / 2;
static_assert(kMR * kNR <= kGemmMaxTile);

int64_t blocks_of(int64_t kc) {
  return (kc + kBlockDepths - 1) / kBlockDepths;
}

// ---------------------------------------------------------------------------------------------------------
// Microkernel (GemmMicrokernel). Tiles 0..3 accumulate c (rows 0..15 / 16..31 x columns 0..15 / 16..31),
// 4 and 5 hold the A rows, 6 and 7 the B columns. With `add` the accumulators start from c itself (a tile
// loads rows of any stride).
void kernel(int64_t kc, const float* __restrict a, const float* __restrict b, float* __restrict c,
            int64_t ldc, bool add) {
  configure_full_tiles();
  const int64_t stride_c = ldc * int64_t(sizeof(float));
  float* c10 = c + 16 * ldc;
  if (add) {
    _tile_loadd(0, c, stride_c);
    _tile_loadd(1, c + 16, stride_c);
    _tile_loadd(2, c10, stride_c);
    _tile_loadd(3, c10 + 16, stride_c);
  } else {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
  }
  const int64_t blocks = blocks_of(kc);
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const float* ab = a + blk * kMR * kBlockWords;
    const float* bb = b + blk * kBlockWords * kNR;
    _tile_loadd(4, ab, 64);
    _tile_loadd(6, bb, 128);
    _tile_loadd(7, bb + 16, 128);
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_loadd(5, ab + 16 * kBlockWords, 64);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  _tile_stored(0, c, stride_c);
  _tile_stored(1, c + 16, stride_c);
  _tile_stored(2, c10, stride_c);
  _tile_stored(3, c10 + 16, stride_c);
}

// ---------------------------------------------------------------------------------------------------------
// Packing (GemmPackA / GemmPackB). Rows / columns past the valid ones and depths past kc are zero.

void pack_a(const GemmLhs& lhs, int64_t m0, int64_t mc, int64_t k0, int64_t kc, float* out) {
  const int64_t blocks = blocks_of(kc);
  const int64_t panel_words = (kc + 1) / 2 * kMR + kMR * kBlockWords;  // gemm_a_panel_words
  for (int64_t p = 0; p < mc; p += kMR, out += panel_words) {
    const int64_t rows = mc - p < kMR ? mc - p : kMR;
    const float* src = lhs.x + (m0 + p) * lhs.ld + k0;
    for (int64_t i = 0; i < kMR; ++i) {
      const auto* row = reinterpret_cast<const unsigned char*>(src + i * lhs.ld);
      for (int64_t blk = 0; blk < blocks; ++blk) {
        const __m512 v =
            i < rows ? load32_as_pairs<DType::F32>(row + blk * kBlockDepths * 4, kc - blk * kBlockDepths)
                     : _mm512_setzero_ps();
        _mm512_store_ps(out + (blk * kMR + i) * kBlockWords, v);
      }
    }
  }
}

// The AVX512_BF16 variant's B layout (ops/pack_avx512.h), padded to whole 16-step blocks.
template <DType kType>
void pack_b(const unsigned char* w, int64_t K, int64_t n0, int64_t nc, int64_t k0, int64_t kc, float* out) {
  pack_b_pairs<kType, kNR>(w, K, n0, nc, k0, kc, out, kNR * kBlockWords, true);
}

}  // namespace

// Blocking: see the table's measurement note in gemm_dispatch.cpp's history; MC 128, KC 512 depths (A and B
// panels of 32 KiB each, streamed from L2 by the tile loads), NC 512.
const GemmKernels kGemmKernelsBf16Amx = {
    .isa = Isa::kAvx512,
    .compute = Compute::kBf16,
    .name = "amx-bf16 32x32",
    .mr = kMR,
    .nr = kNR,
    .depth_per_word = 2,
    .a_extra = kMR * kBlockWords,
    .b_extra = kNR * kBlockWords,
    .blocking = {128, 512, 512, int64_t(24) << 20},
    .prefetch_weights = false,
    .kernel = kernel,
    .pack_a = pack_a,
    .pack_b_f32 = pack_b<DType::F32>,
    .pack_b_bf16 = pack_b<DType::BF16>,
    .pack_b_f16 = pack_b<DType::F16>,
    .pack_b_i8 = nullptr,
};

}  // namespace krea2
