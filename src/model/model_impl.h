// What a Model holds: config, the weight struct, and whatever owns the bytes the weights point into.
#pragma once
#include <memory>
#include <vector>

#include "io/checkpoint.h"
#include "krea2/config.h"
#include "krea2/model.h"
#include "model/weights.h"

namespace krea2 {

struct ModelImpl {
  Config config;
  LoadInfo load_info;
  ModelWeights weights;
  std::unique_ptr<Checkpoint> checkpoint;  // the mmap'd files, when loaded from disk
  // Owned weight bytes (random models, misaligned F32 copies). Left uninitialised on purpose: whoever fills a
  // buffer touches its pages first (in parallel for random weights) instead of a single-threaded zero fill.
  std::vector<std::unique_ptr<std::byte[]>> arenas;
  std::byte* new_arena(size_t bytes) {
    return arenas.emplace_back(std::make_unique_for_overwrite<std::byte[]>(bytes)).get();
  }
};

}  // namespace krea2
