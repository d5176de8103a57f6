// What a Model holds: config, the weight struct, and whatever owns the bytes the weights point into.
#pragma once
#include <memory>
#include <vector>

#include "io/checkpoint.h"
#include "krea2/config.h"
#include "model/weights.h"

namespace krea2 {

struct ModelImpl {
  Config config;
  ModelWeights weights;
  std::unique_ptr<Checkpoint> checkpoint;         // the mmap'd files, when loaded from disk
  std::vector<std::vector<std::byte>> arenas;     // owned weight bytes (random models, misaligned F32 copies)
};

}  // namespace krea2
