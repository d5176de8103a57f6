// krea2_bench_decode: decode_row (tensor/decode.h) per stored type, one thread, next to the scalar reference
// decoder and, for F32 / F16 / BF16, the widening the GEMM used before (widen_to_f32).
//
//   krea2_bench_decode                                   everything (a few minutes)
//   krea2_bench_decode --benchmark_filter='Q4_K'         one type
//   krea2_bench_decode --benchmark_filter='/memory'      only rows streamed from memory
//
// Names are Decode/<type>/<decoder>/n:<elements per call>/<where>:
//   L1      the same row of n elements every iteration (source and output stay in L1);
//   memory  consecutive n-element segments of a 256 MB matrix (far past the last-level cache), each decoded
//           into the same small output, as the GEMM packing does with a weight panel.
// Counters: items_per_second = decoded elements/s, bytes_per_second = float32 output bytes/s, in_bytes/s =
// stored bytes read/s, ns/el = ns per element (benchmark prints it with an SI prefix: "250p" is 0.25 ns).
// The data are random bytes with positive normal fp16 scales (no NaN or inf codes: real weights have none,
// and E5M2's signalling-NaN codes take a slow patch-up path).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "krea2/tensor.h"
#include "tensor/convert.h"
#include "tensor/decode.h"
#include "tensor/quant_blocks.h"
#include "tensor/random.h"

namespace krea2 {
namespace {

constexpr int64_t kStreamBytes = int64_t(256) << 20;

uint64_t mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Byte offsets of the fp16 scale fields (d, m, dmin) in one block.
std::vector<int> half_fields(DType t) {
  switch (t) {
    case DType::Q4_1:
    case DType::Q5_1:
    case DType::Q4_K:
    case DType::Q5_K:
      return {0, 2};
    case DType::Q2_K:
      return {80, 82};
    case DType::Q3_K:
      return {108};
    case DType::Q6_K:
      return {208};
    default:
      return dtype_is_block(t) ? std::vector<int>{0} : std::vector<int>{};
  }
}

// n elements of t: random quant bytes, scales in [2^-10, 2^-8), random floats in [-1, 1) for the float
// types, fp8 codes away from NaN / inf.
std::vector<uint8_t> make_row(DType t, int64_t n, uint64_t seed) {
  std::vector<uint8_t> b(size_t(dtype_row_bytes(t, n)));
  const int64_t words = int64_t(b.size()) / 8;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < words; ++i) {
    const uint64_t r = mix(seed + uint64_t(i) * 0x9e3779b97f4a7c15ull);
    std::memcpy(&b[size_t(8 * i)], &r, 8);
  }
  for (size_t i = size_t(8 * words); i < b.size(); ++i) b[i] = uint8_t(mix(seed + i));
  const uint64_t key = counter_key(seed);
  if (t == DType::F32 || t == DType::F16 || t == DType::BF16) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      const float f = counter_uniform(key, uint64_t(i));
      if (t == DType::F32) {
        std::memcpy(&b[size_t(4 * i)], &f, 4);
      } else {
        const uint16_t h = t == DType::BF16 ? f32_to_bf16(f) : f32_to_f16(f);
        std::memcpy(&b[size_t(2 * i)], &h, 2);
      }
    }
  } else if (t == DType::F8_E4M3) {
    for (auto& c : b)
      if ((c & 0x7F) == 0x7F) c ^= 1;
  } else if (t == DType::F8_E5M2) {
    for (auto& c : b)
      if ((c & 0x7C) == 0x7C) c ^= 0x40;
  } else if (dtype_is_block(t)) {
    const int64_t bb = dtype_block_bytes(t), nb = n / dtype_block_elements(t);
    const std::vector<int> fields = half_fields(t);
    for (int64_t blk = 0; blk < nb; ++blk)
      for (int off : fields) {
        const uint64_t r = mix(seed ^ uint64_t(blk * 8 + off));
        const uint16_t h = uint16_t((5 + r % 2) << 10 | (r >> 8) % 1024);
        std::memcpy(&b[size_t(blk * bb + off)], &h, 2);
      }
  }
  return b;
}

