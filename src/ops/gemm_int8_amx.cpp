// The int8 compute mode on AMX tiles (tdpbssd: s8 x s8 summed into int32; Sapphire Rapids and later): a
// 32x32 microkernel on four 16x16 int32 accumulator tiles, two A tiles (16 rows x 64 depths of x codes) and
// two B tiles (16 depth quads x 16 columns of W^T codes), and its packers. Signed x signed, so unlike the
// vpdpbusd kernels no offset or correction is needed. Compiled with -mavx512*, -mamx-tile/bf16/int8
// (CMakeLists.txt, *_amx.cpp) and reached only through kGemmKernelsInt8Amx (gemm_dispatch.cpp: avx512 +
// int8 compute on a CPU with AMX-INT8 whose tile state Linux granted). Internal linkage only.
//
// Panels are laid out in blocks of 64 depths (16 words of 4 codes), one tile load each:
//   A: per block, 32 rows x 16 words (stride 64 bytes), then after the last block the 32 row scales;
//   B: per block, 16 quad steps x 32 columns (stride 128 bytes, the vpdpbusd layout), then the 32 column
//      scales.
// Depths past kc are zero codes in both operands, up to the end of the last block.
#include "ops/amx_tiles.h"
#include "ops/gemm_kernels.h"
#include "ops/pack_avx512.h"

#if !defined(__AMX_TILE__) || !defined(__AMX_INT8__)
#error "gemm_int8_amx.cpp needs -mamx-tile -mamx-int8 (set for *_amx.cpp by CMakeLists.txt)"
#endif

