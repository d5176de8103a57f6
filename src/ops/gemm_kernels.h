// What differs between the GEMM's variants (instruction set x compute mode): the register block (MR x NR),
// its microkernel, the packers that lay operands out for it, and the default cache blocking. The driver
// (ops/gemm.cpp: blocking, threads, column chunks, row phases, prefetch, edge tiles, decoded weights) is
// shared and calls these through the table, one indirect call per microkernel run (~thousands of cycles
// each).
//
// Each variant lives in its own translation unit (gemm_avx2.cpp, gemm_avx512.cpp, gemm_bf16_avx512bf16.cpp,
// ..., compiled with its ISA's flags) and defines one constant-initialised table, so that merely linking or
// reading it runs no code of that ISA. Adding a variant: a gemm_<variant>.cpp defining its table, plus one
// case in gemm_kernels(Isa, Compute) (gemm_dispatch.cpp).
//
// Packed panels are arrays of 32-bit words. A word holds `depth_per_word` consecutive depths of one row (A)
// or column (B): 1 float32 (f32), 2 bf16 (bf16, the lower half holding the even depth), 4 int8 (int8, the
// first byte holding the first depth). A panel of depth kc holds words(kc) = ceil(kc / depth_per_word) steps
// of MR (A) or NR (B) words, then `a_extra` / `b_extra` words the kernel reads after them (int8: the scales
// and offset corrections below).
#pragma once
#include <cstdint>

#include "cpu/cpu_features.h"
#include "krea2/compute.h"
#include "ops/gemm.h"

