#include "args.h"

#include <omp.h>
#include <unistd.h>

#include <cstdlib>

namespace krea2::cli {

Args::Args(int argc, char** argv, const std::set<std::string>& known, const std::set<std::string>& switches) {
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) != 0 || a == "--") {
      positional_.push_back(a);
      continue;
    }
    std::string flag = a, value;
    bool has_value = false;
    if (auto eq = a.find('='); eq != std::string::npos) {
      flag = a.substr(0, eq);
      value = a.substr(eq + 1);
      has_value = true;
    }
    if (!known.count(flag) && !switches.count(flag)) throw Error("unknown option " + flag + " (see --help)");
    if (switches.count(flag)) {
      if (has_value) throw Error("option " + flag + " takes no value");
      values_[flag] = "1";
      continue;
    }
    if (!has_value) {
      if (i + 1 >= argc) throw Error("option " + flag + " needs a value");
      value = argv[++i];
    }
    values_[flag] = value;
    repeated_[flag].push_back(value);
  }
}

std::vector<std::string> Args::all(const std::string& flag) const {
  auto it = repeated_.find(flag);
  return it == repeated_.end() ? std::vector<std::string>{} : it->second;
}

std::string Args::get(const std::string& flag, const std::string& fallback) const {
  auto it = values_.find(flag);
  return it == values_.end() ? fallback : it->second;
}

std::string Args::require(const std::string& flag) const {
  auto it = values_.find(flag);
  if (it == values_.end()) throw Error("missing " + flag + " (see --help)");
  return it->second;
}

long long Args::get_int(const std::string& flag, long long fallback) const {
  auto it = values_.find(flag);
  if (it == values_.end()) return fallback;
  char* end = nullptr;
  long long v = std::strtoll(it->second.c_str(), &end, 10);
  if (it->second.empty() || *end != '\0') throw Error(flag + " expects an integer, got '" + it->second + "'");
  return v;
}

double Args::get_double(const std::string& flag, double fallback) const {
  auto it = values_.find(flag);
  if (it == values_.end()) return fallback;
  char* end = nullptr;
  double v = std::strtod(it->second.c_str(), &end);
  if (it->second.empty() || *end != '\0') throw Error(flag + " expects a number, got '" + it->second + "'");
  return v;
}

void set_threads(long long n) {
  if (n < 1 || n > 1024) throw Error("--threads must be between 1 and 1024, found " + std::to_string(n));
  omp_set_num_threads(int(n));
}

bool stderr_is_terminal() {
  return isatty(2) == 1;
}

}  // namespace krea2::cli
