// krea2 bench --model vae (tools/bench_vae.cpp).
#pragma once
#include <set>
#include <string>

#include "args.h"
#include "progress.h"

namespace krea2::cli {

extern const std::set<std::string> kVaeBenchFlags;
int bench_vae(const Args& args, Progress& progress, double load);

}  // namespace krea2::cli
