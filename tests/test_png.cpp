// PNG output: round trip of pixels and text chunks (ASCII tEXt, UTF-8 iTXt), atomic writes, bad input.
#include <gtest/gtest.h>

#include <filesystem>

#include "krea2/error.h"
#include "krea2/image.h"
#include "support/test_util.h"

namespace krea2 {
namespace {

Rgb8Image gradient(int64_t h, int64_t w) {
  Rgb8Image im;
  im.height = h, im.width = w;
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x) {
      im.pixels.push_back(uint8_t(x * 255 / std::max<int64_t>(1, w - 1)));
      im.pixels.push_back(uint8_t(y * 255 / std::max<int64_t>(1, h - 1)));
      im.pixels.push_back(uint8_t((x * 7 + y * 13) & 255));
    }
  return im;
}

TEST(Png, RoundTripsPixelsAndText) {
  test::TempDir dir;
  Rgb8Image im = gradient(37, 53);
  im.text = {
      {"prompt", "a red fox in the snow"}, {"seed", "42"}, {"negative_prompt", "caf\xc3\xa9, \xe6\x97\xa5"}};
  write_png(dir.file("a.png"), im);
  EXPECT_FALSE(std::filesystem::exists(dir.file("a.png.tmp")));
  const Rgb8Image back = read_png(dir.file("a.png"));
  EXPECT_EQ(back.height, 37);
  EXPECT_EQ(back.width, 53);
  EXPECT_EQ(back.pixels, im.pixels);
  EXPECT_EQ(back.text, im.text);
}

TEST(Png, RejectsBadInput) {
  test::TempDir dir;
  Rgb8Image im = gradient(4, 4);
  im.pixels.pop_back();
  EXPECT_THROW(write_png(dir.file("b.png"), im), Error);
  EXPECT_FALSE(std::filesystem::exists(dir.file("b.png")));
  im = gradient(4, 4);
  im.text = {{"", "x"}};
  EXPECT_THROW(write_png(dir.file("b.png"), im), Error);
  EXPECT_THROW(write_png("/nonexistent/dir/b.png", gradient(2, 2)), Error);
  test::write_file(dir.file("bad.png"), "\x89PNG\r\n\x1a\n garbage");
  EXPECT_THROW(read_png(dir.file("bad.png")), Error);
  test::write_file(dir.file("text.png"), "not a png at all");
  EXPECT_THROW(read_png(dir.file("text.png")), Error);
}

TEST(Png, SplitsBatches) {
  std::vector<uint8_t> bytes(2 * 3 * 5 * 3);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = uint8_t(i);
  const auto images = split_rgb8_batch(bytes, 2, 3, 5);
  ASSERT_EQ(images.size(), 2u);
  EXPECT_EQ(images[1].pixels[0], uint8_t(45));
  EXPECT_THROW(split_rgb8_batch(bytes, 3, 3, 5), Error);
}

}  // namespace
}  // namespace krea2
