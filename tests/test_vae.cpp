// The Qwen-Image (Wan 2.1) VAE decoder against upstream (diffusers AutoencoderKLQwenImage + the pipeline's
// postprocess) on the tiny fixture: the image, every trace tensor, the RGB bytes; both naming schemes (the
// Wan file derived here from the README's table), BF16 storage, odd sizes, the analytic FLOPs, and the errors
// of bad configs and files.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>

#include "cpu/cpu_features.h"
#include "io/safetensors.h"
#include "io/safetensors_stream.h"
#include "krea2/error.h"
#include "krea2/vae.h"
#include "ops/conv2d_onednn.h"
#include "support/test_util.h"
#include "tensor/convert.h"
#include "vae/vae_flops.h"

namespace krea2 {
namespace {

namespace fs = std::filesystem;

std::string case_dir() {
  return test::fixture_dir("vae/decoder_tiny");
}
std::string diffusers_file() {
  return case_dir() + "/vae/diffusion_pytorch_model.safetensors";
}

// case.json tolerance.<key>: {rel_l2, max_abs_over_max_ref} (image, trace) or {max_level_diff,
// max_fraction_differing} (image_uint8).
nlohmann::json tolerance(const char* key) {
  std::ifstream f(case_dir() + "/case.json");
  return nlohmann::json::parse(f)["tolerance"][key];
}

Tensor read(const std::string& file, const std::string& name) {
  const SafetensorsFile f(case_dir() + "/" + file);
  const TensorView* t = f.find(name);
  if (!t) throw std::runtime_error(file + " lacks " + name);
  return to_float_tensor(*t);
}

Tensor latents() {
  return read("inputs.safetensors", "latents_unpacked");  // (B, 16, 1, h, w)
}

void expect_close(const Tensor& got, const Tensor& ref, const std::string& what, double rel = 1e-5,
                  double max_ratio = 1e-4) {
  ASSERT_EQ(got.shape, ref.shape) << what;
  const size_t n = got.data.size();
  EXPECT_LE(test::rel_l2(got.ptr(), ref.ptr(), n), rel) << what;
  EXPECT_LE(test::max_abs_diff(got.ptr(), ref.ptr(), n), max_ratio * test::max_abs(ref.ptr(), n)) << what;
}

void expect_equal(const Tensor& a, const Tensor& b, const std::string& what) {
  ASSERT_EQ(a.shape, b.shape) << what;
  for (size_t i = 0; i < a.data.size(); ++i) ASSERT_EQ(a.data[i], b.data[i]) << what << " at " << i;
}

// The README's diffusers -> Wan 2.1 table, written out independently of the library's name builder.
std::string to_wan_name(const std::string& n, int R) {
  auto resnet_local = [](std::string l) {
    const std::pair<const char*, const char*> map[] = {{"norm1.", "residual.0."},
                                                       {"conv1.", "residual.2."},
                                                       {"norm2.", "residual.3."},
                                                       {"conv2.", "residual.6."},
                                                       {"conv_shortcut.", "shortcut."}};
    for (const auto& [a, b] : map)
      if (l.rfind(a, 0) == 0) return b + l.substr(std::strlen(a));
    return l;
  };
  std::smatch m;
  if (n.rfind("post_quant_conv.", 0) == 0) return "conv2." + n.substr(16);
  if (n.rfind("quant_conv.", 0) == 0) return "conv1." + n.substr(11);
  if (n.rfind("decoder.conv_in.", 0) == 0) return "decoder.conv1." + n.substr(16);
  if (n.rfind("decoder.norm_out.", 0) == 0) return "decoder.head.0." + n.substr(17);
  if (n.rfind("decoder.conv_out.", 0) == 0) return "decoder.head.2." + n.substr(17);
  if (std::regex_match(n, m, std::regex(R"(decoder\.mid_block\.resnets\.(\d+)\.(.*))")))
    return "decoder.middle." + std::to_string(std::stoi(m[1]) == 0 ? 0 : 2) + "." + resnet_local(m[2]);
  if (std::regex_match(n, m, std::regex(R"(decoder\.mid_block\.attentions\.0\.(.*))")))
    return "decoder.middle.1." + std::string(m[1]);
  if (std::regex_match(n, m, std::regex(R"(decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.*))")))
    return "decoder.upsamples." + std::to_string(std::stoi(m[1]) * (R + 2) + std::stoi(m[2])) + "." +
           resnet_local(m[3]);
  if (std::regex_match(n, m, std::regex(R"(decoder\.up_blocks\.(\d+)\.upsamplers\.0\.(.*))")))
    return "decoder.upsamples." + std::to_string(std::stoi(m[1]) * (R + 2) + R + 1) + "." + std::string(m[2]);
  return n;  // the encoder: ignored by the decoder under either name
}

// Rewrites the fixture's diffusers file: renamed, in another dtype, without / with replaced tensors.
void rewrite(const std::string& dst, const std::function<std::string(const std::string&)>& rename,
             DType dtype = DType::F32, const std::function<bool(const std::string&)>& keep = nullptr,
             const std::map<std::string, Tensor>& replace = {}) {
  const SafetensorsFile src(diffusers_file());
  SafetensorsStreamWriter w(dst);
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const TensorView& t : src.tensors()) {
    if (keep && !keep(t.name)) continue;
    Tensor v = replace.count(t.name) ? replace.at(t.name) : to_float_tensor(t);
    if (!replace.count(t.name)) v.shape = t.shape;
    tensors.emplace_back(rename(t.name), std::move(v));
    w.add_tensor(tensors.back().first, dtype, tensors.back().second.shape);
  }
  for (const auto& [name, t] : tensors) {
    if (dtype == DType::F32) {
      w.write_chunk(name, t.ptr(), t.data.size() * 4);
    } else {
      std::vector<uint16_t> h(t.data.size());
      for (size_t i = 0; i < h.size(); ++i)
        h[i] = dtype == DType::BF16 ? f32_to_bf16(t.data[i]) : f32_to_f16(t.data[i]);
      w.write_chunk(name, h.data(), h.size() * 2);
    }
  }
  w.finish();
}

std::string same(const std::string& n) {
  return n;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Vae, ImageAndTraceMatchUpstream) {
  const Vae vae = Vae::load(case_dir());  // the pipeline-root layout: vae/ inside
  EXPECT_EQ(vae.config().base_dim, 8);
  EXPECT_EQ(vae.load_info().config_source, case_dir() + "/vae/config.json");
  EXPECT_FALSE(vae.load_info().ignored_tensors.empty());  // the encoder, quant_conv, time_conv
  std::map<std::string, Tensor> trace;
  VaeDecodeOptions o;
  o.trace = &trace;
  int calls = 0, last_done = 0, last_total = 0;
  o.progress = [&](int done, int total) { ++calls, last_done = done, last_total = total; };
  const Tensor image = vae.decode(latents(), o);
  const Tensor ref = read("expected.safetensors", "image");
  const nlohmann::json tol = tolerance("image"), trace_tol = tolerance("trace"),
                       u8_tol = tolerance("image_uint8");
  expect_close(image, ref, "image", tol["rel_l2"], tol["max_abs_over_max_ref"]);
  EXPECT_EQ(calls, 2 * 7);
  EXPECT_EQ(last_done, last_total);

  const SafetensorsFile tf(case_dir() + "/trace.safetensors");
  EXPECT_EQ(trace.size(), tf.tensors().size());
  for (const TensorView& t : tf.tensors()) {
    ASSERT_TRUE(trace.count(t.name)) << t.name;
    expect_close(trace.at(t.name), to_float_tensor(t), t.name, trace_tol["rel_l2"],
                 trace_tol["max_abs_over_max_ref"]);
  }

  // The RGB bytes: within one level, at most 0.2 % differing (values at a .5 boundary flip under float
  // noise).
  const SafetensorsFile ef(case_dir() + "/expected.safetensors");
  const TensorView* u8 = ef.find("image_uint8");
  ASSERT_TRUE(u8);
  const std::vector<uint8_t> rgb = image_to_rgb8(image);
  ASSERT_EQ(rgb.size(), size_t(u8->numel()));
  const auto* expected = reinterpret_cast<const uint8_t*>(u8->data);
  int64_t differing = 0, max_level = 0;
  for (size_t i = 0; i < rgb.size(); ++i) {
    const int64_t d = std::abs(int64_t(rgb[i]) - int64_t(expected[i]));
    differing += d != 0;
    max_level = std::max(max_level, d);
  }
  EXPECT_LE(max_level, u8_tol["max_level_diff"].get<int64_t>());
  EXPECT_LE(double(differing), u8_tol["max_fraction_differing"].get<double>() * double(rgb.size()));
  // Upstream's own image gives its own bytes exactly.
  const std::vector<uint8_t> from_ref = image_to_rgb8(ref);
  EXPECT_TRUE(std::equal(from_ref.begin(), from_ref.end(), expected));
}

// Every conv backend the build has (ours; oneDNN direct and Winograd) decodes the fixture within its
// tolerance, and on a wider random VAE (channels 32 .. 128, where oneDNN's Winograd kernel takes every 3x3
// conv) the backends agree within the same rule.
TEST(Vae, EveryConvBackendMatchesUpstream) {
  std::vector<ConvBackend> backends = {ConvBackend::kOwn};
  if (onednn_available()) {
    backends.insert(backends.end(), {ConvBackend::kOnednn, ConvBackend::kWinograd});
  } else {
    std::printf("this build has no oneDNN: only our conv kernels are tested\n");
  }
  const ConvBackend saved = conv2d_backend();
  const Vae vae = Vae::load(case_dir());
  const Tensor ref = read("expected.safetensors", "image");
  const nlohmann::json tol = tolerance("image");
  VaeConfig wide;
  wide.base_dim = 32;
  const Vae rnd = Vae::random(wide, DType::F32, 5);
  Tensor z({1, 16, 6, 7});
  const std::vector<float> r = test::random_floats(z.data.size(), 11, 2.0f);
  std::copy(r.begin(), r.end(), z.data.begin());
  std::optional<Tensor> own_wide;
  for (ConvBackend b : backends) {
    set_conv2d_backend(b);
    const int64_t runs = onednn_conv2d_runs(b), runs_any = onednn_conv2d_runs(ConvBackend::kOnednn) +
                                                           onednn_conv2d_runs(ConvBackend::kWinograd);
    expect_close(vae.decode(latents()), ref, std::string("image, conv backend ") + conv_backend_name(b),
                 tol["rel_l2"], tol["max_abs_over_max_ref"]);
    const Tensor wide_image = rnd.decode(z);
    if (b == ConvBackend::kOwn) {
      own_wide = wide_image;
    } else {
      // oneDNN's Winograd kernels need AVX-512; below it the direct kernel stands in.
      if (b == ConvBackend::kOnednn || active_isa() == Isa::kAvx512) {
        EXPECT_GT(onednn_conv2d_runs(b), runs) << conv_backend_name(b) << " never ran";
      } else {
        EXPECT_GT(onednn_conv2d_runs(ConvBackend::kOnednn) + onednn_conv2d_runs(ConvBackend::kWinograd),
                  runs_any);
      }
      expect_close(wide_image, *own_wide, std::string("wide VAE, ") + conv_backend_name(b) + " vs own",
                   tol["rel_l2"], tol["max_abs_over_max_ref"]);
    }
  }
  set_conv2d_backend(saved);
}

TEST(Vae, FolderFileAndLatentLayoutsAgree) {
  const Vae root = Vae::load(case_dir());
  const Vae folder = Vae::load(case_dir() + "/vae");
  const Vae file = Vae::load(diffusers_file());  // config.json beside the file
  EXPECT_EQ(file.load_info().config_source, case_dir() + "/vae/config.json");
  Tensor z = latents();
  const Tensor a = root.decode(z);
  expect_equal(folder.decode(z), a, "folder");
  expect_equal(file.decode(z), a, "file");
  z.shape = {z.dim(0), z.dim(1), z.dim(3), z.dim(4)};  // (B, 16, h, w)
  expect_equal(root.decode(z), a, "4-D latents");
}

TEST(Vae, WanNamesMatchDiffusersNames) {
  test::TempDir dir;
  const std::string wan = dir.file("wan_2.1_vae.safetensors");
  rewrite(wan, [](const std::string& n) { return to_wan_name(n, 2); });
  const Vae w = Vae::load(wan);  // no config.json: the sizes come from the shapes
  EXPECT_NE(w.load_info().names.find("Wan"), std::string::npos) << w.load_info().names;
  EXPECT_NE(w.load_info().config_source.find("tensor shapes"), std::string::npos);
  EXPECT_EQ(w.config().base_dim, 8);
  EXPECT_EQ(w.config().dim_mult, (std::vector<int64_t>{1, 2, 4, 4}));
  EXPECT_EQ(w.config().num_res_blocks, 2);
  const Vae d = Vae::load(case_dir());
  EXPECT_EQ(w.parameter_count(), d.parameter_count());
  expect_equal(w.decode(latents()), d.decode(latents()), "Wan names");
  // A Wan file from elsewhere (e.g. the fixture's own wan_vae.safetensors) when one is named.
  if (const char* extra = std::getenv("KREA2_VAE_WAN_FILE")) {
    const Vae e = Vae::load(extra);
    expect_equal(e.decode(latents()), d.decode(latents()), extra);
  }
}

TEST(Vae, Bf16StorageEqualsFloat32OnTheRoundedWeights) {
  test::TempDir dir;
  rewrite(dir.file("bf16.safetensors"), same, DType::BF16);
  // The same values stored as F32: BF16 -> F32 is exact, so both decodes must agree bit for bit.
  {
    const SafetensorsFile b(dir.file("bf16.safetensors"));
    SafetensorsStreamWriter w(dir.file("rounded_f32.safetensors"));
    std::vector<Tensor> ts;
    for (const TensorView& t : b.tensors()) {
      ts.push_back(to_float_tensor(t));
      w.add_tensor(t.name, DType::F32, t.shape);
    }
    for (size_t i = 0; i < ts.size(); ++i)
      w.write_chunk(b.tensors()[i].name, ts[i].ptr(), ts[i].data.size() * 4);
    w.finish();
  }
  const Vae bf = Vae::load(dir.file("bf16.safetensors"));
  const Vae f32 = Vae::load(dir.file("rounded_f32.safetensors"));
  const Tensor a = bf.decode(latents()), b = f32.decode(latents());
  expect_equal(a, b, "bf16 vs rounded f32");
  // And close to upstream's float32 weights (bf16 rounding of every weight: ~1e-2 relative).
  expect_close(a, read("expected.safetensors", "image"), "bf16 vs upstream", 5e-2, 0.2);
  rewrite(dir.file("f16.safetensors"), same, DType::F16);
  expect_close(Vae::load(dir.file("f16.safetensors")).decode(latents()),
               read("expected.safetensors", "image"), "f16 vs upstream", 1e-2, 5e-2);
}

TEST(Vae, OddLatentSizesAndBatches) {
  const Vae vae = Vae::load(case_dir());
  Tensor z({3, 16, 3, 5});
  const std::vector<float> r = test::random_floats(z.data.size(), 7, 2.0f);
  std::copy(r.begin(), r.end(), z.data.begin());
  const Tensor img = vae.decode(z);
  EXPECT_EQ(img.shape, (Shape{3, 3, 24, 40}));
  for (float v : img.data) ASSERT_TRUE(v >= -1.0f && v <= 1.0f) << v;
  // Each image on its own gives the same pixels (batch elements never mix).
  Tensor one({1, 16, 3, 5});
  std::copy_n(z.ptr() + 2 * 16 * 15, 16 * 15, one.ptr());
  const Tensor single = vae.decode(one);
  for (size_t i = 0; i < single.data.size(); ++i)
    ASSERT_EQ(single.data[i], img.data[2 * single.data.size() + i]);
  Tensor tiny({1, 16, 1, 1});
  EXPECT_EQ(vae.decode(tiny).shape, (Shape{1, 3, 8, 8}));
  // Random weights of another shape (3 levels, R = 1) at an odd size.
  VaeConfig c;
  c.base_dim = 4, c.dim_mult = {1, 2, 2}, c.num_res_blocks = 1;
  const Vae rnd = Vae::random(c, DType::BF16, 3);
  Tensor z2({1, 16, 5, 3});
  std::copy_n(r.begin(), z2.data.size(), z2.data.begin());
  const Tensor i2 = rnd.decode(z2);
  EXPECT_EQ(i2.shape, (Shape{1, 3, 20, 12}));
  for (float v : i2.data) ASSERT_TRUE(std::isfinite(v));
}

TEST(Vae, DecodeFlops) {
  const VaeConfig real = VaeConfig::from_json_file(test::fixture_dir("vae/real_config.json"));
  const VaeFlops f = vae_decode_flops_parts(real, 128, 128);
  EXPECT_EQ(f.convs(), 4297928474624.0);  // the fixture README (2 x MACs of the 2-D convs)
  EXPECT_EQ(f.attention, 412316860416.0);
  EXPECT_EQ(vae_decode_flops(real, 128, 128), f.total());
  const VaeConfig tiny = VaeConfig::from_json_file(case_dir() + "/vae/config.json");
  const VaeFlops t = vae_decode_flops_parts(tiny, 10, 14);  // case.json macs_per_image
  EXPECT_EQ(t.convs(), 2.0 * 129920000);
  EXPECT_EQ(t.attention, 2.0 * 1254400);
  // The live parameters of one frame (layers.json: 25,291,955 of the real decoder + post_quant_conv).
  EXPECT_EQ(Vae::random(real, DType::F32, 0).parameter_count(), 25291955);
  EXPECT_EQ(Vae::load(case_dir()).parameter_count(), Vae::random(tiny, DType::F32, 0).parameter_count());
}

TEST(Vae, ImageToRgb8Rounding) {
  Tensor img({1, 3, 1, 2});
  img.data = {-1.0f, 1.0f, 0.0f, 2.0f, -3.0f, 1.0f / 255.0f};
  const std::vector<uint8_t> rgb = image_to_rgb8(img);  // (1, 1, 2, 3): pixel-major
  // x = 0 -> y = 0.5 -> 127.5 -> 128 (half to even); clamped ends; 1/255 -> y*255 = 127.5 + 0.5 = 128.
  EXPECT_EQ(rgb, (std::vector<uint8_t>{0, 128, 0, 255, 255, 128}));
  Tensor bad({1, 4, 1, 1});
  EXPECT_NE(error_of([&] { image_to_rgb8(bad); }).find("(B, 3, H, W)"), std::string::npos);
}

TEST(Vae, ConfigErrorsNameTheKey) {
  const std::pair<std::string, std::string> cases[] = {
      {R"({"_class_name": "AutoencoderKL"})", "_class_name"},
      {R"({"base_dim": 0})", "'base_dim'"},
      {R"({"base_dim": 8, "dim_mult": []})", "'dim_mult'"},
      {R"({"base_dim": 8, "dim_mult": [1, 2.5]})", "'dim_mult'"},
      {R"({"base_dim": 3, "dim_mult": [1, 1]})", "odd channel count"},
      {R"({"z_dim": 4})", "'latents_mean'"},
      {R"({"z_dim": 16, "num_res_blocks": -1})", "'num_res_blocks'"},
      {R"({"z_dim": 16, "latents_std": [1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,0]})", "'latents_std'"},
      {R"({"z_dim": 16, "is_residual": true})", "'is_residual'"},
      {R"({"hidden_size": 3})", "not a Qwen-Image / Wan 2.1 VAE config"},
      {"[1", "not valid JSON"},
  };
  for (const auto& [text, message] : cases) {
    const std::string e = error_of([&] { VaeConfig::from_json_text(text, "cfg.json"); });
    EXPECT_NE(e.find(message), std::string::npos) << text << " -> " << e;
    EXPECT_NE(e.find("cfg.json"), std::string::npos) << e;
  }
  const VaeConfig c = VaeConfig::from_json_text(R"({"_class_name": "AutoencoderKLWan"})", "x");
  EXPECT_EQ(c.base_dim, 96);
  EXPECT_EQ(c.decoder_channels(), (std::vector<int64_t>{384, 384, 384, 192, 96}));
  EXPECT_EQ(c.scale_factor(), 8);
}

TEST(Vae, BadFilesNameTheTensor) {
  test::TempDir dir;
  fs::copy_file(case_dir() + "/vae/config.json", dir.file("config.json"));
  // Missing tensor.
  rewrite(dir.file("missing.safetensors"), same, DType::F32,
          [](const std::string& n) { return n != "decoder.conv_out.bias"; });
  std::string e = error_of([&] { Vae::load(dir.file("missing.safetensors")); });
  EXPECT_NE(e.find("missing tensor 'decoder.conv_out.bias' (expected shape (3,))"), std::string::npos) << e;
  EXPECT_NE(e.find("missing.safetensors"), std::string::npos) << e;
  // Mis-shaped tensor.
  rewrite(dir.file("shape.safetensors"), same, DType::F32, nullptr,
          {{"decoder.mid_block.resnets.0.conv1.weight", Tensor({32, 32, 3, 3})}});
  e = error_of([&] { Vae::load(dir.file("shape.safetensors")); });
  EXPECT_NE(
      e.find("tensor 'decoder.mid_block.resnets.0.conv1.weight': expected shape (32, 32, 3, 3, 3) (from the "
             "config), found (32, 32, 3, 3)"),
      std::string::npos)
      << e;
  // A tensor the config does not explain (an ignorable one renamed).
  rewrite(dir.file("extra.safetensors"), [](const std::string& n) {
    return n == "quant_conv.bias" ? std::string("decoder.extra.bias") : n;
  });
  e = error_of([&] { Vae::load(dir.file("extra.safetensors")); });
  EXPECT_NE(e.find("unexpected tensor(s) not used by this config: 'decoder.extra.bias'"), std::string::npos)
      << e;
  // Not a VAE at all.
  {
    SafetensorsStreamWriter w(dir.file("other.safetensors"));
    w.add_tensor("transformer_blocks.0.attn.to_q.weight", DType::F32, {2, 2});
    const float v[4] = {};
    w.write_chunk("transformer_blocks.0.attn.to_q.weight", v, sizeof(v));
    w.finish();
  }
  e = error_of([&] { Vae::load(dir.file("other.safetensors")); });
  EXPECT_NE(e.find("not a Qwen-Image / Wan 2.1 VAE"), std::string::npos) << e;
  EXPECT_NE(e.find("other.safetensors"), std::string::npos) << e;
  e = error_of([&] { Vae::load(dir.file("nothing_here")); });
  EXPECT_NE(e.find("no such file"), std::string::npos) << e;
  // Bad latents.
  const Vae vae = Vae::load(case_dir());
  e = error_of([&] { vae.decode(Tensor({1, 4, 2, 2})); });
  EXPECT_NE(e.find("latents must be (B, 16, h, w)"), std::string::npos) << e;
  EXPECT_NE(e.find("found (1, 4, 2, 2)"), std::string::npos) << e;
}

}  // namespace
}  // namespace krea2
