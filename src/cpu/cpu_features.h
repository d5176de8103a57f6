// Run-time CPU feature detection (cpuid + xgetbv) and the process-wide choice of instruction set level.
//
// The build floor is AVX2 + FMA + F16C (every file is compiled for it). Kernels for a higher level live in
// their own translation units (*_avx512.cpp) and run only when active_isa() says so: the level the CPU and
// the OS support, lowered by a cap (the environment variable KREA2_ISA=avx2|avx512 read once at start-up,
// or set_isa_cap, e.g. from `--isa`).
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace krea2 {

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;                                // with the OS saving ymm state
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false;  // with zmm + opmask state
  bool avx512_bf16 = false, avx512_vnni = false;
  bool avx_vnni = false;
  // AMX tiles (Sapphire Rapids and later): the CPU bits, the OS saving the tile state (XCR0) and Linux
  // granting this process its use (arch_prctl ARCH_REQ_XCOMP_PERM, asked once at detection).
  bool amx_tile = false, amx_bf16 = false, amx_int8 = false;
  bool os_ymm = false;  // XCR0 has SSE + AVX state
  bool os_zmm = false;  // XCR0 also has opmask + ZMM_Hi256 + Hi16_ZMM state
};

// Detected once (thread-safe), then cached.
const CpuFeatures& cpu_features();

// The processor's brand string (cpuid 0x80000002..4), trimmed; "unknown" when the CPU has none.
const std::string& cpu_brand();

// The features found, lower-case (e.g. "avx2", "avx512_bf16"); a feature whose register state the OS does
// not enable is left out.
std::vector<std::string> cpu_feature_names();
// The same separated by spaces, plus a note when the CPU has AVX-512 but the OS does not enable its state.
std::string cpu_features_string();

// Instruction set levels of our kernels, in increasing order.
enum class Isa : int { kAvx2 = 0, kAvx512 = 1 };
inline constexpr Isa kIsaLevels[] = {Isa::kAvx2, Isa::kAvx512};

const char* isa_name(Isa isa);                        // "avx2", "avx512"
std::optional<Isa> parse_isa(std::string_view name);  // the inverse; nullopt for anything else

// The highest level this CPU and OS support: avx512 needs AVX-512 F, BW, VL and DQ with zmm state enabled.
Isa detected_isa();
bool isa_supported(Isa isa);  // isa <= detected_isa()
// Why `isa` is not supported (the missing features, e.g. "the CPU lacks avx512bw"); "" when it is.
std::string isa_missing(Isa isa);

// The cap: initially KREA2_ISA when set to a level name (any other value is ignored with a warning on
// stderr), else the highest level. set_isa_cap replaces it (the command line wins over the environment).
Isa isa_cap();
void set_isa_cap(Isa cap);
// Where the cap came from: "default", "KREA2_ISA" or "set_isa_cap".
const char* isa_cap_source();

// The level the kernels use: min(isa_cap(), detected_isa()). Cheap (one atomic load after the first call).
Isa active_isa();

}  // namespace krea2
