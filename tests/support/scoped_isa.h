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
