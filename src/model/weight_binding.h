// Binding checkpoint tensors to a model's parameters, shared by every model krea2 loads (the transformer, the
// text encoder): a Linear weight as a WeightMatrix over the stored bytes (F32 / BF16 / F16, fp8 and int8
// with their ComfyUI scales and convrot rotation, GGUF blocks), a small tensor as a float32 vector. Problems
// are collected (named by tensor), so a load reports them all at once.
#pragma once
#include <cstddef>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "io/checkpoint.h"
#include "ops/linear.h"

namespace krea2 {

class WeightBinder {
 public:
  // `arena(bytes)` returns memory owned by the model being built (scales, aligned copies).
  using ArenaFn = std::function<std::byte*(size_t)>;
  WeightBinder(const Checkpoint& ckpt, ArenaFn arena, std::set<std::string>& used,
               std::vector<std::string>& problems)
      : ckpt_(ckpt), arena_(std::move(arena)), used_(used), problems_(problems) {}

  // The checkpoint tensor `name`, marked used, when it exists and has exactly `shape` (the config's); else
  // nullptr with the problem recorded ("missing tensor ..." / "expected shape ..."). The transformer's loader
  // does its own lookup (several spellings per parameter, flat modulation tables).
  const TensorView* find(const std::string& name, const Shape& shape);
  // w = the Linear weight (rows x cols, shape already checked) stored in t, named `name` in the checkpoint,
  // with the scale / rotation its ComfyUI companions give (marked used).
  void matrix(const TensorView& t, const std::string& name, int64_t rows, int64_t cols, WeightMatrix& w);
  // v = t as float32, times its ComfyUI scale when it has one.
  void vector(const TensorView& t, const std::string& name, std::vector<float>& v);

 private:
  const TensorView* companion(const std::vector<std::string>& names);
  float* owned_floats(const std::vector<float>& values);

  const Checkpoint& ckpt_;
  ArenaFn arena_;
  std::set<std::string>& used_;
  std::vector<std::string>& problems_;
};

// Throws one krea2::Error "<headline>: <problem>" (one problem) or "<headline> (N problems):" with the first
// 20 listed a line each; nothing when `problems` is empty.
void throw_binding_problems(const std::string& headline, const std::vector<std::string>& problems);

}  // namespace krea2
