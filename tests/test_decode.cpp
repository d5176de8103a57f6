// decode_row (the fast decoders) against decode_row_reference, bit for bit, on every decodable type; and both
// against gguf-py's own dequantization of one real tensor per ggml block type.
//
// NaN rule. Element types (F32, F16, BF16, fp8, I8, U8) must match the reference in every bit, NaN payloads
// included. Block formats must match in every bit wherever the reference value is not NaN (zeros keep their
// sign); where it is NaN, the decoder must give a NaN, any payload. The payload is not part of the contract:
// when two different NaNs meet in one operation (d and m of Q4_1, d and dmin of a K-quant) x86 returns one
// of them by the instruction's operand order, which the compiler chooses (for the reference as much as for
// the fast path), and a NaN weight poisons every product it enters whatever its payload.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "io/mapped_file.h"
#include "io/safetensors.h"
#include "support/test_util.h"
#include "tensor/convert.h"
#include "tensor/decode.h"
#include "tensor/hadamard_decode.h"
#include "tensor/quant_blocks.h"

namespace krea2 {
namespace {

uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

enum class NanRule { kBits, kAnyNan };

::testing::AssertionResult same_floats(const float* got, const float* ref, int64_t n, NanRule rule) {
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t g = bits_of(got[i]), r = bits_of(ref[i]);
    if (g == r) continue;
    if (rule == NanRule::kAnyNan && std::isnan(got[i]) && std::isnan(ref[i])) continue;
    return ::testing::AssertionFailure() << "element " << i << " of " << n << ": got " << got[i] << " (0x"
                                         << std::hex << g << "), reference " << ref[i] << " (0x" << r << ")";
  }
  return ::testing::AssertionSuccess();
}

// Bytes that end exactly where a PROT_NONE page begins: a decoder reading one byte past the row faults.
class GuardedBytes {
 public:
  explicit GuardedBytes(size_t size) : page_(size_t(sysconf(_SC_PAGESIZE))) {
    data_pages_ = (size + page_ - 1) / page_ + 1;
    void* p =
        mmap(nullptr, (data_pages_ + 1) * page_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::runtime_error("mmap failed");
    base_ = static_cast<uint8_t*>(p);
    if (mprotect(base_ + data_pages_ * page_, page_, PROT_NONE) != 0)
      throw std::runtime_error("mprotect failed");
    begin_ = base_ + data_pages_ * page_ - size;
  }
  ~GuardedBytes() { munmap(base_, (data_pages_ + 1) * page_); }
  GuardedBytes(const GuardedBytes&) = delete;
  GuardedBytes& operator=(const GuardedBytes&) = delete;
  uint8_t* data() { return begin_; }

 private:
  size_t page_, data_pages_ = 0;
  uint8_t* base_ = nullptr;
  uint8_t* begin_ = nullptr;
};

// Decodes `bytes` (a row of n elements of t) with decode_row from several source alignments, the last one
// ending at a guard page, into an output that is unaligned half the time and fenced by canaries, and
// compares each result with decode_row_reference.
void check_row(DType t, const std::vector<uint8_t>& bytes, int64_t n, NanRule rule) {
  ASSERT_EQ(int64_t(bytes.size()), dtype_row_bytes(t, n));
  std::vector<float> ref(static_cast<size_t>(n));
  decode_row_reference(t, bytes.data(), n, ref.data());
  const float canary = [] {
    const uint32_t c = 0x7FA5A5A5u;  // a signalling NaN nobody computes
    float f;
    std::memcpy(&f, &c, 4);
    return f;
  }();
  GuardedBytes guarded(bytes.size());
  std::memcpy(guarded.data(), bytes.data(), bytes.size());
  std::vector<uint8_t> heap(bytes.size() + 128);
  const int offsets[] = {0, 1, 3, 7, -1};  // -1: the guarded copy
  for (int offset : offsets) {
    const uint8_t* src = guarded.data();
    if (offset >= 0) {
      uint8_t* aligned = heap.data() + (64 - reinterpret_cast<uintptr_t>(heap.data()) % 64) % 64;
      std::memcpy(aligned + offset, bytes.data(), bytes.size());
      src = aligned + offset;
    }
    std::vector<float> out(size_t(n) + 10, canary);
    float* dst = out.data() + 1 + (offset & 1);  // 4 or 8 bytes past the allocation: never 32-byte aligned
    decode_row(t, src, n, dst);
    EXPECT_TRUE(same_floats(dst, ref.data(), n, rule))
        << dtype_name(t) << ", n " << n << ", source offset " << offset;
    EXPECT_EQ(bits_of(dst[-1]), bits_of(canary)) << dtype_name(t) << ": wrote before the row";
    EXPECT_EQ(bits_of(dst[n]), bits_of(canary)) << dtype_name(t) << ": wrote past the row";
  }
}

std::vector<uint8_t> random_bytes(size_t size, std::mt19937_64& rng) {
  std::vector<uint8_t> b(size);
  for (auto& x : b) x = uint8_t(rng());
  return b;
}

// ---- element types ----

TEST(DecodeRow, F32CopiesEveryBitPattern) {
  std::mt19937_64 rng(1);
  for (int64_t n : {1, 7, 8, 33, 256, 4096 + 13})
    check_row(DType::F32, random_bytes(size_t(n) * 4, rng), n, NanRule::kBits);
}

// Every one of the 65536 half / bfloat16 patterns, in order and shuffled, whole and with ragged tails.
TEST(DecodeRow, F16AndBF16EveryPattern) {
  std::vector<uint8_t> all(65536 * 2);
  for (uint32_t h = 0; h < 65536; ++h) {
    all[2 * h] = uint8_t(h);
    all[2 * h + 1] = uint8_t(h >> 8);
  }
  std::mt19937_64 rng(2);
  std::vector<uint16_t> perm(65536);
  for (uint32_t h = 0; h < 65536; ++h) perm[h] = uint16_t(h);
  std::shuffle(perm.begin(), perm.end(), rng);
  std::vector<uint8_t> shuffled(65536 * 2);
  std::memcpy(shuffled.data(), perm.data(), shuffled.size());
  for (DType t : {DType::F16, DType::BF16}) {
    check_row(t, all, 65536, NanRule::kBits);
    for (int64_t n : {1, 5, 8, 31, 32, 39, 256, 4096 + 13})
      check_row(t, std::vector<uint8_t>(shuffled.begin(), shuffled.begin() + 2 * n), n, NanRule::kBits);
  }
}

// All 256 codes, in order and in random orders, with tails of every length below the 16-code step.
TEST(DecodeRow, OneByteTypesEveryCode) {
  std::vector<uint8_t> all(256);
  for (int c = 0; c < 256; ++c) all[size_t(c)] = uint8_t(c);
  std::mt19937_64 rng(3);
  for (DType t : {DType::F8_E4M3, DType::F8_E5M2, DType::I8, DType::U8}) {
    check_row(t, all, 256, NanRule::kBits);
    for (int64_t n = 1; n <= 48; ++n) check_row(t, random_bytes(size_t(n), rng), n, NanRule::kBits);
    for (int64_t n : {256, 4096 + 13}) check_row(t, random_bytes(size_t(n), rng), n, NanRule::kBits);
  }
}

// A few codes by value, so the fp8 paths are pinned to the formats and not only to the reference.
TEST(DecodeRow, Fp8KnownValues) {
  const uint8_t codes[] = {0x38, 0x7E, 0x01, 0x80, 0x7F, 0xFF, 0xB8, 0x08};
  float e4[8], e5[8];
  decode_row(DType::F8_E4M3, codes, 8, e4);
  decode_row(DType::F8_E5M2, codes, 8, e5);
  EXPECT_EQ(e4[0], 1.0f);
  EXPECT_EQ(e4[1], 448.0f);
  EXPECT_EQ(e4[2], std::ldexp(1.0f, -9));
  EXPECT_EQ(bits_of(e4[3]), 0x80000000u);  // -0
  EXPECT_EQ(bits_of(e4[4]), 0x7FC00000u);  // the reference's quiet NaN, for both NaN codes
  EXPECT_EQ(bits_of(e4[5]), 0x7FC00000u);
  EXPECT_EQ(e4[6], -1.0f);
  EXPECT_EQ(e4[7], std::ldexp(1.0f, -6));   // smallest normal
  EXPECT_EQ(e5[0], 0.5f);                   // 0x3800 as a half
  EXPECT_EQ(e5[2], std::ldexp(1.0f, -16));  // smallest subnormal
  EXPECT_TRUE(std::isnan(e5[1]));
  EXPECT_EQ(e5[6], -0.5f);
  EXPECT_EQ(e5[7], std::ldexp(1.0f, -13));
  EXPECT_EQ(bits_of(e5[3]), 0x80000000u);
  const uint8_t snan[2] = {0x7D, 0xFD};  // signalling NaNs: kept signalling, as f16_to_f32 does
  float s[2];
  decode_row(DType::F8_E5M2, snan, 2, s);
  EXPECT_EQ(bits_of(s[0]), 0x7FA00000u);
  EXPECT_EQ(bits_of(s[1]), 0xFFA00000u);
}

// ---- block formats ----

struct BlockType {
  DType type;
  std::vector<int> half_fields;  // byte offsets of the fp16 d / m / dmin fields in a block
};

const std::vector<BlockType>& block_types() {
  static const std::vector<BlockType> types = {
      {DType::Q4_0, {0}},    {DType::Q4_1, {0, 2}},   {DType::Q5_0, {0}},   {DType::Q5_1, {0, 2}},
      {DType::Q8_0, {0}},    {DType::Q2_K, {80, 82}}, {DType::Q3_K, {108}}, {DType::Q4_K, {0, 2}},
      {DType::Q5_K, {0, 2}}, {DType::Q6_K, {208}},
  };
  return types;
}

enum class Scales { kNormal, kSubnormal, kZero, kAnyBits };

uint16_t random_half(Scales kind, std::mt19937_64& rng) {
  const uint16_t sign = uint16_t((rng() & 1) << 15);
  switch (kind) {
    case Scales::kNormal:
      return sign | uint16_t((1 + rng() % 30) << 10) | uint16_t(rng() % 1024);
    case Scales::kSubnormal:
      return sign | uint16_t(1 + rng() % 1023);
    case Scales::kZero:
      return sign;
    case Scales::kAnyBits: {
      // A quarter of the fields take a special: infinities, quiet and signalling NaNs of both signs.
      static const uint16_t kSpecial[] = {0x7C00, 0xFC00, 0x7E00, 0xFE00, 0x7C01, 0x7D00, 0xFFFF, 0x7BFF};
      if (rng() % 4 == 0) return kSpecial[rng() % 8];
      return uint16_t(rng());
    }
  }
  return 0;
}

// nb blocks of random bytes (so every scale and quant bit pattern occurs) with their fp16 fields drawn
// from `kind`.
std::vector<uint8_t> random_blocks(const BlockType& bt, int64_t nb, Scales kind, std::mt19937_64& rng) {
  const int64_t bb = dtype_block_bytes(bt.type);
  std::vector<uint8_t> b = random_bytes(size_t(nb * bb), rng);
  for (int64_t i = 0; i < nb; ++i)
    for (int off : bt.half_fields) {
      const uint16_t h = random_half(kind, rng);
      std::memcpy(&b[size_t(i * bb + off)], &h, 2);
    }
  return b;
}

class DecodeBlocks : public ::testing::TestWithParam<DType> {};

TEST_P(DecodeBlocks, MatchReferenceOnRandomBlocks) {
  const BlockType& bt = *std::find_if(block_types().begin(), block_types().end(),
                                      [&](const BlockType& b) { return b.type == GetParam(); });
  const int64_t be = dtype_block_elements(bt.type);
  std::mt19937_64 rng(uint64_t(bt.type) * 7919);
  for (Scales kind : {Scales::kNormal, Scales::kSubnormal, Scales::kZero, Scales::kAnyBits}) {
    SCOPED_TRACE("scale kind " + std::to_string(int(kind)));
    for (int64_t n : {be, int64_t(256), 4096 + 3 * be}) {
      check_row(bt.type, random_blocks(bt, n / be, kind, rng), n, NanRule::kAnyNan);
    }
  }
}

// Many blocks, so every value of every scale and quant field occurs (with overwhelming probability), and
// decoded the way the GEMM packing calls it: 256-element segments of a long row.
TEST_P(DecodeBlocks, MatchReferenceOnLongRowsAndSegments) {
  const BlockType& bt = *std::find_if(block_types().begin(), block_types().end(),
                                      [&](const BlockType& b) { return b.type == GetParam(); });
  const int64_t be = dtype_block_elements(bt.type), n = 256 * 1024;
  std::mt19937_64 rng(uint64_t(bt.type) * 104729);
  for (Scales kind : {Scales::kNormal, Scales::kSubnormal, Scales::kAnyBits}) {
    const std::vector<uint8_t> bytes = random_blocks(bt, n / be, kind, rng);
    std::vector<float> ref(static_cast<size_t>(n)), whole(static_cast<size_t>(n)),
        segments(static_cast<size_t>(n));
    decode_row_reference(bt.type, bytes.data(), n, ref.data());
    decode_row(bt.type, bytes.data(), n, whole.data());
    for (int64_t k0 = 0; k0 < n; k0 += 256)
      decode_row(bt.type, bytes.data() + dtype_row_bytes(bt.type, k0), 256, segments.data() + k0);
    EXPECT_TRUE(same_floats(whole.data(), ref.data(), n, NanRule::kAnyNan)) << int(kind);
    EXPECT_TRUE(same_floats(segments.data(), ref.data(), n, NanRule::kAnyNan)) << int(kind);
  }
}

INSTANTIATE_TEST_SUITE_P(AllBlockTypes, DecodeBlocks,
                         ::testing::Values(DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0,
                                           DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

// Only NaNs from two NaN sources may differ in payload: with a single fp16 field, or with the others
// finite, a NaN scale comes out with the reference's exact bits.
TEST(DecodeRow, NanPayloadExactWithOneNanSource) {
  std::mt19937_64 rng(5);
  for (const BlockType& bt : block_types()) {
    const int64_t be = dtype_block_elements(bt.type), nb = 64;
    std::vector<uint8_t> bytes = random_blocks(bt, nb, Scales::kNormal, rng);
    const uint16_t nans[] = {0x7E00, 0xFE01, 0x7D00, 0x7C00};
    for (int64_t i = 0; i < nb; ++i) {  // one field per block NaN or inf, the rest normal
      const int off = bt.half_fields[size_t(i) % bt.half_fields.size()];
      std::memcpy(&bytes[size_t(i * dtype_block_bytes(bt.type) + off)], &nans[i % 4], 2);
    }
    check_row(bt.type, bytes, nb * be, NanRule::kBits);
  }
}

// ---- the dispatch point ----

TEST(DecodeRow, MalformedCallsBehaveAsTheReference) {
  float out[8] = {1, 1, 1, 1, 1, 1, 1, 1};
  const uint8_t bytes[64] = {};
  decode_row(DType::Q4_K, bytes, 0, out);  // nothing to do, nothing written
  decode_row(DType::F16, bytes, 0, out);
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_THROW(decode_row(DType::Q4_0, bytes, 16, out), std::invalid_argument);
  EXPECT_THROW(decode_row(DType::Q6_K, bytes, 32, out), std::invalid_argument);
  EXPECT_THROW(decode_row(DType::I32, bytes, 4, out), std::invalid_argument);
  // F64 has no fast kernel: it goes through the reference.
  const double d[2] = {1.5, -0.0};
  decode_row(DType::F64, d, 2, out);
  EXPECT_EQ(out[0], 1.5f);
  EXPECT_EQ(bits_of(out[1]), 0x80000000u);
}

// ---- gguf-py's dequantization (tests/fixtures/quant/gguf_kquants_medium) ----

// Just enough of GGUF v3 to find tensor data (the real reader lives in src/io): bounds-checked reads of
// the header, the metadata (skipped, except general.alignment) and the tensor infos.
class GgufWalk {
 public:
  struct Tensor {
    std::vector<uint64_t> ne;  // ggml order: ne[0] is the row length
    uint32_t type = 0;
    uint64_t offset = 0;  // from the data section
  };

  GgufWalk(const uint8_t* data, size_t size) : p_(data), size_(size) {
    if (size < 4 || std::memcmp(data, "GGUF", 4) != 0) throw std::runtime_error("not a GGUF file");
    pos_ = 4;
    if (get<uint32_t>() != 3) throw std::runtime_error("not GGUF v3");
    const uint64_t n_tensors = get<uint64_t>(), n_kv = get<uint64_t>();
    uint64_t alignment = 32;
    for (uint64_t i = 0; i < n_kv; ++i) {
      const std::string key = str();
      const uint32_t type = get<uint32_t>();
      if (key == "general.alignment" && type == 4) {
        alignment = get<uint32_t>();
      } else {
        skip(type);
      }
    }
    for (uint64_t i = 0; i < n_tensors; ++i) {
      const std::string name = str();
      Tensor t;
      t.ne.resize(get<uint32_t>());
      if (t.ne.size() > 4) throw std::runtime_error(name + ": n_dims > 4");
      for (auto& d : t.ne) d = get<uint64_t>();
      t.type = get<uint32_t>();
      t.offset = get<uint64_t>();
      tensors_[name] = t;
    }
    data_start_ = (pos_ + alignment - 1) / alignment * alignment;
  }

  const Tensor& tensor(const std::string& name) const { return tensors_.at(name); }
  uint64_t data_start() const { return data_start_; }

 private:
  template <typename T>
  T get() {
    need(sizeof(T));
    T v;
    std::memcpy(&v, p_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  void need(uint64_t n) const {
    if (n > size_ - pos_) throw std::runtime_error("GGUF header runs past the end of the file");
  }
  std::string str() {
    const uint64_t n = get<uint64_t>();
    need(n);
    std::string s(reinterpret_cast<const char*>(p_ + pos_), size_t(n));
    pos_ += n;
    return s;
  }
  void skip(uint32_t type) {
    static const int kSize[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    if (type == 8) {
      str();
    } else if (type == 9) {
      const uint32_t et = get<uint32_t>();
      const uint64_t n = get<uint64_t>();
      for (uint64_t i = 0; i < n; ++i) skip(et);
    } else if (type < 13) {
      need(uint64_t(kSize[type]));
      pos_ += uint64_t(kSize[type]);
    } else {
      throw std::runtime_error("unknown GGUF metadata type " + std::to_string(type));
    }
  }

  const uint8_t* p_;
  size_t size_, pos_ = 0;
  std::map<std::string, Tensor> tensors_;
  uint64_t data_start_ = 0;
};

DType ggml_block_type(uint32_t id) {
  switch (id) {
    case 2:
      return DType::Q4_0;
    case 3:
      return DType::Q4_1;
    case 6:
      return DType::Q5_0;
    case 7:
      return DType::Q5_1;
    case 8:
      return DType::Q8_0;
    case 10:
      return DType::Q2_K;
    case 11:
      return DType::Q3_K;
    case 12:
      return DType::Q4_K;
    case 13:
      return DType::Q5_K;
    case 14:
      return DType::Q6_K;
    default:
      throw std::runtime_error("not a ggml block type: " + std::to_string(id));
  }
}

TEST(DecodeRow, MatchesGgufPyDequantization) {
  const std::string dir = test::fixture_dir("quant/gguf_kquants_medium");
  nlohmann::json cs;
  std::ifstream(dir + "/case.json") >> cs;
  const MappedFile gguf(dir + "/" + cs.at("weights").get<std::string>());
  const auto* file = reinterpret_cast<const uint8_t*>(gguf.data());
  const GgufWalk walk(file, gguf.size());
  const SafetensorsFile expected(dir + "/dequant_reference.safetensors");
  std::vector<std::string> types_seen;
  for (const auto& [name, type_name] : cs.at("dequant_reference").items()) {
    SCOPED_TRACE(name);
    const GgufWalk::Tensor& info = walk.tensor(name);
    const DType t = ggml_block_type(info.type);
    ASSERT_EQ(dtype_name(t), type_name.get<std::string>());
    types_seen.push_back(type_name.get<std::string>());
    const int64_t cols = int64_t(info.ne[0]);
    int64_t rows = 1;
    for (size_t i = 1; i < info.ne.size(); ++i) rows *= int64_t(info.ne[i]);
    const int64_t row_bytes = dtype_row_bytes(t, cols);
    ASSERT_GT(row_bytes, 0);
    ASSERT_LE(walk.data_start() + info.offset + uint64_t(row_bytes * rows), gguf.size());
    const uint8_t* data = file + walk.data_start() + info.offset;

    const TensorView* ref = expected.find(name);
    ASSERT_NE(ref, nullptr);
    ASSERT_EQ(ref->dtype, DType::F32);
    ASSERT_EQ(ref->shape, Shape(info.ne.rbegin(), info.ne.rend()));  // torch order
    std::vector<float> want(size_t(rows * cols));
    std::memcpy(want.data(), ref->data, want.size() * 4);

    std::vector<float> fast(want.size()), slow(want.size()), whole(want.size()), seg(want.size());
    for (int64_t r = 0; r < rows; ++r) {
      decode_row(t, data + r * row_bytes, cols, fast.data() + r * cols);
      decode_row_reference(t, data + r * row_bytes, cols, slow.data() + r * cols);
      // 256-element segments (or single blocks where the row is no multiple of 256), as the GEMM packs.
      const int64_t step = cols % 256 == 0 ? 256 : dtype_block_elements(t);
      for (int64_t k0 = 0; k0 < cols; k0 += step)
        decode_row(t, data + r * row_bytes + dtype_row_bytes(t, k0), step, seg.data() + r * cols + k0);
    }
    decode_row(t, data, rows * cols, whole.data());  // rows are contiguous blocks: the tensor is one row
    const int64_t n = rows * cols;
    EXPECT_TRUE(same_floats(slow.data(), want.data(), n, NanRule::kBits)) << "reference decoder";
    EXPECT_TRUE(same_floats(fast.data(), want.data(), n, NanRule::kBits)) << "decode_row per row";
    EXPECT_TRUE(same_floats(seg.data(), want.data(), n, NanRule::kBits)) << "decode_row in segments";
    EXPECT_TRUE(same_floats(whole.data(), want.data(), n, NanRule::kBits))
        << "decode_row on the whole tensor";
  }
  std::sort(types_seen.begin(), types_seen.end());
  EXPECT_EQ(types_seen, (std::vector<std::string>{"Q2_K", "Q3_K", "Q4_0", "Q4_1", "Q4_K", "Q5_0", "Q5_1",
                                                  "Q5_K", "Q6_K", "Q8_0"}));
}

}  // namespace
}  // namespace krea2

namespace krea2 {
namespace {

// The int8 convrot decoder against its integer reference, bit for bit: every group size a row can have,
// extreme codes (all -128 / 127 reach the largest sums), odd group counts, any scale.
TEST(DecodeHadamard, MatchesTheIntegerReference) {
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> code(-128, 127);
  for (int64_t G : {4, 16, 64, 256, 1024, 4096}) {
    for (int64_t groups : {1, 2, 3, 7}) {
      SCOPED_TRACE("G " + std::to_string(G) + ", " + std::to_string(groups) + " groups");
      std::vector<int8_t> q(size_t(G * groups));
      for (auto& v : q) v = int8_t(code(rng));
      if (groups == 3) std::fill(q.begin(), q.begin() + G, int8_t(-128));
      if (groups == 7) std::fill(q.begin(), q.begin() + G, int8_t(127));
      for (float factor : {1.0f, 3.0517578e-5f, 0.0123f, -7.5f}) {
        std::vector<float> got(q.size(), -1.0f), want(q.size(), -2.0f);
        decode_hadamard_i8(q.data(), G, groups, factor, got.data());
        decode_hadamard_i8_reference(q.data(), G, groups, factor, want.data());
        for (size_t i = 0; i < q.size(); ++i) ASSERT_EQ(bits_of(got[i]), bits_of(want[i])) << "element " << i;
      }
    }
  }
  // Known values: every row of H4 sums to 2, so H_16 1 = 4 1; H4 e0 is H4's first column.
  std::vector<int8_t> ones(16, 1);
  std::vector<float> out(16);
  decode_hadamard_i8(ones.data(), 16, 1, 1.0f, out.data());
  for (float v : out) EXPECT_EQ(v, 4.0f);
  std::vector<int8_t> e0(4, 0);
  e0[0] = 1;
  decode_hadamard_i8(e0.data(), 4, 1, 1.0f, out.data());
  EXPECT_EQ(std::vector<float>(out.begin(), out.begin() + 4), (std::vector<float>{1, 1, 1, -1}));
}

}  // namespace
}  // namespace krea2
