// `krea2 decode` on the VAE fixture (float image and PNG bytes against upstream), the latent layouts it
// reads, and `krea2 generate --output x.png` end to end on the bundled demo pipeline: the PNG decoded back
// with libpng equals `krea2 decode` of the same latents.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>

#include "io/safetensors.h"
#include "krea2/image.h"
#include "support/test_util.h"

namespace krea2 {
namespace {

using ::testing::HasSubstr;

std::string vae_case() {
  return test::fixture_dir("vae/decoder_tiny");
}
std::string demo() {
  return test::fixture_dir("demo_pipeline");
}

int run(const std::string& args, std::string* output = nullptr) {
  std::string out;
  const int rc = test::run_command(test::cli_path() + " " + args, &out);
  if (output) *output = out;
  return rc;
}

Tensor read(const std::string& file, const std::string& name) {
  const SafetensorsFile f(file);
  return to_float_tensor(*f.find(name));
}

// image_uint8 rule of the fixture: no value off by more than 1, at most 0.2 % of them off at all.
void expect_bytes_close(const std::vector<uint8_t>& got, const Tensor& ref, const std::string& what) {
  ASSERT_EQ(got.size(), ref.data.size()) << what;
  size_t differing = 0;
  int worst = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const int d = std::abs(int(got[i]) - int(ref.data[i]));
    differing += d != 0;
    worst = std::max(worst, d);
  }
  EXPECT_LE(worst, 1) << what;
  EXPECT_LE(double(differing), 2e-3 * double(got.size())) << what;
}

TEST(DecodeCli, FloatImageMatchesUpstream) {
  test::TempDir tmp;
  std::string out;
  ASSERT_EQ(run("decode --vae " + vae_case() + "/vae --latents " + vae_case() +
                    "/inputs.safetensors --output " + tmp.file("image.safetensors") + " --quiet",
                &out),
            0)
      << out;
  const Tensor got = read(tmp.file("image.safetensors"), "image");
  const Tensor ref = read(vae_case() + "/expected.safetensors", "image");
  ASSERT_EQ(got.shape, ref.shape);
  EXPECT_LE(test::rel_l2(got.ptr(), ref.ptr(), ref.data.size()), 1e-5);
  EXPECT_LE(test::max_abs_diff(got.ptr(), ref.ptr(), ref.data.size()),
            1e-4 * test::max_abs(ref.ptr(), ref.data.size()));
}

TEST(DecodeCli, PngsOfABatchMatchUpstreamBytes) {
  test::TempDir tmp;
  std::string out;
  ASSERT_EQ(run("decode --vae " + vae_case() + "/vae --latents " + vae_case() +
                    "/inputs.safetensors --output " + tmp.file("img.png"),
                &out),
            0)
      << out;
  const Tensor ref = read(vae_case() + "/expected.safetensors", "image_uint8");  // (B, H, W, 3)
  const int64_t per = ref.dim(1) * ref.dim(2) * 3;
  for (int b = 0; b < 2; ++b) {
    const Rgb8Image im = read_png(tmp.file("img-" + std::to_string(b) + ".png"));
    EXPECT_EQ(im.height, ref.dim(1));
    EXPECT_EQ(im.width, ref.dim(2));
    Tensor one({ref.dim(1), ref.dim(2), 3});
    std::copy_n(ref.data.begin() + b * per, per, one.data.begin());
    expect_bytes_close(im.pixels, one, "image " + std::to_string(b));
  }
  EXPECT_FALSE(std::filesystem::exists(tmp.file("img.png")));
}

TEST(DecodeCli, PackedLatentsWithTheImageSize) {
  test::TempDir tmp;
  // Only the packed `latents` (B, N, 64): the size must come from --height / --width.
  write_safetensors(tmp.file("packed.safetensors"),
                    {{"latents", read(vae_case() + "/inputs.safetensors", "latents")}});
  std::string out;
  EXPECT_EQ(run("decode --vae " + vae_case() + "/vae --latents " + tmp.file("packed.safetensors") +
                    " --output " + tmp.file("a.safetensors"),
                &out),
            1);
  EXPECT_THAT(out, HasSubstr("--height"));
  ASSERT_EQ(run("decode --vae " + vae_case() + "/vae --latents " + tmp.file("packed.safetensors") +
                    " --height 80 --width 112 --quiet --output " + tmp.file("a.safetensors"),
                &out),
            0)
      << out;
  const Tensor got = read(tmp.file("a.safetensors"), "image");
  const Tensor ref = read(vae_case() + "/expected.safetensors", "image");
  EXPECT_LE(test::rel_l2(got.ptr(), ref.ptr(), ref.data.size()), 1e-5);
  EXPECT_EQ(run("decode --vae " + vae_case() + "/vae --latents " + tmp.file("packed.safetensors") +
                    " --height 96 --width 112 --output " + tmp.file("b.safetensors"),
                &out),
            1);
  EXPECT_THAT(out, HasSubstr("tokens"));
}

TEST(DecodeCli, BadInputFailsWithoutOutput) {
  test::TempDir tmp;
  std::string out;
  write_safetensors(tmp.file("c8.safetensors"), {{"latents_unpacked", Tensor({1, 8, 4, 4})}});
  EXPECT_EQ(run("decode --vae " + vae_case() + "/vae --latents " + tmp.file("c8.safetensors") + " --output " +
                    tmp.file("x.png"),
                &out),
            1);
  EXPECT_THAT(out, HasSubstr("16"));
  EXPECT_EQ(run("decode --vae " + vae_case() + "/vae --latents " + vae_case() +
                    "/inputs.safetensors --output /nonexistent/dir/x.png",
                &out),
            1);
  EXPECT_THAT(out, HasSubstr("/nonexistent/dir"));
  EXPECT_EQ(run("decode --vae " + vae_case() + "/vae --latents " + vae_case() +
                    "/inputs.safetensors --output " + tmp.file("x.jpg"),
                &out),
            1);
  EXPECT_THAT(out, HasSubstr(".png"));
  EXPECT_EQ(run("decode --vae /nonexistent --latents " + vae_case() + "/inputs.safetensors --output " +
                    tmp.file("x.png"),
                &out),
            1);
  for (const auto& e : std::filesystem::directory_iterator(tmp.path()))
    EXPECT_EQ(e.path().extension(), ".safetensors") << e.path();  // no PNG, no .tmp left behind
}

TEST(GenerateCli, PromptToPngEndToEnd) {
  test::TempDir tmp;
  const std::string common = "generate --model " + demo() +
                             " --prompt 'a red fox in the snow' --height 64 --width 96 --steps 3 --guidance 4"
                             " --seed 5 --max-sequence-length 32 --quiet --output ";
  std::string out;
  ASSERT_EQ(run(common + tmp.file("fox.png"), &out), 0) << out;
  ASSERT_EQ(run(common + tmp.file("fox.safetensors"), &out), 0) << out;
  ASSERT_EQ(run("decode --vae " + demo() + "/vae --latents " + tmp.file("fox.safetensors") +
                    " --quiet --output " + tmp.file("decoded.png"),
                &out),
            0)
      << out;
  const Rgb8Image a = read_png(tmp.file("fox.png")), b = read_png(tmp.file("decoded.png"));
  EXPECT_EQ(a.height, 64);
  EXPECT_EQ(a.width, 96);
  EXPECT_EQ(a.pixels, b.pixels);
  std::map<std::string, std::string> text(a.text.begin(), a.text.end());
  EXPECT_EQ(text["prompt"], "a red fox in the snow");
  EXPECT_EQ(text["negative_prompt"], "");
  EXPECT_EQ(text["seed"], "5");
  EXPECT_EQ(text["steps"], "3");
  EXPECT_EQ(text["guidance"], "4");
  EXPECT_THAT(text["model"], HasSubstr("demo_pipeline"));
  // A .png output without a VAE anywhere is refused before any work.
  EXPECT_EQ(run("generate --model " + demo() + "/transformer --prompt x --text-encoder " + demo() +
                    " --height 64 --width 64 --steps 1 --output " + tmp.file("novae.png"),
                &out),
            1);
  EXPECT_THAT(out, HasSubstr("--vae"));
  EXPECT_FALSE(std::filesystem::exists(tmp.file("novae.png")));
}

}  // namespace
}  // namespace krea2