namespace krea2 {
namespace {

constexpr int64_t kMR = 32;
constexpr int64_t kNR = 32;
constexpr int64_t kBlockDepths = 64;  // one tile row: 64 bytes of codes
constexpr int64_t kBlockWords = kBlockDepths / 4;
static_assert(kMR * kNR <= kGemmMaxTile);

int64_t blocks_of(int64_t kc) {
  return (kc + kBlockDepths - 1) / kBlockDepths;
}

// ---------------------------------------------------------------------------------------------------------
// Microkernel (GemmMicrokernel). Tiles 0..3 accumulate the int32 sums (rows 0..15 / 16..31 x columns 0..15 /
// 16..31), 4 and 5 hold the A rows, 6 and 7 the B columns. The sums exact in int32 (|terms| <= 127 * 127).
//
// fp-contract=off: c = (add ? c : 0) + float(sum) * a_scale * b_scale rounds the products and then the add
// separately, in that order, as every int8 variant does, so all agree bit for bit on equal blockings.
__attribute__((optimize("fp-contract=off"))) void kernel(int64_t kc, const float* __restrict a,
                                                         const float* __restrict b, float* __restrict c,
                                                         int64_t ldc, bool add) {
  configure_full_tiles();
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  const int64_t blocks = blocks_of(kc);
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const float* ab = a + blk * kMR * kBlockWords;
    const float* bb = b + blk * kBlockWords * kNR;
    _tile_loadd(4, ab, 64);
    _tile_loadd(6, bb, 128);
    _tile_loadd(7, bb + 16, 128);
    _tile_dpbssd(0, 4, 6);
    _tile_dpbssd(1, 4, 7);
    _tile_loadd(5, ab + 16 * kBlockWords, 64);
    _tile_dpbssd(2, 5, 6);
    _tile_dpbssd(3, 5, 7);
  }
  alignas(64) int32_t sums[kMR * kNR];
  _tile_stored(0, sums, kNR * 4);
  _tile_stored(1, sums + 16, kNR * 4);
  _tile_stored(2, sums + 16 * kNR, kNR * 4);
  _tile_stored(3, sums + 16 * kNR + 16, kNR * 4);
  const float* a_scale = a + blocks * kMR * kBlockWords;
  const float* b_scale = b + blocks * kBlockWords * kNR;
  const __m512 bs0 = _mm512_load_ps(b_scale), bs1 = _mm512_load_ps(b_scale + 16);
  for (int64_t i = 0; i < kMR; ++i) {
    const __m512 as = _mm512_set1_ps(a_scale[i]);
    float* row = c + i * ldc;
    __m512 r0 = _mm512_cvtepi32_ps(_mm512_load_si512(sums + i * kNR));
    __m512 r1 = _mm512_cvtepi32_ps(_mm512_load_si512(sums + i * kNR + 16));
    r0 = _mm512_mul_ps(_mm512_mul_ps(r0, as), bs0);
    r1 = _mm512_mul_ps(_mm512_mul_ps(r1, as), bs1);
    if (add) {
      r0 = _mm512_add_ps(_mm512_loadu_ps(row), r0);
      r1 = _mm512_add_ps(_mm512_loadu_ps(row + 16), r1);
    }
    _mm512_storeu_ps(row, r0);
    _mm512_storeu_ps(row + 16, r1);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Packing. Rows / columns past the valid ones and depths past kc are zero (scale 0 for missing rows).

void pack_a(const GemmLhs& lhs, int64_t m0, int64_t mc, int64_t k0, int64_t kc, float* out) {
  const int64_t blocks = blocks_of(kc);
  const int64_t panel_words = (kc + 3) / 4 * kMR + kMR * kBlockWords + kMR;  // gemm_a_panel_words
  for (int64_t p = 0; p < mc; p += kMR, out += panel_words) {
    const int64_t rows = mc - p < kMR ? mc - p : kMR;
    const int8_t* src = lhs.q + (m0 + p) * lhs.ld + k0;
    for (int64_t i = 0; i < kMR; ++i) {
      for (int64_t blk = 0; blk < blocks; ++blk) {
        const int64_t k = blk * kBlockDepths;
        const __m512i v = i < rows ? _mm512_maskz_loadu_epi8(first_bytes64(kc - k), src + i * lhs.ld + k)
                                   : _mm512_setzero_si512();
        _mm512_store_si512(out + (blk * kMR + i) * kBlockWords, v);
      }
    }
    float* scales = out + blocks * kMR * kBlockWords;
    for (int64_t i = 0; i < kMR; ++i) scales[i] = i < rows ? lhs.q_scale[m0 + p + i] : 0.0f;
  }
}

void pack_b_i8(const int8_t* w, const float* row_scale, int64_t K, int64_t n0, int64_t nc, int64_t k0,
               int64_t kc, float* out) {
  const int64_t blocks = blocks_of(kc);
  const int64_t panel_words = (kc + 3) / 4 * kNR + kNR * kBlockWords + kNR;  // gemm_b_panel_words
  for (int64_t q = 0; q < nc; q += kNR, out += panel_words) {
    for (int64_t g = 0; g < kNR; g += 16) {
      const int64_t cols = nc - q - g;  // valid weight rows of this group of 16 (may be <= 0)
      const int8_t* src = w + (n0 + q + g) * K + k0;
      for (int64_t blk = 0; blk < blocks; ++blk) {
        const int64_t k = blk * kBlockDepths;
        __m512 r[16];
        for (int64_t j = 0; j < 16; ++j)
          r[j] = j < cols
                     ? _mm512_castsi512_ps(_mm512_maskz_loadu_epi8(first_bytes64(kc - k), src + j * K + k))
                     : _mm512_setzero_ps();
        transpose16x16(r);
        for (int64_t j = 0; j < kBlockWords; ++j)
          _mm512_store_ps(out + (blk * kBlockWords + j) * kNR + g, r[j]);
      }
      _mm512_store_ps(out + blocks * kBlockWords * kNR + g,
                      _mm512_maskz_loadu_ps(first_lanes16(cols), row_scale + n0 + q + g));
    }
  }
}

}  // namespace

const GemmKernels kGemmKernelsInt8Amx = {
    .isa = Isa::kAvx512,
    .compute = Compute::kInt8,
    .name = "amx-int8 32x32",
    .mr = kMR,
    .nr = kNR,
    .depth_per_word = 4,
    .a_extra = kMR * kBlockWords + kMR,
    .b_extra = kNR * kBlockWords + kNR,
    .blocking = {128, 2048, 512, int64_t(96) << 20},
    .prefetch_weights = false,
    .kernel = kernel,
    .pack_a = pack_a,
    .pack_b_f32 = nullptr,
    .pack_b_bf16 = nullptr,
    .pack_b_f16 = nullptr,
    .pack_b_i8 = pack_b_i8,
};

}  // namespace krea2
