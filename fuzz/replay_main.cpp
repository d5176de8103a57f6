// Replays fuzz corpora without libFuzzer: feeds every file under the given folders (recursively) to
// LLVMFuzzerTestOneInput, so a plain build and ctest re-check every seed and every past find. A harness that
// crashes, or lets an exception other than krea2::Error escape, fails the run.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s DIR_OR_FILE...\n", argv[0]);
    return 2;
  }
  size_t inputs = 0;
  auto run = [&](const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "cannot read %s\n", path.c_str());
      return false;
    }
    // An exact-size heap copy, as libFuzzer passes it, so a read past the end is out of bounds.
    const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::vector<uint8_t> data(bytes.begin(), bytes.end());
    LLVMFuzzerTestOneInput(data.data(), data.size());
    ++inputs;
    return true;
  };
  for (int i = 1; i < argc; ++i) {
    const std::filesystem::path root(argv[i]);
    std::error_code ec;
    if (std::filesystem::is_regular_file(root, ec)) {
      if (!run(root)) return 1;
      continue;
    }
    if (!std::filesystem::is_directory(root, ec)) {
      std::fprintf(stderr, "%s: no such file or folder\n", argv[i]);
      return 1;
    }
    for (const auto& entry : std::filesystem::recursive_directory_iterator(root))
      if (entry.is_regular_file() && !run(entry.path())) return 1;
  }
  if (inputs == 0) {
    std::fprintf(stderr, "no inputs found\n");
    return 1;  // an empty corpus would make the test pass while checking nothing
  }
  std::printf("replayed %zu inputs\n", inputs);
  return 0;
}
