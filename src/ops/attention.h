// Multi-head attention with grouped KV heads, computed in tiles with an online softmax: memory O(rows), never
// an L x L matrix. Used for the main blocks (one segment per sample) and the text fusion blocks (many short
// segments).
#pragma once
#include <cstdint>
#include <vector>

namespace krea2 {

struct AttentionShape {
  int num_heads = 1;     // query heads
  int num_kv_heads = 1;  // key/value heads; query head h uses kv head h / (num_heads / num_kv_heads)
  int head_dim = 1;
};

// Rows [begin, begin + length) attend only to each other; with `causal`, row begin + i only to rows
// begin .. begin + i (a decoder's self-attention).
struct Segment {
  int64_t begin = 0;
  int64_t length = 0;
  bool causal = false;
};

// q: (rows, num_heads * head_dim), row stride ldq; k, v: (rows, num_kv_heads * head_dim), strides ldk, ldv;
// out: (rows, num_heads * head_dim), stride ldo. Rows not covered by any segment are left untouched.
// key_valid (optional, indexed by global row): keys with 0 are never attended to. A query whose segment holds
// no valid key (under causal: none at or before it) gets an all-zero output (never NaN). Scale is
// 1/sqrt(head_dim). Uses all OpenMP threads.
void attention(const float* q, int64_t ldq, const float* k, int64_t ldk, const float* v, int64_t ldv,
               float* out, int64_t ldo, const AttentionShape& shape, const std::vector<Segment>& segments,
               const uint8_t* key_valid = nullptr);

// The tile kernels attention() uses now (chosen by active_isa()), e.g. "avx512 qk 8x48 pv 12x32".
const char* attention_kernels_name();

// Plain scalar reference (double accumulation, full softmax per query row), for tests.
void attention_reference(const float* q, int64_t ldq, const float* k, int64_t ldk, const float* v,
                         int64_t ldv, float* out, int64_t ldo, const AttentionShape& shape,
                         const std::vector<Segment>& segments, const uint8_t* key_valid = nullptr);

}  // namespace krea2
