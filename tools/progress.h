// Progress lines on stderr for long work (only on a terminal, never with --quiet).
#pragma once
#include <chrono>
#include <cstdio>
#include <string>

namespace krea2::cli {

class Progress {
 public:
  explicit Progress(bool enabled) : enabled_(enabled), start_(std::chrono::steady_clock::now()) {}
  ~Progress() { finish(); }

  // Overwrites the current line: "<label> [#####.....] done/total  elapsed  ETA".
  void update(const std::string& label, int done, int total) {
    if (!enabled_ || total <= 0) return;
    const double elapsed = seconds();
    const int width = 24, filled = done * width / total;
    std::string bar(size_t(filled), '#');
    bar.append(size_t(width - filled), '.');
    const double eta = done > 0 ? elapsed / done * (total - done) : 0.0;
    std::fprintf(stderr, "\r%-8s [%s] %d/%d  %.1fs  ETA %.1fs   ", label.c_str(), bar.c_str(), done, total,
                 elapsed, eta);
    std::fflush(stderr);
    open_ = true;
  }
  void message(const std::string& text) {
    if (!enabled_) return;
    finish();
    std::fprintf(stderr, "%s\n", text.c_str());
  }
  void finish() {
    if (open_) std::fputc('\n', stderr);
    open_ = false;
  }
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  bool enabled_;
  bool open_ = false;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace krea2::cli
