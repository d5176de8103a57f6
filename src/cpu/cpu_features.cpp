#include "cpu/cpu_features.h"

#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace krea2 {
namespace {

struct Regs {
  unsigned a = 0, b = 0, c = 0, d = 0;
};

Regs cpuid(unsigned leaf, unsigned sub) {
  Regs r;
  __cpuid_count(leaf, sub, r.a, r.b, r.c, r.d);
  return r;
}

bool bit(unsigned v, int i) {
  return (v >> i) & 1u;
}

// XCR0 (which register state the OS saves on context switches). xgetbv is only valid with OSXSAVE set.
uint64_t xcr0() {
  unsigned lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (uint64_t(hi) << 32) | lo;
}

// Linux (5.16 and later) lets a process use the AMX tile data state only after asking for it; the answer
// covers every thread of the process. Anything else (older kernels, seccomp) refuses, and AMX stays unused.
bool request_amx_permission() {
#if defined(__linux__) && defined(SYS_arch_prctl)
  constexpr int kArchReqXcompPerm = 0x1023;
  constexpr unsigned long kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
  return false;
#endif
}

CpuFeatures detect() {
  CpuFeatures f;
  const unsigned max_leaf = __get_cpuid_max(0, nullptr);
  if (max_leaf < 1) return f;
  const Regs l1 = cpuid(1, 0);
  const bool osxsave = bit(l1.c, 27), avx = bit(l1.c, 28);
  const uint64_t xcr = osxsave ? xcr0() : 0;
  f.os_ymm = osxsave && avx && (xcr & 0x6) == 0x6;  // SSE + AVX state
  f.os_zmm = f.os_ymm && (xcr & 0xE0) == 0xE0;      // opmask, ZMM_Hi256, Hi16_ZMM
  f.fma = f.os_ymm && bit(l1.c, 12);
  f.f16c = f.os_ymm && bit(l1.c, 29);
  if (max_leaf < 7) return f;
  const Regs l7 = cpuid(7, 0);
  f.avx2 = f.os_ymm && bit(l7.b, 5);
  f.avx512f = f.os_zmm && bit(l7.b, 16);
  f.avx512dq = f.avx512f && bit(l7.b, 17);
  f.avx512bw = f.avx512f && bit(l7.b, 30);
  f.avx512vl = f.avx512f && bit(l7.b, 31);
  f.avx512_vnni = f.avx512f && bit(l7.c, 11);
  // AMX: the tile bits (EDX 24, 22, 25), XCR0's XTILECFG + XTILEDATA state (bits 17, 18), the permission.
  // Our AMX kernels are AVX-512 code around the tile instructions, so they need the zmm state too.
  if (f.avx512f && bit(l7.d, 24) && (xcr & 0x60000) == 0x60000 && request_amx_permission()) {
    f.amx_tile = true;
    f.amx_bf16 = bit(l7.d, 22);
    f.amx_int8 = bit(l7.d, 25);
  }
  if (l7.a >= 1) {  // sub-leaf 1 exists
    const Regs l71 = cpuid(7, 1);
    f.avx_vnni = f.os_ymm && bit(l71.a, 4);
    f.avx512_bf16 = f.avx512f && bit(l71.a, 5);
  }
  return f;
}

// Whether the CPU has the instruction bits whatever the OS enables (to say why a feature is missing).
bool cpu_has_avx512f_bit() {
  return __get_cpuid_max(0, nullptr) >= 7 && bit(cpuid(7, 0).b, 16);
}

bool cpu_has_amx_bit() {
  return __get_cpuid_max(0, nullptr) >= 7 && bit(cpuid(7, 0).d, 24);
}

std::optional<Isa> env_cap() {
  const char* v = std::getenv("KREA2_ISA");
  if (v == nullptr || *v == '\0') return std::nullopt;
  const std::optional<Isa> isa = parse_isa(v);
  if (!isa) std::fprintf(stderr, "krea2: warning: ignoring KREA2_ISA=%s (expected avx2 or avx512)\n", v);
  return isa;
}

// The cap and where it came from; initialised from the environment on first use.
struct CapState {
  std::atomic<int> cap;
  std::atomic<const char*> source;
  CapState() {
    const std::optional<Isa> e = env_cap();
    cap = int(e.value_or(Isa::kAvx512));
    source = e ? "KREA2_ISA" : "default";
  }
};

CapState& cap_state() {
  static CapState state;
  return state;
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

const std::string& cpu_brand() {
  static const std::string brand = [] {
    if (__get_cpuid_max(0x80000000u, nullptr) < 0x80000004u) return std::string("unknown");
    char s[49] = {};
    for (unsigned i = 0; i < 3; ++i) {
      const Regs r = cpuid(0x80000002u + i, 0);
      std::memcpy(s + 16 * i, &r.a, 4);
      std::memcpy(s + 16 * i + 4, &r.b, 4);
      std::memcpy(s + 16 * i + 8, &r.c, 4);
      std::memcpy(s + 16 * i + 12, &r.d, 4);
    }
    std::string b(s);
    b.erase(0, b.find_first_not_of(' '));
    b.erase(b.find_last_not_of(' ') + 1);
    return b.empty() ? std::string("unknown") : b;
  }();
  return brand;
}

std::vector<std::string> cpu_feature_names() {
  const CpuFeatures& f = cpu_features();
  const std::pair<bool, const char*> names[] = {{f.avx2, "avx2"},
                                                {f.fma, "fma"},
                                                {f.f16c, "f16c"},
                                                {f.avx512f, "avx512f"},
                                                {f.avx512bw, "avx512bw"},
                                                {f.avx512vl, "avx512vl"},
                                                {f.avx512dq, "avx512dq"},
                                                {f.avx512_bf16, "avx512_bf16"},
                                                {f.avx512_vnni, "avx512_vnni"},
                                                {f.avx_vnni, "avx_vnni"},
                                                {f.amx_tile, "amx_tile"},
                                                {f.amx_bf16, "amx_bf16"},
                                                {f.amx_int8, "amx_int8"}};
  std::vector<std::string> found;
  for (const auto& [has, name] : names)
    if (has) found.emplace_back(name);
  return found;
}

std::string cpu_features_string() {
  std::string s;
  for (const std::string& name : cpu_feature_names()) s += (s.empty() ? "" : " ") + name;
  if (s.empty()) s = "none of avx2 fma f16c avx512*";
  if (!cpu_features().os_zmm && cpu_has_avx512f_bit())
    s += " (AVX-512 present, but the OS does not enable its state)";
  if (!cpu_features().amx_tile && cpu_has_amx_bit())
    s += " (AMX present, but the OS does not enable or grant its tile state)";
  return s;
}

const char* isa_name(Isa isa) {
  return isa == Isa::kAvx512 ? "avx512" : "avx2";
}

std::optional<Isa> parse_isa(std::string_view name) {
  for (Isa isa : kIsaLevels)
    if (name == isa_name(isa)) return isa;
  return std::nullopt;
}

Isa detected_isa() {
  static const Isa isa = isa_missing(Isa::kAvx512).empty() ? Isa::kAvx512 : Isa::kAvx2;
  return isa;
}

bool isa_supported(Isa isa) {
  return int(isa) <= int(detected_isa());
}

std::string isa_missing(Isa isa) {
  const CpuFeatures& f = cpu_features();
  std::string missing;
  auto need = [&](bool has, const char* name) {
    if (!has) missing += (missing.empty() ? "" : ", ") + std::string(name);
  };
  need(f.avx2, "avx2");
  need(f.fma, "fma");
  need(f.f16c, "f16c");
  if (isa == Isa::kAvx512) {
    if (!f.os_zmm && cpu_has_avx512f_bit()) return "the OS does not enable the zmm register state";
    need(f.avx512f, "avx512f");
    need(f.avx512bw, "avx512bw");
    need(f.avx512vl, "avx512vl");
    need(f.avx512dq, "avx512dq");
  }
  return missing.empty() ? "" : "the CPU lacks " + missing;
}

Isa isa_cap() {
  return Isa(cap_state().cap.load(std::memory_order_relaxed));
}

void set_isa_cap(Isa cap) {
  CapState& s = cap_state();
  s.cap.store(int(cap), std::memory_order_relaxed);
  s.source.store("set_isa_cap", std::memory_order_relaxed);
}

const char* isa_cap_source() {
  return cap_state().source.load(std::memory_order_relaxed);
}

Isa active_isa() {
  return Isa(std::min(int(isa_cap()), int(detected_isa())));
}

}  // namespace krea2
