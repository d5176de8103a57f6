// Images out: 8-bit RGB PNG files (libpng) with text chunks holding the generation parameters.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace krea2 {

struct Rgb8Image {
  int64_t height = 0, width = 0;
  std::vector<uint8_t> pixels;                            // height x width x 3, row-major, R G B
  std::vector<std::pair<std::string, std::string>> text;  // tEXt (Latin-1 keys) / iTXt (UTF-8 values) chunks
};

// Writes `image` to PATH.tmp, then renames it to PATH (a failure never leaves a partial PATH). Text values
// that are not plain ASCII go into iTXt chunks (UTF-8), the rest into tEXt. krea2::Error naming the path.
void write_png(const std::string& path, const Rgb8Image& image);

// Reads an 8-bit RGB (or RGBA / gray, converted to RGB) PNG with its text chunks; krea2::Error on anything
// else or a malformed file.
Rgb8Image read_png(const std::string& path);

// Splits a batch of (B, H, W, 3) bytes into images.
std::vector<Rgb8Image> split_rgb8_batch(const std::vector<uint8_t>& bytes, int64_t batch, int64_t height,
                                        int64_t width);

}  // namespace krea2
