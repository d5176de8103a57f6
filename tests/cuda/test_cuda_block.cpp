// A transformer block on the GPU (src/cuda/block.h) against the CPU's run_block on the same random weights:
// a main block (two samples, per-sample modulation, rope, masked text keys) and a text-fusion block (many
// short segments, no modulation), F32 / BF16 / F16 storage. f32 compute must agree with the CPU forward to
// rel L2 1e-5 (the fixtures' tolerance); bf16 compute must agree with the CPU's bf16 compute at least twice
// as closely as either is to float32 (both round the same operands; only summation order differs). Skipped
// without a CUDA device.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "cuda/block.h"
#include "cuda/device.h"
#include "model/block.h"
#include "model/weight_encode.h"
#include "ops/gemm.h"
#include "ops/rope.h"
#include "support/test_util.h"

namespace krea2 {
namespace {

// Random block weights of one storage type; the encoded bytes live in this object.
struct RandomBlock {
  BlockWeights w;
  std::vector<std::vector<std::byte>> storage;

  RandomBlock(const BlockDims& d, DType dtype, bool modulated, uint64_t seed) {
    const int64_t D = d.width, Dkv = d.kv_width, F = d.ff, hd = d.heads.head_dim;
    auto matrix = [&](int64_t rows, int64_t cols) {
      const std::vector<float> v =
          test::random_floats(size_t(rows * cols), seed++, 1.0f / std::sqrt(float(cols)));
      storage.emplace_back(size_t(dtype_row_bytes(dtype, cols) * rows));
      std::vector<float> scales(static_cast<size_t>(rows));
      encode_rows(RowEncoding{dtype}, v.data(), rows, cols, storage.back().data(), scales.data());
      return WeightMatrix{dtype, rows, cols, storage.back().data()};
    };
    w.norm1 = test::random_floats(size_t(D), seed++, 0.2f);
    w.norm2 = test::random_floats(size_t(D), seed++, 0.2f);
    w.attn.norm_q = test::random_floats(size_t(hd), seed++, 0.2f);
    w.attn.norm_k = test::random_floats(size_t(hd), seed++, 0.2f);
    if (modulated) w.scale_shift_table = test::random_floats(size_t(6 * D), seed++, 0.3f);
    w.attn.to_q = matrix(D, D);
    w.attn.to_k = matrix(Dkv, D);
    w.attn.to_v = matrix(Dkv, D);
    w.attn.to_gate = matrix(D, D);
    w.attn.to_out = matrix(D, D);
    w.ff.gate = matrix(F, D);
    w.ff.up = matrix(F, D);
    w.ff.down = matrix(D, F);
  }
};

double rel_l2(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    den += double(b[i]) * b[i];
  }
  return std::sqrt(num / den);
}

class CudaBlock : public ::testing::TestWithParam<DType> {
 protected:
  void SetUp() override {
    if (cuda::device_count() == 0)
      GTEST_SKIP() << "the CUDA block is not run on this machine: " << cuda::status();
  }
};

struct Case {
  BlockDims dims;
  int64_t rows = 0;
  std::vector<Segment> segments;
  std::vector<uint8_t> key_valid;  // empty: none
  bool modulated = false, rope = false;
};

// x after one block on the CPU (compute mode `c`) and on the GPU.
void run_both(const Case& k, const RandomBlock& b, Compute c, const std::vector<float>& x0,
              std::vector<float>& cpu, std::vector<float>& gpu) {
  const int64_t R = k.rows, D = k.dims.width;
  std::vector<float> pos(size_t(R * 3));
  for (int64_t r = 0; r < R; ++r)
    for (int a = 0; a < 3; ++a) pos[size_t(r * 3 + a)] = float((r * (a + 2)) % 9);
  const int hd = k.dims.heads.head_dim;
  const RopeTable rope = make_rope_table(pos.data(), R, {hd / 4, hd / 8 * 3, hd / 8 * 3}, 10000.0);
  const std::vector<float> temb_mod = test::random_floats(size_t(2 * 6 * D), 77, 0.3f);
  Modulation mod;
  mod.temb_mod = temb_mod.data();
  mod.row_begin = {0, k.segments[0].length, R};
  const uint8_t* valid = k.key_valid.empty() ? nullptr : k.key_valid.data();

  cpu = x0;
  {
    const GemmComputeScope scope(c);
    Workspace ws;
    run_block(b.w, k.dims, cpu.data(), R, k.segments, valid, k.rope ? &rope : nullptr,
              k.modulated ? &mod : nullptr, ws);
  }
  const cuda::DeviceBlock db = cuda::upload_block(b.w, c, "block 0");
  auto dx = cuda::to_device(x0);
  const auto dcos = cuda::to_device(rope.cos), dsin = cuda::to_device(rope.sin);
  const auto dvalid = cuda::to_device(k.key_valid.empty() ? std::vector<uint8_t>(1) : k.key_valid);
  cuda::DeviceWorkspace ws;
  cuda::run_block(db, k.dims, dx.get(), R, k.segments, valid ? dvalid.get() : nullptr,
                  k.rope ? dcos.get() : nullptr, k.rope ? dsin.get() : nullptr, rope.half,
                  k.modulated ? &mod : nullptr, ws);
  cuda::check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  gpu = dx.download();
}

std::vector<Case> cases() {
  BlockDims d;
  d.width = 128;
  d.kv_width = 64;
  d.ff = 192;
  d.heads = {4, 2, 32};
  d.eps = 1e-6f;
  Case main_block{d, 42, {{0, 21}, {21, 21}}, std::vector<uint8_t>(42, 1), true, true};
  for (int64_t r : {1, 3, 24}) main_block.key_valid[size_t(r)] = 0;  // masked text keys
  std::vector<Segment> layers;
  for (int64_t t = 0; t < 8; ++t) layers.push_back({t * 6, 6});
  Case text_block{d, 48, layers, {}, false, false};
  return {main_block, text_block};
}

TEST_P(CudaBlock, F32MatchesTheCpuForward) {
  uint64_t seed = 1;
  for (const Case& k : cases()) {
    const RandomBlock b(k.dims, GetParam(), k.modulated, seed);
    const std::vector<float> x0 = test::random_floats(size_t(k.rows * k.dims.width), seed + 100);
    std::vector<float> cpu, gpu;
    run_both(k, b, Compute::kF32, x0, cpu, gpu);
    EXPECT_LE(rel_l2(gpu, cpu), 1e-5) << (k.modulated ? "main block" : "text block");
    seed += 1000;
  }
}

TEST_P(CudaBlock, Bf16AgreesWithTheCpuBf16) {
  uint64_t seed = 5;
  for (const Case& k : cases()) {
    const RandomBlock b(k.dims, GetParam(), k.modulated, seed);
    const std::vector<float> x0 = test::random_floats(size_t(k.rows * k.dims.width), seed + 100);
    std::vector<float> cpu32, gpu32, cpu16, gpu16;
    run_both(k, b, Compute::kF32, x0, cpu32, gpu32);
    run_both(k, b, Compute::kBf16, x0, cpu16, gpu16);
    const double bf16_error = rel_l2(cpu16, cpu32);
    EXPECT_GT(bf16_error, 1e-4) << "the bf16 mode rounded nothing";
    EXPECT_LE(rel_l2(gpu16, cpu16), 0.5 * bf16_error) << (k.modulated ? "main block" : "text block");
    seed += 1000;
  }
}

INSTANTIATE_TEST_SUITE_P(Storage, CudaBlock, ::testing::Values(DType::F32, DType::BF16, DType::F16),
                         [](const ::testing::TestParamInfo<DType>& info) {
                           return std::string(dtype_name(info.param));
                         });

// Quantized weights are refused with the weight's name and type, before anything touches a device.
TEST(CudaBlockUpload, QuantizedWeightsAreNamed) {
  const int64_t rows = 4, cols = 64;
  std::vector<std::byte> bytes(size_t(dtype_row_bytes(DType::Q8_0, cols) * rows));
  const WeightMatrix w{DType::Q8_0, rows, cols, bytes.data()};
  try {
    cuda::upload_matrix(w, Compute::kF32, "block 7 ff.up");
    FAIL() << "a Q8_0 weight was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("block 7 ff.up is stored as Q8_0"), std::string::npos) << e.what();
  }
  EXPECT_THROW(cuda::upload_matrix(w, Compute::kInt8, "x"), Error);
}

}  // namespace
}  // namespace krea2
