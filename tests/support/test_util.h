// Helpers shared by the tests: fixture paths, error metrics, temporary folders.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "krea2/tensor.h"

namespace krea2::test {

// tests/fixtures/<name> (copied from the shared upstream fixtures).
std::string fixture_dir(const std::string& name);
// Path of the built krea2 CLI.
std::string cli_path();

// ||got - ref|| / ||ref||.
double rel_l2(const float* got, const float* ref, size_t n);
double max_abs_diff(const float* got, const float* ref, size_t n);
double max_abs(const float* x, size_t n);

// A fresh empty folder under the system temp dir, removed by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Writes `bytes` to `path` (binary).
void write_file(const std::string& path, const std::string& bytes);
std::string read_file(const std::string& path);

// Runs a shell command, returns its exit status; stdout+stderr captured into `output` if given.
int run_command(const std::string& command, std::string* output = nullptr);

// Deterministic uniform(-1, 1) values.
std::vector<float> random_floats(size_t n, uint64_t seed, float scale = 1.0f);

}  // namespace krea2::test
