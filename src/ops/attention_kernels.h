// What differs between the attention's instruction set variants: the tile-level steps of one key tile
// (scores, online softmax, V packing, P * V). The driver (ops/attention.cpp: work items, Q^T transposes,
// masks, the final 1 / l) is shared and calls these through one table, chosen once per attention() call by
// active_isa(); one indirect call per step of a key tile (each thousands of cycles at the main shape).
//
// Each non-baseline variant lives in its own translation unit (attention_avx512.cpp) and defines one
// constant-initialised table, so linking or reading it runs no code of that ISA.
#pragma once
#include <cstdint>

namespace krea2 {

struct AttentionTileKernels {
  const char* name;
  // Query lanes (ldqt, the row stride of Q^T and of the score tile) are padded with zero queries to a
  // multiple of this (8 or 16).
  int lanes;
  // st[r * ldqt + c] = sum_d k[r * ldk + d] * qt[d * ldqt + c] for r < nk, c < ldqt.
  void (*scores)(const float* k, int64_t ldk, int nk, const float* qt, int ldqt, int hd, float* st);
  // The online-softmax step on the score tile (see softmax_tile in attention.cpp); valid == null: no key of
  // the tile is masked, else rows with valid[r] == 0 are excluded (at least one row is valid).
  void (*softmax)(float* st, int ldqt, int nk, const uint8_t* valid, float* m, float* l, float* alpha);
  // Copies a V tile (nk rows of hd values, stride ldv) into the layout `pv` reads, zero-padded to ldo
  // columns (a multiple of 8); writes exactly nk * ldo floats.
  void (*pack_values)(const float* v, int64_t ldv, int nk, int hd, int ldo, float* dst);
  // o[i * ldo + n] = (alpha ? alpha[i] * o[i * ldo + n] : 0) + sum_r p[r * ldqt + i] * vpack(r, n) for
  // i < mq, n < ldo.
  void (*pv)(const float* p, int ldqt, int nk, int mq, const float* vpack, int ldo, const float* alpha,
             float* o);
};

extern const AttentionTileKernels kAttentionTileKernelsAvx512;

}  // namespace krea2
