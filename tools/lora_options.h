// The adapter options of `krea2 forward` and `krea2 generate`: --lora FILE[:STRENGTH] (repeatable),
// --lora-scale S, --lora-merge, --lora-ignore-unknown.
#pragma once
#include <set>
#include <string>

#include "args.h"
#include "krea2/model.h"

namespace krea2::cli {

extern const std::set<std::string> kLoraValueFlags;
extern const std::set<std::string> kLoraSwitches;
// Their --help lines, aligned at column `column`.
std::string lora_help(int column);

struct LoraSetup {
  Model model;
  float forward_scale = 1.0f;  // ForwardOptions::lora_scale for every call
};

// `model` with the --lora adapters attached (unchanged without --lora); warnings go to stderr.
// With --lora-merge, --lora-scale is folded into the merged strengths (calls then run at scale 1).
LoraSetup apply_lora_options(const Args& args, const Model& model);

}  // namespace krea2::cli
