// krea2 bench --model text-encoder (tools/bench_text_encoder.cpp).
#pragma once
#include <set>
#include <string>

#include "args.h"
#include "progress.h"

namespace krea2::cli {

extern const std::set<std::string> kTextEncoderBenchFlags;
int bench_text_encoder(const Args& args, Progress& progress, double load);

}  // namespace krea2::cli
