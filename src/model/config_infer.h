// The config of a checkpoint that carries none (GGUF files, single safetensors files without config.json),
// read off the tensor shapes. Rope axes, theta and eps leave no trace in any shape: they take the upstream
// defaults (those of the real model), and the result says so.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "krea2/config.h"
#include "krea2/tensor.h"

namespace krea2 {

struct InferredConfig {
  Config config;
  std::vector<std::string> defaulted;  // config keys no shape determines, left at their defaults
};

// `find` looks a parameter up by its diffusers name (through the checkpoint's name table) and returns null
// when absent. Throws krea2::Error naming `source` and the tensor when a tensor the inference needs is
// missing or has an impossible shape. The result is validated unless `validate` is false (when metadata
// will still override the defaulted values).
InferredConfig infer_config_from_shapes(const std::function<const TensorView*(const std::string&)>& find,
                                        const std::string& source, bool validate = true);

}  // namespace krea2
