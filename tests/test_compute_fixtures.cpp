// The bf16 and int8 compute modes (krea2/compute.h) on the upstream fixtures, on every GEMM variant this CPU
// runs (the ISA cap selects avx2 or avx512; at avx512 bf16 is vdpbf16ps where AVX512_BF16 exists and int8
// vpdpbusd where AVX512_VNNI exists, emulated / plain AVX2 kernels otherwise):
//  * bf16: on the case that carries diffusers' own bf16 run (`sample_torch_bf16`, small_sharded_bf16) our
//    error against `sample` must be no larger than diffusers'; on every case within that case's
//    tolerance_vs_sample_torch_bf16 (the error bf16 inputs cost, whatever the weights).
//  * int8: the int8 convrot file against `sample_dequant` and `sample_int8_dynamic` at case.json's
//    tolerance_int8_compute (shared/fixtures/quant/README.md, "int8 compute").
//  * f32 stays exact (the other fixture tests), and a compute mode changes nothing but the products: the
//    models' f32 outputs before and after with_compute agree bit for bit.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "cpu/cpu_features.h"
#include "io/safetensors.h"
#include "krea2/model.h"
#include "support/fixture_io.h"
#include "support/scoped_isa.h"
#include "support/test_util.h"

namespace krea2 {
namespace {

using test::ScopedIsa;

nlohmann::json case_json(const std::string& dir) {
  std::ifstream f(dir + "/case.json");
  return nlohmann::json::parse(f);
}

double rel_l2(const Tensor& got, const Tensor& ref) {
  EXPECT_EQ(got.shape, ref.shape);
  return test::rel_l2(got.ptr(), ref.ptr(), ref.data.size());
}

Tensor expected(const std::string& dir, const std::string& name) {
  SafetensorsFile f(dir + "/expected.safetensors");
  const TensorView* v = f.find(name);
  if (v == nullptr) throw Error(dir + ": no " + name);
  return to_float_tensor(*v);
}

// Fixture case x ISA level.
using ComputeParam = std::tuple<std::string, Isa>;

std::string param_name(const ::testing::TestParamInfo<ComputeParam>& info) {
  return std::get<0>(info.param) + "_" + isa_name(std::get<1>(info.param));
}

class Bf16Compute : public ::testing::TestWithParam<ComputeParam> {};

TEST_P(Bf16Compute, NoWorseThanDiffusersBf16) {
  const auto& [name, isa] = GetParam();
  if (!isa_supported(isa)) GTEST_SKIP() << isa_name(isa) << " kernels not run: " << isa_missing(isa);
  const ScopedIsa scoped(isa);
  const std::string dir = test::fixture_dir(name);
  const nlohmann::json cj = case_json(dir);
  const double tolerance =
      case_json(test::fixture_dir("small_sharded_bf16"))["tolerance_vs_sample_torch_bf16"]["rel_l2"]
          .get<double>();
  const Model model = Model::load(dir).with_compute(Compute::kBf16);
  EXPECT_EQ(model.compute(), Compute::kBf16);
  const ForwardInputs in = test::read_forward_inputs(dir + "/inputs.safetensors");
  const Tensor sample = expected(dir, "sample");
  const double err = rel_l2(model.forward(in), sample);
  std::printf("%s, %s bf16 compute: rel L2 vs sample %.3e\n", name.c_str(), isa_name(isa), err);
  EXPECT_LE(err, tolerance);
  // Rounding to bf16 does change the result: a mode that silently computed in f32 would fail here.
  EXPECT_GT(err, 1e-5);
  if (cj.contains("sample_torch_bf16")) {
    const double diffusers = rel_l2(expected(dir, "sample_torch_bf16"), sample);
    std::printf("  diffusers' own bf16 run: %.3e\n", diffusers);
    EXPECT_LE(err, diffusers);
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Bf16Compute,
                         ::testing::Combine(::testing::Values("tiny", "small_nomask", "small_masked_batch",
                                                              "small_sharded_bf16"),
                                            ::testing::Values(Isa::kAvx2, Isa::kAvx512)),
                         param_name);

class Int8Compute : public ::testing::TestWithParam<Isa> {};

TEST_P(Int8Compute, ConvrotFileWithinTheInt8Tolerance) {
  const Isa isa = GetParam();
  if (!isa_supported(isa)) GTEST_SKIP() << isa_name(isa) << " kernels not run: " << isa_missing(isa);
  const ScopedIsa scoped(isa);
  const std::string dir = test::fixture_dir("quant/int8_convrot_small");
  const nlohmann::json tol = case_json(dir)["tolerance_int8_compute"];
  LoadOptions options;
  options.compute = Compute::kInt8;
  const Model model = Model::load(dir + "/krea2-int8_convrot_small.safetensors", options);
  EXPECT_EQ(model.compute(), Compute::kInt8);
  const ForwardInputs in = test::read_forward_inputs(dir + "/inputs.safetensors");
  for (bool skip : {true, false}) {
    ForwardOptions fo;
    fo.skip_padded_text = skip;
    const Tensor got = model.forward(in, fo);
    const double vs_dequant = rel_l2(got, expected(dir, "sample_dequant"));
    const double vs_dynamic = rel_l2(got, expected(dir, "sample_int8_dynamic"));
    std::printf("%s int8 compute (padding %s): rel L2 vs sample_dequant %.3e, vs sample_int8_dynamic %.3e\n",
                isa_name(isa), skip ? "dropped" : "kept", vs_dequant, vs_dynamic);
    EXPECT_LE(vs_dequant, tol["rel_l2_vs_sample_dequant"].get<double>());
    EXPECT_LE(vs_dynamic, tol["rel_l2_vs_sample_int8_dynamic"].get<double>());
    // Integer activations do move the result: a silent float32 fallback would sit at ~1e-7.
    EXPECT_GT(vs_dequant, 1e-4);
  }
}

// Weights not stored as int8 are quantized per row by with_compute: the error stays at the int8 level and
// the f32 model it came from is untouched.
TEST_P(Int8Compute, FloatWeightsQuantizedAtPreparation) {
  const Isa isa = GetParam();
  if (!isa_supported(isa)) GTEST_SKIP() << isa_name(isa) << " kernels not run: " << isa_missing(isa);
  const ScopedIsa scoped(isa);
  const std::string dir = test::fixture_dir("small_nomask");
  const Model f32 = Model::load(dir);
  const ForwardInputs in = test::read_forward_inputs(dir + "/inputs.safetensors");
  const Tensor before = f32.forward(in);
  for (int64_t group : {0, 16}) {
    const Model int8 = f32.with_compute(Compute::kInt8, {group});
    for (const auto& p : int8.parameters()) {
      if (p.shape.size() == 2 && p.name.find("weight") != std::string::npos &&
          p.name.find("table") == std::string::npos && p.name.find("projector") == std::string::npos) {
        EXPECT_EQ(p.dtype, DType::I8) << p.name;
      }
    }
    const double err = rel_l2(int8.forward(in), expected(dir, "sample"));
    std::printf("small_nomask, %s int8 compute, rotation %lld: rel L2 vs sample %.3e\n", isa_name(isa),
                (long long)group, err);
    EXPECT_GT(err, 1e-4);
    EXPECT_LE(err, 3e-2);
    // Back to f32 from the int8 model: the original weights again, the same bits.
    const Tensor again = int8.with_compute(Compute::kF32).forward(in);
    EXPECT_EQ(again.data, before.data);
  }
  EXPECT_EQ(f32.forward(in).data, before.data);
}

INSTANTIATE_TEST_SUITE_P(Isa, Int8Compute, ::testing::Values(Isa::kAvx2, Isa::kAvx512),
                         [](const ::testing::TestParamInfo<Isa>& i) {
                           return std::string(isa_name(i.param));
                         });

// `krea2 forward --compute MODE`: the library's result, and a clear error for an unknown mode.
TEST(ComputeMode, ThroughTheCli) {
  const std::string dir = test::fixture_dir("quant/int8_convrot_small");
  const std::string model = dir + "/krea2-int8_convrot_small.safetensors";
  const ForwardInputs in = test::read_forward_inputs(dir + "/inputs.safetensors");
  for (Compute c : {Compute::kBf16, Compute::kInt8}) {
    test::TempDir tmp;
    const std::string out = tmp.file("out.safetensors");
    std::string log;
    ASSERT_EQ(
        test::run_command(test::cli_path() + " forward --quiet --compute " + compute_name(c) + " --model " +
                              model + " --inputs " + dir + "/inputs.safetensors --output " + out,
                          &log),
        0)
        << log;
    LoadOptions options;
    options.compute = c;
    const Tensor want = Model::load(model, options).forward(in);
    SafetensorsFile got(out);
    ASSERT_NE(got.find("sample"), nullptr);
    EXPECT_EQ(to_float_tensor(*got.find("sample")).data, want.data) << compute_name(c);
  }
  std::string log;
  EXPECT_NE(test::run_command(test::cli_path() + " forward --compute fp16 --model " + model + " --inputs " +
                                  dir + "/inputs.safetensors --output /nonexistent/x.safetensors",
                              &log),
            0);
  EXPECT_NE(log.find("--compute must be f32, bf16 or int8, found 'fp16'"), std::string::npos) << log;
}

TEST(ComputeMode, NamesRoundTrip) {
  for (Compute c : kComputeModes) EXPECT_EQ(parse_compute(compute_name(c)), c);
  EXPECT_FALSE(parse_compute("fp16").has_value());
  const Model tiny = Model::load(test::fixture_dir("tiny"));
  EXPECT_THROW(tiny.with_compute(Compute::kInt8, {8}), Error);  // no power of 4
  EXPECT_EQ(tiny.with_compute(Compute::kBf16).compute(), Compute::kBf16);
}

}  // namespace
}  // namespace krea2
