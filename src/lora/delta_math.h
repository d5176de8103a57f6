// The weight delta of one adapter entry, as the formats define it (factors in lora/adapter.cpp):
//   LoRA  f B A                      LoHa  f (w1_a w1_b) * (w2_a w2_b) (elementwise)
//   LoKr  f kron(w1, w2)             diff  the tensor itself
// either as exact low-rank factors (for run-time application) or added densely to a float32 copy.
// A Hadamard product of rank-r1 and rank-r2 matrices has rank <= r1 r2 (its rank-one terms are the
// elementwise products of the factors' columns and rows), and kron(U1 V1, U2 V2) = kron(U1, U2) kron(V1, V2),
// so LoHa and LoKr have exact low-rank forms too.
#pragma once
#include <cstdint>
#include <optional>
#include <vector>

#include "lora/adapter.h"

namespace krea2 {

// Float32 values of a float view (F32 / F16 / BF16 / F64).
std::vector<float> read_floats(const TensorView& t);

struct LowRank {
  int64_t rank = 0;
  std::vector<float> a;  // (rank, in)
  std::vector<float> b;  // (out, rank), `scale` and the format's factor folded in
};

// `scale` times the entry's weight delta of a (out, in) parameter as low-rank factors: always for LoRA; for
// LoHa / LoKr when 2 k (in + out) <= cost_limit * 2 in out per row (k the rank of the form); else nullopt.
std::optional<LowRank> low_rank_delta(const AdapterEntry& e, int64_t out, int64_t in, double scale,
                                      double cost_limit);

// dst (out x in row-major, or a vector of out * in values) += scale * the entry's weight delta.
void add_dense_delta(const AdapterEntry& e, int64_t out, int64_t in, double scale, float* dst);

}  // namespace krea2