// The 256 MB matrix of the current type (benchmarks are registered grouped by type: built once each).
const std::vector<uint8_t>& stream_bytes(DType t, int64_t* elements) {
  static DType cached = DType::BOOL;
  static std::vector<uint8_t> bytes;
  const int64_t per_256 = dtype_row_bytes(t, 256);
  static int64_t n = 0;
  if (cached != t || bytes.empty()) {
    bytes.clear();
    bytes.shrink_to_fit();
    n = kStreamBytes / per_256 * 256;
    bytes = make_row(t, n, 7);
    cached = t;
  }
  *elements = n;
  return bytes;
}

enum class Decoder { kFast, kReference, kWiden };
const char* decoder_name(Decoder d) {
  return d == Decoder::kFast ? "decode_row" : d == Decoder::kReference ? "reference" : "widen_to_f32";
}

inline void run(Decoder d, DType t, const uint8_t* src, int64_t n, float* out) {
  switch (d) {
    case Decoder::kFast:
      return decode_row(t, src, n, out);
    case Decoder::kReference:
      return decode_row_reference(t, src, n, out);
    case Decoder::kWiden:
      return widen_to_f32(t, src, out, size_t(n));
  }
}

void set_counters(benchmark::State& state, DType t, int64_t n) {
  const int64_t calls = int64_t(state.iterations());
  state.SetItemsProcessed(calls * n);
  state.SetBytesProcessed(calls * n * 4);
  state.counters["in_bytes/s"] =
      benchmark::Counter(double(calls * dtype_row_bytes(t, n)), benchmark::Counter::kIsRate);
  state.counters["ns/el"] =
      benchmark::Counter(double(calls * n) * 1e-9, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void BM_DecodeL1(benchmark::State& state, DType t, Decoder d, int64_t n) {
  const std::vector<uint8_t> src = make_row(t, n, 11);
  std::vector<float> out(static_cast<size_t>(n));
  for (auto _ : state) {
    run(d, t, src.data(), n, out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, t, n);
}

void BM_DecodeMemory(benchmark::State& state, DType t, Decoder d, int64_t n) {
  int64_t total = 0;
  const std::vector<uint8_t>& src = stream_bytes(t, &total);
  const int64_t seg_bytes = dtype_row_bytes(t, n), segments = total / n;
  std::vector<float> out(static_cast<size_t>(n));
  int64_t s = 0;
  for (auto _ : state) {
    run(d, t, src.data() + s * seg_bytes, n, out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
    if (++s == segments) s = 0;
  }
  set_counters(state, t, n);
}

void register_all() {
  const DType types[] = {DType::F32,  DType::F16,  DType::BF16, DType::F8_E4M3, DType::F8_E5M2, DType::I8,
                         DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1,    DType::Q8_0,    DType::Q2_K,
                         DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K};
  for (DType t : types) {
    std::vector<Decoder> decoders = {Decoder::kFast, Decoder::kReference};
    if (t == DType::F32 || t == DType::F16 || t == DType::BF16) decoders.push_back(Decoder::kWiden);
    for (const char* where : {"L1", "memory"})
      for (int64_t n : {256, 4096})
        for (Decoder d : decoders) {
          const std::string name = "Decode/" + std::string(dtype_name(t)) + "/" + decoder_name(d) +
                                   "/n:" + std::to_string(n) + "/" + where;
          benchmark::RegisterBenchmark(name.c_str(), where[0] == 'L' ? BM_DecodeL1 : BM_DecodeMemory, t, d, n)
              ->Unit(benchmark::kNanosecond);
        }
  }
}

}  // namespace
}  // namespace krea2

int main(int argc, char** argv) {
  krea2::register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
