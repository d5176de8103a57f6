// Latent packing and position ids: the pipeline's index formula on odd non-square grids, round trips, the
// sampler fixtures, and the size validation.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "io/safetensors.h"
#include "krea2/error.h"
#include "krea2/sampler.h"
#include "support/test_util.h"

namespace krea2 {
namespace {

using ::testing::HasSubstr;

Tensor fixture_tensor(const std::string& case_name, const std::string& file, const std::string& name) {
  SafetensorsFile f(test::fixture_dir(case_name) + "/" + file);
  const TensorView* v = f.find(name);
  if (!v) throw Error("fixture tensor " + name + " missing");
  return to_float_tensor(*v);
}

Tensor random_latents(const Shape& shape, uint64_t seed) {
  return Tensor(shape, test::random_floats(size_t(shape_numel(shape)), seed));
}

// Token (ty, tx), channel c*4 + ph*2 + pw  <-  latents[b, c, 2ty + ph, 2tx + pw].
void expect_packing_formula(int64_t b, int64_t c, int64_t h, int64_t w) {
  const Tensor lat = random_latents({b, c, h, w}, uint64_t(h * 100 + w));
  const Tensor packed = pack_latents(lat);
  ASSERT_EQ(packed.shape, (Shape{b, (h / 2) * (w / 2), c * 4}));
  for (int64_t n = 0; n < b; ++n)
    for (int64_t ty = 0; ty < h / 2; ++ty)
      for (int64_t tx = 0; tx < w / 2; ++tx)
        for (int64_t ch = 0; ch < c; ++ch)
          for (int64_t ph = 0; ph < 2; ++ph)
            for (int64_t pw = 0; pw < 2; ++pw) {
              const int64_t token = ty * (w / 2) + tx;
              const float got =
                  packed.data[size_t((n * packed.dim(1) + token) * c * 4 + ch * 4 + ph * 2 + pw)];
              const float want = lat.data[size_t(((n * c + ch) * h + 2 * ty + ph) * w + 2 * tx + pw)];
              ASSERT_EQ(got, want) << n << " " << ty << " " << tx << " " << ch << " " << ph << " " << pw;
            }
  const Tensor back = unpack_latents(packed, {h, w});
  EXPECT_EQ(back.shape, lat.shape);
  EXPECT_EQ(back.data, lat.data);
}

TEST(Packing, FormulaOnNonSquareGrids) {
  expect_packing_formula(2, 4, 6, 10);
  expect_packing_formula(2, 4, 10, 6);
  expect_packing_formula(1, 16, 2, 2);
  expect_packing_formula(3, 3, 4, 14);
  expect_packing_formula(1, 16, 14, 2);
}

TEST(Packing, TransposedGridsDiffer) {
  // 6x10 and 10x6 have the same token count but different layouts.
  const Tensor a = random_latents({1, 4, 6, 10}, 1);
  Tensor t({1, 4, 10, 6});
  for (int64_t c = 0; c < 4; ++c)
    for (int64_t y = 0; y < 6; ++y)
      for (int64_t x = 0; x < 10; ++x)
        t.data[size_t((c * 10 + x) * 6 + y)] = a.data[size_t((c * 6 + y) * 10 + x)];
  EXPECT_NE(pack_latents(a).data, pack_latents(t).data);
  EXPECT_EQ(unpack_latents(pack_latents(t), {10, 6}).data, t.data);
}

class FixturePacking : public ::testing::TestWithParam<std::string> {};

TEST_P(FixturePacking, MatchesPipeline) {
  const Tensor noise = fixture_tensor(GetParam(), "inputs.safetensors", "noise");
  const Tensor latents = fixture_tensor(GetParam(), "inputs.safetensors", "latents");
  const Tensor packed = pack_latents(noise);
  EXPECT_EQ(packed.shape, latents.shape);
  EXPECT_EQ(packed.data, latents.data);

  const LatentSize size{noise.dim(2), noise.dim(3)};
  const Tensor out = fixture_tensor(GetParam(), "expected.safetensors", "latents");
  const Tensor out_unpacked = fixture_tensor(GetParam(), "expected.safetensors", "latents_unpacked");
  const Tensor unpacked = unpack_latents(out, size);
  EXPECT_EQ(unpacked.shape, out_unpacked.shape);
  EXPECT_EQ(unpacked.data, out_unpacked.data);

  const Tensor embeds = fixture_tensor(GetParam(), "inputs.safetensors", "prompt_embeds");
  const Tensor pos = fixture_tensor(GetParam(), "expected.safetensors", "position_ids");
  const Tensor ours = make_position_ids(embeds.dim(1), size);
  EXPECT_EQ(ours.shape, pos.shape);
  EXPECT_EQ(ours.data, pos.data);
}

INSTANTIATE_TEST_SUITE_P(Sampler, FixturePacking, ::testing::Values("sample_base_cfg", "sample_turbo"));

TEST(PositionIds, Layout) {
  const Tensor p = make_position_ids(3, {6, 10});  // 3 x 5 tokens
  ASSERT_EQ(p.shape, (Shape{3 + 15, 3}));
  for (int r = 0; r < 3; ++r)
    for (int k = 0; k < 3; ++k) EXPECT_EQ(p.data[size_t(r * 3 + k)], 0.0f);
  for (int t = 0; t < 15; ++t) {
    const float* row = p.ptr() + (3 + t) * 3;
    EXPECT_EQ(row[0], 0.0f);
    EXPECT_EQ(row[1], float(t / 5));
    EXPECT_EQ(row[2], float(t % 5));
  }
  const Tensor img = make_image_position_ids({6, 10});
  EXPECT_EQ(std::vector<float>(p.data.begin() + 9, p.data.end()), img.data);
  EXPECT_EQ(make_position_ids(0, {6, 10}).data, img.data);
}

TEST(LatentSize, FromPixels) {
  const LatentSize s = latent_size_from_pixels(1024, 768);
  EXPECT_EQ(s.height, 128);
  EXPECT_EQ(s.width, 96);
  EXPECT_EQ(s.tokens(), 64 * 48);
  EXPECT_EQ(latent_size_from_pixels(16, 48).width, 6);
  for (auto [h, w] :
       std::vector<std::pair<int64_t, int64_t>>{{1000, 1024}, {1024, 8}, {0, 16}, {-16, 16}, {24, 16}}) {
    EXPECT_THAT([&] { latent_size_from_pixels(h, w); },
                ::testing::ThrowsMessage<Error>(HasSubstr("multiples of 16")))
        << h << "x" << w;
  }
}

TEST(LatentSize, Validation) {
  EXPECT_NO_THROW(check_latent_size({2, 2}));
  EXPECT_THROW(check_latent_size({3, 4}), Error);
  EXPECT_THROW(check_latent_size({4, 5}), Error);
  EXPECT_THROW(check_latent_size({0, 4}), Error);
  EXPECT_THAT(
      [] {
        pack_latents(Tensor({1, 4, 5, 6}));
      },
      ::testing::ThrowsMessage<Error>(HasSubstr("multiples of 2")));
  EXPECT_THROW(pack_latents(Tensor({4, 6, 6})), Error);
  EXPECT_THROW(unpack_latents(Tensor({1, 14, 16}), {6, 10}), Error);  // 15 tokens expected
  EXPECT_THROW(unpack_latents(Tensor({1, 15, 18}), {6, 10}), Error);  // not 4C
  EXPECT_THROW(make_position_ids(2, {6, 7}), Error);
}

}  // namespace
}  // namespace krea2
