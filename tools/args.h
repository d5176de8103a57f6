// Minimal command-line parsing for the krea2 subcommands: --flag value, --flag=value, boolean --switch.
#pragma once
#include <map>
#include <set>
#include <string>
#include <vector>

#include "krea2/error.h"

namespace krea2::cli {

class Args {
 public:
  // `switches`: flags that take no value. Any other --flag takes the next argument as its value. Positional
  // arguments are kept in order. Throws krea2::Error on an unknown flag (not in `known`) or a missing value.
  Args(int argc, char** argv, const std::set<std::string>& known, const std::set<std::string>& switches);

  bool has(const std::string& flag) const { return values_.count(flag) > 0; }
  // The value of a flag given more than once is its last one; all() lists every value in order.
  std::string get(const std::string& flag, const std::string& fallback = "") const;
  std::vector<std::string> all(const std::string& flag) const;
  std::string require(const std::string& flag) const;  // error "missing --flag"
  long long get_int(const std::string& flag, long long fallback) const;
  double get_double(const std::string& flag, double fallback) const;
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  std::map<std::string, std::string> values_;
  std::map<std::string, std::vector<std::string>> repeated_;
  std::vector<std::string> positional_;
};

// Sets the OpenMP (and so OpenBLAS) thread count; error unless 1 <= n <= 1024.
void set_threads(long long n);

// True when stderr is a terminal (progress output is shown only then, unless --quiet).
bool stderr_is_terminal();

}  // namespace krea2::cli