namespace krea2 {

// c[0..MR) x [0..NR) (row stride ldc) = (add ? c : 0) + the product of an A panel (depth kc, MR rows) and a
// B panel (depth kc, NR columns, 64-byte aligned), for the full tile. int8: the product is
// float(sum_k a[k][i] b[k][j] - offset[j]) * a_scale[i] * b_scale[j], the integer sum exact in int32.
using GemmMicrokernel = void (*)(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool add);

// The left operand as the packers read it: float rows (f32, bf16), or (int8) rows of int8 codes with one
// scale per row (x[m][k] ~ q[m][k] * q_scale[m]; codes within +-127).
struct GemmLhs {
  const float* x = nullptr;
  const int8_t* q = nullptr;
  const float* q_scale = nullptr;
  int64_t ld = 0;  // row stride in elements of x or q
};

// Packs rows [m0, m0 + mc) x depths [k0, k0 + kc) of the left operand into ceil(mc / MR) panels (rows past
// mc are zero). May write up to kGemmPackSlack words past the last panel.
using GemmPackA = void (*)(const GemmLhs& x, int64_t m0, int64_t mc, int64_t k0, int64_t kc, float* out);

// Packs W^T rows [k0, k0 + kc) x columns [n0, n0 + nc) (= rows n0.. of the weight w, K elements each, stored
// as one float type) into ceil(nc / NR) panels, 64-byte aligned (columns past nc are zero).
using GemmPackB = void (*)(const unsigned char* w, int64_t K, int64_t n0, int64_t nc, int64_t k0, int64_t kc,
                           float* out);

// int8 variants: the same from int8 weight rows with one scale per row (w[n][k] ~ q[n][k] * row_scale[n]),
// writing after each panel's words the NR column scales (float) and the NR offset corrections (int32) the
// kernel subtracts (zero for kernels that need none).
using GemmPackBI8 = void (*)(const int8_t* w, const float* row_scale, int64_t K, int64_t n0, int64_t nc,
                             int64_t k0, int64_t kc, float* out);

constexpr int64_t kGemmPackSlack = 16;
constexpr int64_t kGemmMaxTile = 16 * 64;  // floats of the driver's edge tile: MR * NR must fit

struct GemmKernels {
  Isa isa;
  Compute compute;
  const char* name;  // e.g. "avx512 12x32", "avx512-bf16 12x32"
  int64_t mr, nr;
  int64_t depth_per_word;    // 1 (f32), 2 (bf16), 4 (int8)
  int64_t a_extra, b_extra;  // words after each A / B panel (int8: MR scales; NR scales + NR corrections)
  GemmBlocking blocking;     // defaults, measured per variant
  // Whether the driver prefetches the next depth block's weight rows into L2 while a chunk computes (helps
  // the AVX2 kernel on Zen 4; with the AVX-512 kernel the prefetches stall more than they save).
  bool prefetch_weights;
  GemmMicrokernel kernel;
  GemmPackA pack_a;
  GemmPackB pack_b_f32, pack_b_bf16, pack_b_f16;  // float variants
  GemmPackBI8 pack_b_i8;                          // int8 variants
};

// Words of one packed A / B panel of depth kc.
inline int64_t gemm_a_panel_words(const GemmKernels& k, int64_t kc) {
  return (kc + k.depth_per_word - 1) / k.depth_per_word * k.mr + k.a_extra;
}
inline int64_t gemm_b_panel_words(const GemmKernels& k, int64_t kc) {
  return (kc + k.depth_per_word - 1) / k.depth_per_word * k.nr + k.b_extra;
}

// float32
extern const GemmKernels kGemmKernelsAvx2;
extern const GemmKernels kGemmKernelsAvx512;
// bf16: vdpbf16ps on AVX512_BF16; elsewhere the float32 kernels on operands rounded to bf16 when packed
extern const GemmKernels kGemmKernelsBf16Avx512Bf16;
extern const GemmKernels kGemmKernelsBf16Avx2;
extern const GemmKernels kGemmKernelsBf16Avx512;
// int8: vpdpbusd on AVX512_VNNI or, at the AVX2 level, AVX-VNNI (u8 x s8 with the +128 offset corrected);
// an exact AVX2 kernel (vpmaddubsw on |b| and sign-adjusted a) elsewhere
extern const GemmKernels kGemmKernelsInt8Avx512Vnni;
extern const GemmKernels kGemmKernelsInt8AvxVnni;
extern const GemmKernels kGemmKernelsInt8Avx2;
// AMX tiles (tdpbf16ps, tdpbssd) for bf16 and int8 at the avx512 level, on CPUs with AMX-BF16 / AMX-INT8
// whose tile state Linux granted (cpu_features().amx_*)
extern const GemmKernels kGemmKernelsBf16Amx;
extern const GemmKernels kGemmKernelsInt8Amx;

// Whether the bf16 and int8 modes may use AMX where the CPU has it: initially only with KREA2_AMX=1 (or on),
// read once (opt-in until the kernels have run on AMX hardware: gemm_dispatch.cpp); set_amx_allowed replaces
// that (tests, benchmarks). With AMX allowed and present, bf16 at avx512 takes AMX unless a Bf16Choice forces
// native / emulated.
bool amx_allowed();
void set_amx_allowed(bool allowed);
// Whether KREA2_AMX asks for AMX (1 or on), whatever set_amx_allowed did since (tests gate on it).
bool amx_requested_by_environment();

// bf16 at the AVX-512 level with AVX512_BF16: vdpbf16ps or the float32 kernel on rounded operands, whichever
// microkernel measured faster at first use (gemm_dispatch.cpp; KREA2_BF16_KERNEL=native|emulated fixes it),
// or forced here (tests, benchmarks).
enum class Bf16Choice : int { kMeasured, kNative, kEmulated };
void set_bf16_avx512_choice(Bf16Choice choice);

// The one dispatch point: the variant for `isa` (callers pass active_isa(), so the CPU has it) and compute
// mode (the best the CPU has at that level: avx512 + bf16 picks vdpbf16ps only where AVX512_BF16 exists).
const GemmKernels& gemm_kernels(Isa isa, Compute compute = Compute::kF32);

}  // namespace krea2
