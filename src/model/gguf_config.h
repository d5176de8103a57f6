// A Krea 2 config from GGUF metadata: one `krea2.<name>` key per diffusers config name (integers, the rope
// axes as an integer array, theta and eps as floats), over a base config (the one the shapes imply).
#pragma once
#include <string>
#include <vector>

#include "krea2/config.h"

namespace krea2 {

class GgufFile;

// `base` with every krea2.* key of `file` applied; the names of the keys applied go to `keys` (empty when the
// file carries none). Unknown krea2.* keys are warnings; a key of the wrong type or an invalid result is a
// krea2::Error naming the file and the key. A general.architecture other than "krea2" is a warning.
Config apply_gguf_config_metadata(const GgufFile& file, const Config& base, std::vector<std::string>* keys,
                                  std::vector<std::string>* warnings);

}  // namespace krea2
