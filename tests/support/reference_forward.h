// An independent float64 reference of Krea2Transformer2DModel.forward, written directly from SPEC.md.
//
// It exists to check the optimized forward (src/model, src/ops) on configurations the upstream fixtures do
// not cover, so it deliberately shares no code with it: plain loops over plain row-major arrays, one function
// per formula of the spec. Weights are read through Model::parameters() (the stored values, widened exactly).
#pragma once
#include <map>
#include <string>

#include "krea2/model.h"
#include "krea2/tensor.h"

namespace krea2::test {

// The velocity (B, N, in_channels), computed in float64 and rounded to float32 at the end.
//
// Semantics, all from SPEC.md:
//  - float64 everywhere except where upstream's float32 rounding moves the result measurably: the timestep
//    embedding rounds f_i, 1000 t and the angles to float32, and the rotary cos/sin are rounded to float32.
//  - Padded text rows are kept: the full (B, L) text is computed, and the mask only removes keys (-inf
//    scores) in the refiner blocks and the main blocks (never in the layerwise blocks).
//  - A query row whose keys are ALL masked (a sample whose text mask is all zeros, in the refiner blocks)
//    gets an attention output of 0. Upstream would produce NaN there (softmax over an all -inf row); we
//    define 0 so the row stays finite. Such rows are padded text rows, which are never attended to in the
//    main blocks, so the choice cannot reach any image output.
//
// If `trace` is given it receives the stage outputs under the fixture trace names and shapes: time_embed
// (B,1,H), time_mod_proj (B,1,6H), text_fusion (B,L,Dt), txt_in (B,L,H), img_in (B,N,H), rotary_emb.cos/.sin
// (L+N,d), transformer_blocks.i (B,L+N,H), final_layer (B,N,C).
//
// Throws krea2::Error on inconsistent input shapes or missing/misshapen parameters.
Tensor reference_forward(const Model& model, const ForwardInputs& in,
                         std::map<std::string, Tensor>* trace = nullptr);

}  // namespace krea2::test
