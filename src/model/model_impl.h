// What a Model holds: config, the weight struct, and whatever owns the bytes the weights point into.
#pragma once
#include <memory>
#include <vector>

#include "io/checkpoint.h"
#include "krea2/compute.h"
#include "krea2/config.h"
#include "krea2/model.h"
#include "model/weights.h"

namespace krea2 {

struct LoraState;

struct ModelImpl {
  Config config;
  LoadInfo load_info;
  ModelWeights weights;
  std::unique_ptr<Checkpoint> checkpoint;  // the mmap'd files, when loaded from disk
  // The compute mode of the products (Model::with_compute), and the model as loaded, whose bytes this one's
  // weights may still point into (kept alive here; null for the loaded model itself).
  Compute compute = Compute::kF32;
  std::shared_ptr<const ModelImpl> base;
  // Model::with_loras: the model the adapters were attached to (its weights and arenas are shared), and
  // what the adapters add (lora/lora_state.h). Both null without adapters.
  std::shared_ptr<const ModelImpl> lora_parent;
  std::shared_ptr<const LoraState> lora;
  // Owned weight bytes (random models, misaligned F32 copies). Left uninitialised on purpose: whoever fills a
  // buffer touches its pages first (in parallel for random weights) instead of a single-threaded zero fill.
  std::vector<std::unique_ptr<std::byte[]>> arenas;
  std::byte* new_arena(size_t bytes) {
    return arenas.emplace_back(std::make_unique_for_overwrite<std::byte[]>(bytes)).get();
  }
};

}  // namespace krea2
