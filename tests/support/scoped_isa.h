// Sets the instruction set cap (set_isa_cap) for a scope and restores the previous one: the tests of every
// kernel variant run under it.
#pragma once
#include "cpu/cpu_features.h"

namespace krea2::test {

class ScopedIsa {
 public:
  explicit ScopedIsa(Isa isa) : saved_(isa_cap()) { set_isa_cap(isa); }
  ~ScopedIsa() { set_isa_cap(saved_); }
  ScopedIsa(const ScopedIsa&) = delete;
  ScopedIsa& operator=(const ScopedIsa&) = delete;

 private:
  Isa saved_;
};

}  // namespace krea2::test

#include <ostream>
#include <string>

#include "ops/gemm_kernels.h"

namespace krea2::test {

// Allows or forbids AMX (set_amx_allowed) for a scope and restores the previous setting.
class ScopedAmx {
 public:
  explicit ScopedAmx(bool allowed) : saved_(amx_allowed()) { set_amx_allowed(allowed); }
  ~ScopedAmx() { set_amx_allowed(saved_); }
  ScopedAmx(const ScopedAmx&) = delete;
  ScopedAmx& operator=(const ScopedAmx&) = delete;

 private:
  bool saved_;
};

// Whether the AMX variants are tested: they are opt-in until they have run on AMX hardware (KREA2_AMX=1 in
// the environment turns both them and their tests on), so a CI machine that happens to have AMX does not run
// kernels nobody has seen pass. Empty when they are tested; otherwise why not.
inline std::string amx_tests_skipped(bool cpu_has_it, const char* feature) {
  if (!cpu_has_it)
    return std::string("the CPU lacks ") + feature + " (or the OS does not grant the tile state)";
  return amx_requested_by_environment()
             ? ""
             : "opt-in until verified on AMX hardware: run with KREA2_AMX=1 to test it";
}

// The GEMM variants a compute mode dispatches to, as driver-level tests run them: each ISA level with AMX
// forbidden, and the avx512 level with AMX (bf16 / int8 on CPUs with AMX tiles).
struct GemmVariant {
  Isa isa;
  bool amx;
};
inline constexpr GemmVariant kGemmVariants[] = {
    {Isa::kAvx2, false}, {Isa::kAvx512, false}, {Isa::kAvx512, true}};

inline std::string variant_name(const GemmVariant& v) {
  return std::string(isa_name(v.isa)) + (v.amx ? "_amx" : "");
}
inline void PrintTo(const GemmVariant& v, std::ostream* os) {
  *os << variant_name(v);
}

}  // namespace krea2::test
