// GGUF reader and writer: the negative fixtures (bad/cases.json), the gguf-py fixtures, a byte-for-byte
// rewrite of gguf-py's files, writer round trips, typed accessors, and crafted malformed headers.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>

#include "io/gguf.h"
#include "io/gguf_writer.h"
#include "krea2/error.h"
#include "support/test_util.h"

namespace krea2 {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using json = nlohmann::json;

std::vector<std::byte> to_bytes(const std::string& s) {
  std::vector<std::byte> b(s.size());
  if (!s.empty()) std::memcpy(b.data(), s.data(), s.size());
  return b;
}

std::string view_bytes(const TensorView& t) {
  return std::string(reinterpret_cast<const char*>(t.data), t.nbytes);
}

json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  return json::parse(in);
}

// The message of the krea2::Error that parsing `bytes` throws (a test failure if none or another type).
std::string parse_error(const std::string& bytes, const std::string& source = "crafted.gguf") {
  const std::vector<std::byte> b = to_bytes(bytes);  // exact size: reading past it is out of bounds
  try {
    parse_gguf(b, source);
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), StartsWith(source + ": "));
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected krea2::Error, got: " << e.what();
    return e.what();
  }
  ADD_FAILURE() << "parsed without error";
  return "";
}

std::string open_error(const std::string& path) {
  try {
    GgufFile f(path);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << path << " opened without error";
  return "";
}

// Little-endian byte building for crafted files.
struct Bytes {
  std::string s;
  Bytes& u8(uint8_t v) { return le(v, 1); }
  Bytes& u32(uint32_t v) { return le(v, 4); }
  Bytes& u64(uint64_t v) { return le(v, 8); }
  Bytes& str(const std::string& v) {
    u64(v.size());
    s += v;
    return *this;
  }
  Bytes& raw(const std::string& v) {
    s += v;
    return *this;
  }
  Bytes& le(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) s += char((v >> (8 * i)) & 0xff);
    return *this;
  }
  Bytes& pad(size_t a) {
    s.append((a - s.size() % a) % a, '\0');
    return *this;
  }
  // Metadata entries.
  Bytes& kv_u32(const std::string& key, uint32_t v) { return str(key).u32(4).u32(v); }
  Bytes& kv_str(const std::string& key, const std::string& v) { return str(key).u32(8).str(v); }
  // A tensor info: ne in ggml order.
  Bytes& tensor(const std::string& name, const std::vector<uint64_t>& ne, uint32_t type, uint64_t offset) {
    str(name).u32(uint32_t(ne.size()));
    for (uint64_t d : ne) u64(d);
    return u32(type).u64(offset);
  }
};

Bytes gguf_start(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
  Bytes b;
  b.raw("GGUF").u32(version).u64(n_tensors).u64(n_kv);
  return b;
}

// A small valid file: 2 metadata entries, tensors a F32 (2, 4) @0, b Q8_0 (2, 32) @32, c F16 (8,) @128.
std::string small_file(uint32_t version = 3) {
  Bytes b = gguf_start(3, 2, version);
  b.kv_str("general.name", "small").kv_u32("test.count", 7);
  b.tensor("a", {4, 2}, 0, 0).tensor("b", {32, 2}, 8, 32).tensor("c", {8}, 1, 128);
  b.pad(32);
  std::string data(160, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = char(i * 7 + 1);
  return b.raw(data).s;
}

constexpr size_t kSmallDataOffset = 224;  // the 202-byte header of small_file() padded to 32

// --- the negative fixtures --------------------------------------------------------------------------------

TEST(GgufBadFixtures, EveryCaseFailsNamingFileAndCulprit) {
  const std::string dir = test::fixture_dir("quant/bad");
  const json cases = read_json(dir + "/cases.json");
  ASSERT_GE(cases["files"].size(), 7u);
  // Every .gguf in the folder has a case (a new file cannot be skipped silently).
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() == ".gguf") {
      EXPECT_TRUE(cases["files"].contains(entry.path().filename().string())) << entry.path();
    }
  }

  for (const auto& [file, c] : cases["files"].items()) {
    SCOPED_TRACE(file);
    const std::string path = dir + "/" + file;
    if (file == "control_valid.gguf") {
      EXPECT_EQ(GgufFile(path).tensors().size(), 68u);
      continue;
    }
    if (file == "shape_mismatch.gguf") {
      // A valid GGUF: the shape is wrong only for the model's config, which the model loader checks. Here the
      // reader must report the shape as stored, torch order.
      GgufFile f(path);
      const TensorView* t = f.find("blocks.1.attn.wk.weight");
      ASSERT_NE(t, nullptr);
      EXPECT_EQ(t->shape, (Shape{24, 32}));
      continue;
    }
    const std::string msg = open_error(path);
    EXPECT_THAT(msg, StartsWith(path + ": "));
    for (const auto& s : c["must_mention"]) EXPECT_THAT(msg, HasSubstr(s.get<std::string>()));
    if (c.contains("should_mention")) {
      for (const auto& s : c["should_mention"]) EXPECT_THAT(msg, HasSubstr(s.get<std::string>()));
    }
  }
}

TEST(GgufBadFixtures, MessagesSayWhatIsWrong) {
  const std::string dir = test::fixture_dir("quant/bad") + "/";
  EXPECT_THAT(
      open_error(dir + "truncated_data.gguf"),
      HasSubstr(": the file is truncated: tensor data of 'txtmlp.3.weight' ends at byte 25504 past the end "
                "of the file (24672 bytes)"));
  EXPECT_THAT(
      open_error(dir + "offset_past_end.gguf"),
      HasSubstr(": tensor 'blocks.1.mlp.down.weight': data offset/size outside the file (offset 48128"));
  EXPECT_THAT(open_error(dir + "n_dims_9.gguf"),
              HasSubstr(": tensor 'blocks.0.attn.wq.weight': n_dims 9 exceeds the maximum 4"));
  EXPECT_THAT(open_error(dir + "unknown_type.gguf"),
              HasSubstr(": tensor 'blocks.0.attn.wk.weight': unknown ggml type 200"));
  EXPECT_THAT(open_error(dir + "string_len_2e62.gguf"),
              HasSubstr(": metadata 'general.name': string length 4611686018427387904 exceeds the file"));
}

TEST(GgufBadFixtures, ControlValidLoads) {
  const std::string path = test::fixture_dir("quant/bad/control_valid.gguf");
  const json config = read_json(test::fixture_dir("quant/bad/cases.json"))["config"];
  GgufFile f(path);
  EXPECT_EQ(f.path(), path);
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_EQ(f.metadata().size(), 20u);
  EXPECT_EQ(f.header().data_offset(), 5312u);  // end of the tensor infos (5295) aligned to 32
  EXPECT_EQ(f.get_string("general.architecture"), "krea2");
  EXPECT_EQ(f.get_int("general.quantization_version"), 2);
  for (const auto& [key, v] : config.items()) {
    SCOPED_TRACE(key);
    if (v.is_array()) {
      EXPECT_EQ(f.get_int_array("krea2." + key), v.get<std::vector<int64_t>>());
    } else if (v.is_number_integer()) {
      EXPECT_EQ(f.get_int("krea2." + key), v.get<int64_t>());
    } else {  // stored as f32
      EXPECT_EQ(f.get_float("krea2." + key), double(float(v.get<double>())));
    }
  }
  ASSERT_EQ(f.tensors().size(), 68u);
  // Torch order: first.weight is (H, C) = (32, 16), ggml dims [16, 32].
  struct Expect {
    const char* name;
    DType dtype;
    Shape shape;
    size_t nbytes;
  };
  for (const Expect& e :
       {Expect{"first.weight", DType::F16, {32, 16}, 1024}, Expect{"first.bias", DType::F32, {32}, 128},
        Expect{"tmlp.2.weight", DType::Q8_0, {32, 32}, 32 * 34},
        Expect{"last.linear.weight", DType::Q8_0, {16, 32}, 16 * 34},
        Expect{"last.linear.bias", DType::F32, {16}, 64}}) {
    SCOPED_TRACE(e.name);
    const TensorView* t = f.find(e.name);
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->dtype, e.dtype);
    EXPECT_EQ(t->shape, e.shape);
    EXPECT_EQ(t->nbytes, e.nbytes);
  }
  EXPECT_EQ(f.find("no.such.tensor"), nullptr);
  // The last tensor ends exactly at the end of the file.
  const std::string raw = test::read_file(path);
  const TensorView& last = f.tensors().back();
  EXPECT_EQ(f.header().tensor_offset(67), 38656u);
  EXPECT_EQ(view_bytes(last), raw.substr(5312 + 38656, 64));
}

// --- the gguf-py fixtures ---------------------------------------------------------------------------------

class GgufSharedFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(GgufSharedFixture, ParsesWithTheListedTypesAndMetadata) {
  const std::string dir = test::fixture_dir("quant/" + GetParam());
  const json c = read_json(dir + "/case.json");
  const json& g = c["gguf"];
  const std::string path = dir + "/" + c["weights"].get<std::string>();
  GgufFile f(path);
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), g["alignment"].get<uint32_t>());
  EXPECT_EQ(f.get_string("general.architecture"), g["general.architecture"].get<std::string>());
  EXPECT_EQ(f.get_int("general.quantization_version"), 2);
  EXPECT_TRUE(f.get_string("general.name").has_value());
  if (g["alignment"] != 32) {
    EXPECT_EQ(f.get_int("general.alignment"), g["alignment"].get<int64_t>());
  }

  const std::string prefix = g["tensor_name_prefix"];
  const json& types = g["tensor_types"];
  ASSERT_EQ(f.tensors().size(), types.size());
  std::map<std::string, int> counts;
  for (const auto& [name, type] : types.items()) {
    const TensorView* t = f.find(prefix + name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_EQ(dtype_name(t->dtype), type.get<std::string>()) << name;
    ++counts[std::string(dtype_name(t->dtype))];
  }
  EXPECT_EQ(json(counts), g["type_counts"]);

  // Torch-order shapes: first.weight is (hidden, in_channels).
  const json& config = c["config"];
  const int64_t hidden =
      config["num_attention_heads"].get<int64_t>() * config["attention_head_dim"].get<int64_t>();
  EXPECT_EQ(f.find(prefix + "first.weight")->shape, (Shape{hidden, config["in_channels"].get<int64_t>()}));

  // Config metadata only where the case says so.
  for (const auto& [key, v] : config.items()) {
    SCOPED_TRACE(key);
    if (!g["krea2_metadata"].get<bool>()) {
      EXPECT_EQ(f.header().find_value("krea2." + key), nullptr);
    } else if (v.is_array()) {
      EXPECT_EQ(f.get_int_array("krea2." + key), v.get<std::vector<int64_t>>());
    } else if (v.is_number_integer()) {
      EXPECT_EQ(f.get_int("krea2." + key), v.get<int64_t>());
    } else {
      EXPECT_EQ(f.get_float("krea2." + key), double(float(v.get<double>())));
    }
  }

  // gguf-py's layout: tensors packed in order, each at the aligned end of the one before, the file ending
  // with the last one's padding.
  const GgufHeader& h = f.header();
  EXPECT_EQ(h.data_offset() % f.alignment(), 0u);
  uint64_t expect = 0;
  for (size_t i = 0; i < f.tensors().size(); ++i) {
    const TensorView& t = f.tensors()[i];
    EXPECT_EQ(h.tensor_offset(i), expect) << t.name;
    const int64_t row = t.shape.back();
    EXPECT_EQ(int64_t(t.nbytes), dtype_row_bytes(t.dtype, row) * (t.numel() / row)) << t.name;
    expect = (h.tensor_offset(i) + t.nbytes + f.alignment() - 1) / f.alignment() * f.alignment();
  }
  EXPECT_EQ(h.data_offset() + expect, std::filesystem::file_size(path));
}

INSTANTIATE_TEST_SUITE_P(Cases, GgufSharedFixture,
                         ::testing::Values("gguf_q8_0_small", "gguf_kquants_medium"));

// Re-writing gguf-py's files with GgufWriter (same metadata in the same order, same tensors) gives the same
// bytes: the writer's layout is gguf-py's.
TEST(GgufWriter, RewritesGgufPyFilesByteForByte) {
  test::TempDir dir;
  for (const std::string rel : {"bad/control_valid.gguf", "gguf_q8_0_small/krea2-gguf_q8_0_small.gguf",
                                "gguf_kquants_medium/krea2-gguf_kquants_medium.gguf"}) {
    SCOPED_TRACE(rel);
    const std::string path = test::fixture_dir("quant/" + rel);
    GgufFile in(path);
    const std::string out = dir.file("rewrite.gguf");
    {
      GgufWriter w(out, in.alignment());
      for (const auto& [key, value] : in.metadata()) w.set(key, value);
      for (const TensorView& t : in.tensors()) EXPECT_EQ(w.add_tensor(t.name, t.dtype, t.shape), t.nbytes);
      for (const TensorView& t : in.tensors()) w.write_tensor(t.name, t.data, t.nbytes);
      w.finish();
    }
    EXPECT_TRUE(test::read_file(out) == test::read_file(path)) << "bytes differ";
    std::filesystem::remove(out);
  }
}

// --- writer round trips -----------------------------------------------------------------------------------

std::vector<GgufEntry> every_value_type() {
  GgufArray nested;  // [[1, -2], [], [3]] as i32, inside an array of arrays of arrays
  nested.type = GgufType::ARRAY;
  nested.arrays = {GgufArray::of_i32({1, -2}), GgufArray::of_i32({}), GgufArray::of_i32({3})};
  GgufArray outer;
  outer.type = GgufType::ARRAY;
  outer.arrays = {nested, GgufArray::of_strings({"x"})};
  auto arr = [](GgufType t, auto values) {
    GgufArray a;
    a.type = t;
    if constexpr (std::is_same_v<decltype(values), std::vector<uint64_t>>)
      a.uints = values;
    else if constexpr (std::is_same_v<decltype(values), std::vector<int64_t>>)
      a.ints = values;
    else
      a.floats = values;
    return GgufValue::array(a);
  };
  using U = std::vector<uint64_t>;
  using I = std::vector<int64_t>;
  using F = std::vector<double>;
  return {
      {"t.u8", GgufValue::u8(255)},
      {"t.i8", GgufValue::i8(-128)},
      {"t.u16", GgufValue::u16(65535)},
      {"t.i16", GgufValue::i16(-32768)},
      {"t.u32", GgufValue::u32(4294967295u)},
      {"t.i32", GgufValue::i32(std::numeric_limits<int32_t>::min())},
      {"t.f32", GgufValue::f32(1e-40f)},  // a subnormal survives
      {"t.bool", GgufValue::boolean(true)},
      {"t.string", GgufValue::string(std::string("Krea 2 \xc3\xa9\0nul", 12))},
      {"t.u64", GgufValue::u64(std::numeric_limits<uint64_t>::max())},
      {"t.i64", GgufValue::i64(std::numeric_limits<int64_t>::min())},
      {"t.f64", GgufValue::f64(-0.1)},
      {"t.empty_string", GgufValue::string("")},
      {"a.u8", arr(GgufType::U8, U{0, 1, 255})},
      {"a.i8", arr(GgufType::I8, I{-128, 0, 127})},
      {"a.u16", arr(GgufType::U16, U{65535})},
      {"a.i16", arr(GgufType::I16, I{-1, 32767})},
      {"a.u32", GgufValue::array(GgufArray::of_u32({1, 2, 4294967295u}))},
      {"a.i32", GgufValue::array(GgufArray::of_i32({4, 6, 6, -1}))},
      {"a.f32", GgufValue::array(GgufArray::of_f32({0.5f, -3.25f, 1e30f}))},
      {"a.bool", arr(GgufType::BOOL, U{1, 0, 1})},
      {"a.string", GgufValue::array(GgufArray::of_strings({"a", "", "\xe6\x97\xa5"}))},
      {"a.u64", arr(GgufType::U64, U{uint64_t(1) << 63})},
      {"a.i64", arr(GgufType::I64, I{-(int64_t(1) << 62)})},
      {"a.f64", arr(GgufType::F64, F{1e300, -2.5})},
      {"a.empty", GgufValue::array(GgufArray::of_i32({}))},
      {"a.nested", GgufValue::array(outer)},
  };
}

struct TensorSpec {
  std::string name;
  DType dtype;
  Shape shape;
};

std::vector<TensorSpec> every_tensor_type() {
  return {{"w.f32", DType::F32, {3, 4}},
          {"w.f16", DType::F16, {2, 8}},
          {"w.bf16", DType::BF16, {5}},
          {"w.q4_0", DType::Q4_0, {3, 32}},
          {"w.q4_1", DType::Q4_1, {1, 64}},
          {"w.q5_0", DType::Q5_0, {2, 32}},
          {"w.q5_1", DType::Q5_1, {32}},
          {"w.q8_0", DType::Q8_0, {2, 2, 64}},
          {"w.q2_k", DType::Q2_K, {256}},
          {"w.q3_k", DType::Q3_K, {2, 256}},
          {"w.q4_k", DType::Q4_K, {1, 1, 1, 512}},
          {"w.q5_k", DType::Q5_K, {256}},
          {"w.q6_k", DType::Q6_K, {3, 256}},
          {"scalar", DType::F32, {}},
          {"empty", DType::Q8_0, {0, 32}},
          {"last", DType::F32, {1}}};
}

class GgufWriterAlignment : public ::testing::TestWithParam<uint32_t> {};

TEST_P(GgufWriterAlignment, RoundTripsEveryTypeBitExact) {
  const uint32_t alignment = GetParam();
  test::TempDir dir;
  const std::string path = dir.file("all.gguf");
  const std::vector<GgufEntry> meta = every_value_type();
  const std::vector<TensorSpec> specs = every_tensor_type();
  std::vector<std::string> data;
  {
    GgufWriter w(path, alignment);
    EXPECT_EQ(w.alignment(), alignment);
    for (const auto& [k, v] : meta) w.set(k, v);
    for (const TensorSpec& s : specs) {
      const size_t n = w.add_tensor(s.name, s.dtype, s.shape);
      const int64_t row = s.shape.empty() ? 1 : s.shape.back();
      EXPECT_EQ(int64_t(n),
                dtype_row_bytes(s.dtype, row) * (shape_numel(s.shape) / std::max<int64_t>(row, 1)));
      std::string bytes(n, '\0');
      const std::vector<float> r = test::random_floats((n + 3) / 4, data.size() + 1);
      if (n) std::memcpy(bytes.data(), r.data(), n);
      data.push_back(bytes);
    }
    EXPECT_FALSE(std::filesystem::exists(path));  // nothing under PATH until finish()
    for (size_t i = 0; i < specs.size(); ++i) {
      if (i % 2 == 0 || data[i].size() < 3) {
        w.write_tensor(specs[i].name, data[i].data(), data[i].size());
      } else {  // in three chunks
        const size_t a = data[i].size() / 3, b = data[i].size() - a - 1;
        w.write_tensor_chunk(specs[i].name, data[i].data(), a);
        w.write_tensor_chunk(specs[i].name, data[i].data() + a, b - a);
        w.write_tensor_chunk(specs[i].name, data[i].data() + b, data[i].size() - b);
      }
    }
    w.finish();
  }
  EXPECT_TRUE(std::filesystem::exists(path));
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  EXPECT_EQ(std::filesystem::file_size(path) % alignment, 0u);

  GgufFile f(path);
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), alignment);
  std::vector<GgufEntry> expect_meta = meta;
  if (alignment != 32) expect_meta.push_back({"general.alignment", GgufValue::u32(alignment)});
  EXPECT_TRUE(f.metadata() == expect_meta);
  ASSERT_EQ(f.metadata().size(), expect_meta.size());
  for (size_t i = 0; i < expect_meta.size(); ++i) {
    EXPECT_EQ(f.metadata()[i].first, expect_meta[i].first);
    EXPECT_TRUE(f.metadata()[i].second == expect_meta[i].second) << expect_meta[i].first;
  }
  // Floats bit-exact (== would let -0.0 pass for 0.0).
  const double f32 = std::get<double>(f.header().find_value("t.f32")->data);
  EXPECT_EQ(std::memcmp(&f32, &std::get<double>(meta[6].second.data), 8), 0);

  ASSERT_EQ(f.tensors().size(), specs.size());
  EXPECT_EQ(f.header().data_offset() % alignment, 0u);
  for (size_t i = 0; i < specs.size(); ++i) {
    const TensorView& t = f.tensors()[i];
    SCOPED_TRACE(specs[i].name);
    EXPECT_EQ(t.name, specs[i].name);
    EXPECT_EQ(t.dtype, specs[i].dtype);
    EXPECT_EQ(t.shape, specs[i].shape);
    EXPECT_EQ(f.header().tensor_offset(i) % alignment, 0u);
    EXPECT_TRUE(view_bytes(t) == data[i]);
  }
}

INSTANTIATE_TEST_SUITE_P(Alignments, GgufWriterAlignment, ::testing::Values(32u, 64u, 8u, 4096u));

// --- writer misuse and failure ----------------------------------------------------------------------------

std::string writer_error(const std::function<void(GgufWriter&)>& steps, const std::string& path) {
  try {
    GgufWriter w(path);
    steps(w);
  } catch (const Error& e) {
    EXPECT_FALSE(std::filesystem::exists(path + ".tmp")) << "the temporary file survived";
    EXPECT_THAT(e.what(), StartsWith(path + ": "));
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return "";
}

TEST(GgufWriter, RejectsMisuseAndLeavesNoFile) {
  test::TempDir dir;
  const std::string path = dir.file("w.gguf");
  const std::vector<float> f(64, 1.0f);
  auto two = [&](GgufWriter& w) {
    w.add_tensor("a", DType::F32, {4});
    w.add_tensor("b", DType::F32, {2, 2});
  };
  EXPECT_THAT(writer_error(
                  [&](GgufWriter& w) {
                    w.set_u32("k", 1);
                    w.set_i32("k", 2);
                  },
                  path),
              HasSubstr("metadata 'k' set twice"));
  EXPECT_THAT(writer_error([&](GgufWriter& w) { w.set_u32("", 1); }, path),
              HasSubstr("metadata key of 0 bytes"));
  EXPECT_THAT(writer_error([&](GgufWriter& w) { w.set_u32("general.alignment", 64); }, path),
              HasSubstr("must be the writer's alignment 32"));
  EXPECT_THAT(writer_error(
                  [&](GgufWriter& w) {
                    w.set("k", {GgufType::U8, uint64_t(256)});
                  },
                  path),
              HasSubstr("metadata 'k': 256 does not fit in u8"));
  EXPECT_THAT(writer_error(
                  [&](GgufWriter& w) {
                    w.set("k", {GgufType::I8, int64_t(-129)});
                  },
                  path),
              HasSubstr("does not fit in i8"));
  EXPECT_THAT(writer_error(
                  [&](GgufWriter& w) {
                    w.set("k", {GgufType::BOOL, uint64_t(2)});
                  },
                  path),
              HasSubstr("does not fit in bool"));
  EXPECT_THAT(writer_error(
                  [&](GgufWriter& w) {
                    w.set("k", {GgufType::STRING, uint64_t(2)});
                  },
                  path),
              HasSubstr("a string value holding another kind of data"));
  EXPECT_THAT(writer_error(
                  [&](GgufWriter& w) {
                    GgufArray a = GgufArray::of_i32({1});
                    a.uints = {2};
                    w.set("k", GgufValue::array(a));
                  },
                  path),
              HasSubstr("array of i32 holds elements of another type"));
  EXPECT_THAT(writer_error(
                  [&](GgufWriter& w) {
                    GgufArray a = GgufArray::of_i32({1});
                    for (int i = 0; i < kGgufMaxArrayDepth; ++i) {
                      GgufArray up;
                      up.type = GgufType::ARRAY;
                      up.arrays = {a};
                      a = up;
                    }
                    w.set("k", GgufValue::array(a));
                  },
                  path),
              HasSubstr("nested deeper than 8"));
  EXPECT_THAT(
      writer_error(
          [&](GgufWriter& w) {
            w.add_tensor("a", DType::Q8_0, {2, 48});
          },
          path),
      HasSubstr("tensor 'a': shape (2, 48): the last dim 48 is not a multiple of the Q8_0 block size 32"));
  EXPECT_THAT(writer_error(
                  [&](GgufWriter& w) {
                    w.add_tensor("a", DType::F32, {1, 1, 1, 1, 1});
                  },
                  path),
              HasSubstr("more than 4 dims"));
  EXPECT_THAT(writer_error([&](GgufWriter& w) { w.add_tensor("a", DType::I64, {1}); }, path),
              HasSubstr("dtype I64 has no GGUF type"));
  EXPECT_THAT(writer_error([&](GgufWriter& w) { w.add_tensor("a", DType::F32, {-1}); }, path),
              HasSubstr("negative dimension"));
  EXPECT_THAT(writer_error(
                  [&](GgufWriter& w) {
                    w.add_tensor("a", DType::F32, {int64_t(1) << 62, 8});
                  },
                  path),
              HasSubstr("is too large"));
  EXPECT_THAT(writer_error(
                  [&](GgufWriter& w) {
                    w.add_tensor("a", DType::F32, {1});
                    w.add_tensor("a", DType::F32, {1});
                  },
                  path),
              HasSubstr("tensor 'a' declared twice"));
  EXPECT_THAT(writer_error(
                  [&](GgufWriter& w) {
                    two(w);
                    w.write_tensor("b", f.data(), 16);
                  },
                  path),
              HasSubstr("tensor 'b' written out of order: the next tensor to write is 'a'"));
  EXPECT_THAT(writer_error(
                  [&](GgufWriter& w) {
                    two(w);
                    w.write_tensor("a", f.data(), 12);
                  },
                  path),
              HasSubstr("tensor 'a': write_tensor got 12 bytes, F32 (4,) holds 16"));
  EXPECT_THAT(writer_error(
                  [&](GgufWriter& w) {
                    two(w);
                    w.write_tensor_chunk("a", f.data(), 12);
                    w.write_tensor_chunk("a", f.data(), 8);
                  },
                  path),
              HasSubstr("a chunk of 8 bytes overruns its 16 bytes (12 already written)"));
  EXPECT_THAT(writer_error(
                  [&](GgufWriter& w) {
                    two(w);
                    w.write_tensor("a", f.data(), 16);
                    w.finish();
                  },
                  path),
              HasSubstr("finish: tensor 'b' (#1 of 2) has 0 of 16 bytes written"));
  EXPECT_THAT(writer_error(
                  [&](GgufWriter& w) {
                    two(w);
                    w.write_tensor("a", f.data(), 16);
                    w.add_tensor("c", DType::F32, {1});
                  },
                  path),
              HasSubstr("tensor 'c': declared after the header was written"));
  EXPECT_THAT(writer_error(
                  [&](GgufWriter& w) {
                    two(w);
                    w.write_tensor("a", f.data(), 16);
                    w.set_u32("late", 1);
                  },
                  path),
              HasSubstr("metadata 'late': set after the header was written"));
  EXPECT_THAT(
      writer_error([&](GgufWriter& w) { w.write_tensor("x", f.data(), 4); }, path),
      HasSubstr("tensor 'x': written after every declared tensor was written (it was never declared)"));
  EXPECT_FALSE(std::filesystem::exists(path));

  for (uint32_t bad : {0u, 3u, 96u}) {
    try {
      GgufWriter w(path, bad);
      ADD_FAILURE() << "alignment " << bad << " accepted";
    } catch (const Error& e) {
      EXPECT_THAT(e.what(), HasSubstr("alignment " + std::to_string(bad) + " is not a nonzero power of two"));
    }
  }
  EXPECT_THROW(GgufWriter(dir.file("no/such/dir/x.gguf")), Error);
}

TEST(GgufWriter, AbandonedWriterKeepsTheOldFile) {
  test::TempDir dir;
  const std::string path = dir.file("keep.gguf");
  test::write_file(path, "old contents");
  const std::vector<float> f(4, 2.0f);
  try {
    GgufWriter w(path);
    w.add_tensor("a", DType::F32, {4});
    w.add_tensor("b", DType::F32, {4});
    w.write_tensor("a", f.data(), 16);
    EXPECT_TRUE(std::filesystem::exists(path + ".tmp"));
    throw std::runtime_error("conversion failed half way");
  } catch (const std::runtime_error&) {
  }
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  EXPECT_EQ(test::read_file(path), "old contents");

  // And a finished one replaces it.
  {
    GgufWriter w(path);
    w.set_string("general.name", "new");
    w.finish();
  }
  GgufFile g(path);
  EXPECT_EQ(g.get_string("general.name"), "new");
  EXPECT_TRUE(g.tensors().empty());
}

// --- typed accessors --------------------------------------------------------------------------------------

TEST(GgufAccessors, ConvertOrNameTheMismatch) {
  test::TempDir dir;
  const std::string path = dir.file("m.gguf");
  {
    GgufWriter w(path);
    for (const auto& [k, v] : every_value_type()) w.set(k, v);
    w.set_i32_array("rope", {4, 6, 6});
    w.set_string_array("names", {"a", "b"});
    w.set_bool("flag", false);
    w.set_f32("eps", 1e-5f);
    w.finish();
  }
  GgufFile f(path);
  const GgufHeader& h = f.header();
  EXPECT_EQ(h.get_int("t.u8"), 255);
  EXPECT_EQ(h.get_int("t.i8"), -128);
  EXPECT_EQ(h.get_int("t.u32"), 4294967295);
  EXPECT_EQ(h.get_int("t.i64"), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(h.get_float("t.i16"), -32768.0);
  EXPECT_EQ(h.get_float("eps"), double(1e-5f));
  EXPECT_EQ(h.get_float("t.f64"), -0.1);
  EXPECT_EQ(h.get_bool("flag"), false);
  EXPECT_EQ(h.get_bool("t.bool"), true);
  EXPECT_EQ(h.get_string("t.empty_string"), "");
  EXPECT_EQ(h.get_int_array("rope"), (std::vector<int64_t>{4, 6, 6}));
  EXPECT_EQ(h.get_int_array("a.u16"), (std::vector<int64_t>{65535}));
  EXPECT_EQ(h.get_float_array("a.f32"), (std::vector<double>{0.5, -3.25, double(1e30f)}));
  EXPECT_EQ(h.get_float_array("a.i8"), (std::vector<double>{-128, 0, 127}));
  EXPECT_EQ(h.get_string_array("names"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(h.get_int_array("a.empty"), std::vector<int64_t>{});
  EXPECT_EQ(h.get_int("missing"), std::nullopt);
  EXPECT_EQ(h.get_string("missing"), std::nullopt);
  EXPECT_EQ(h.get_int_array("missing"), std::nullopt);

  auto error = [&](const std::function<void()>& call) -> std::string {
    try {
      call();
    } catch (const Error& e) {
      EXPECT_THAT(e.what(), StartsWith(path + ": metadata '"));
      return e.what();
    }
    ADD_FAILURE() << "no error";
    return "";
  };
  EXPECT_THAT(error([&] { h.get_int("t.string"); }),
              HasSubstr("metadata 't.string': expected an integer, found string"));
  EXPECT_THAT(error([&] { h.get_int("t.f32"); }), HasSubstr("expected an integer, found f32"));
  EXPECT_THAT(error([&] { h.get_int("t.bool"); }), HasSubstr("expected an integer, found bool"));
  EXPECT_THAT(error([&] { h.get_int("t.u64"); }),
              HasSubstr("metadata 't.u64': u64 value 18446744073709551615 does not fit in int64"));
  EXPECT_THAT(error([&] { h.get_int_array("a.u64"); }), HasSubstr("does not fit in int64"));
  EXPECT_THAT(error([&] { h.get_string("t.u32"); }),
              HasSubstr("metadata 't.u32': expected string, found u32"));
  EXPECT_THAT(error([&] { h.get_float("a.f32"); }), HasSubstr("expected a number, found array of f32"));
  EXPECT_THAT(error([&] { h.get_bool("t.u8"); }), HasSubstr("expected bool, found u8"));
  EXPECT_THAT(error([&] { h.get_int_array("names"); }),
              HasSubstr("metadata 'names': expected an array of integers, found array of string"));
  EXPECT_THAT(error([&] { h.get_int_array("t.i32"); }),
              HasSubstr("expected an array of integers, found i32"));
  EXPECT_THAT(error([&] { h.get_float_array("a.string"); }), HasSubstr("found array of string"));
  EXPECT_THAT(error([&] { h.get_string_array("rope"); }),
              HasSubstr("expected an array of strings, found array of i32"));
}

// --- crafted headers --------------------------------------------------------------------------------------

TEST(GgufCrafted, SmallFileParses) {
  const std::string file = small_file();
  const std::vector<std::byte> b = to_bytes(file);
  const GgufHeader h = parse_gguf(b, "small.gguf");
  EXPECT_EQ(h.source(), "small.gguf");
  EXPECT_EQ(h.data_offset(), kSmallDataOffset);
  ASSERT_EQ(h.tensors().size(), 3u);
  EXPECT_EQ(h.tensors()[1].shape, (Shape{2, 32}));
  EXPECT_EQ(h.tensors()[1].nbytes, 68u);
  EXPECT_EQ(h.tensors()[2].data, b.data() + kSmallDataOffset + 128);
  EXPECT_EQ(h.get_int("test.count"), 7);
  // Version 2 has the same layout.
  EXPECT_EQ(parse_gguf(to_bytes(small_file(2)), "v2.gguf").version(), 2u);
}

TEST(GgufCrafted, TruncatedAtEveryByteThrows) {
  const std::string file = small_file();
  // Only the last tensor's padding may be missing (the last tensor, c, ends 16 bytes before the end).
  const size_t data_end = kSmallDataOffset + 144;
  for (size_t n = data_end; n <= file.size(); ++n)
    EXPECT_EQ(parse_gguf(to_bytes(file.substr(0, n)), "x").tensors().size(), 3u);
  for (size_t n = 0; n < data_end; ++n) {
    SCOPED_TRACE(n);
    const std::string msg = parse_error(file.substr(0, n));
    // Cut inside a tensor's data: the first tensor cut short is named.
    if (n > kSmallDataOffset + 32 && n < kSmallDataOffset + 100) {
      EXPECT_THAT(msg, HasSubstr("the file is truncated: tensor data of 'b' ends at byte 324"));
    }
  }
  EXPECT_THAT(parse_error(""), HasSubstr("file is 0 bytes, too short for a GGUF header"));
}

// Any single byte of the header changed to a few values either parses or throws krea2::Error.
TEST(GgufCrafted, CorruptedHeaderBytesNeverCrash) {
  const std::string file = small_file();
  int errors = 0;
  for (size_t i = 0; i < kSmallDataOffset; ++i) {
    for (uint8_t v : {uint8_t(0), uint8_t(0xff), uint8_t(0x80), uint8_t(file[i] + 1)}) {
      std::string bad = file;
      bad[i] = char(v);
      const std::vector<std::byte> b = to_bytes(bad);
      try {
        parse_gguf(b, "x");
      } catch (const Error&) {
        ++errors;
      }
    }
  }
  EXPECT_GT(errors, 300);  // most changes break something
}

TEST(GgufCrafted, FixedHeader) {
  EXPECT_THAT(parse_error("GGU"), HasSubstr("too short"));
  std::string pk = small_file();
  pk.replace(0, 4, "PK\x03\x04");
  EXPECT_THAT(parse_error(pk), HasSubstr("not a GGUF file: magic bytes 50 4b 03 04, expected 47 47 55 46"));
  EXPECT_THAT(parse_error(small_file(1)), HasSubstr("GGUF version 1 is not supported"));
  EXPECT_THAT(parse_error(small_file(4)), HasSubstr("GGUF version 4 is not supported (supported: 2, 3)"));
  EXPECT_THAT(parse_error(small_file(0x03000000)),
              HasSubstr("a big-endian GGUF (version 3), which is not supported"));
  EXPECT_THAT(parse_error(gguf_start(uint64_t(1) << 60, 0).s + std::string(100, '\0')),
              HasSubstr("tensor count 1152921504606846976 exceeds the file"));
  EXPECT_THAT(parse_error(gguf_start(0, ~uint64_t(0)).s + std::string(100, '\0')),
              HasSubstr("metadata count 18446744073709551615 exceeds the file"));
  EXPECT_THAT(parse_error(gguf_start(0, 0).s.substr(0, 20)), HasSubstr("the file is truncated"));
  // Nothing at all after the fixed header is a valid (empty) file.
  const GgufHeader empty = parse_gguf(to_bytes(gguf_start(0, 0).s), "empty.gguf");
  EXPECT_TRUE(empty.tensors().empty());
  EXPECT_TRUE(empty.metadata().empty());
}

TEST(GgufCrafted, Metadata) {
  // One entry, then `pad` spare bytes (so the entry count passes its bound and the entry itself is at fault).
  auto one = [](const Bytes& entry, size_t pad = 64) {
    return gguf_start(0, 1).raw(entry.s).s + std::string(pad, '\0');
  };
  EXPECT_THAT(parse_error(one(Bytes().u64(uint64_t(1) << 62).raw("abc"))),
              HasSubstr("metadata key #0: string length 4611686018427387904 exceeds the file"));
  EXPECT_THAT(parse_error(one(Bytes().str(std::string(70000, 'k')).u32(0).u8(1))),
              HasSubstr("metadata key #0: length 70000 exceeds the limit of 65535 bytes"));
  EXPECT_THAT(parse_error(one(Bytes().str("").u32(0).u8(1))), HasSubstr("metadata key #0 is empty"));
  EXPECT_THAT(parse_error(gguf_start(0, 2).kv_u32("k", 1).kv_u32("k", 2).s),
              HasSubstr("metadata 'k' appears twice"));
  EXPECT_THAT(parse_error(one(Bytes().str("k").u32(13).u8(1))),
              HasSubstr("metadata 'k': unknown value type 13"));
  EXPECT_THAT(parse_error(one(Bytes().str("k").u32(7).u8(2))), HasSubstr("metadata 'k': bool value 2"));
  EXPECT_THAT(parse_error(one(Bytes().str("k").u32(4).raw("\1\2"), 0)),
              HasSubstr("metadata 'k': the file is truncated: the header needs 4 bytes"));
  EXPECT_THAT(parse_error(one(Bytes().str("k\n'x").u32(13))), HasSubstr("metadata 'k\\x0a\\x27x'"));
  // Arrays: a count beyond the bytes left, an unknown element type, nesting too deep (9 levels), and 8 is
  // fine.
  EXPECT_THAT(parse_error(one(Bytes().str("a").u32(9).u32(5).u64(uint64_t(1) << 61).u32(0))),
              HasSubstr("metadata 'a': array count 2305843009213693952 of i32 exceeds the file"));
  EXPECT_THAT(parse_error(one(Bytes().str("a").u32(9).u32(8).u64(~uint64_t(0)))),
              HasSubstr("array count 18446744073709551615 of string exceeds the file"));
  EXPECT_THAT(parse_error(one(Bytes().str("a").u32(9).u32(9).u64(1).u32(9).u64(1000000).u64(0))),
              HasSubstr("metadata 'a'[0]: array count 1000000 of array exceeds the file"));
  EXPECT_THAT(parse_error(one(Bytes().str("a").u32(9).u32(42).u64(0))),
              HasSubstr("metadata 'a' (array element type): unknown value type 42"));
  EXPECT_THAT(parse_error(one(Bytes().str("a").u32(9).u32(8).u64(2).str("x").u64(100))),
              HasSubstr("metadata 'a'[1]: string length 100 exceeds the file"));
  EXPECT_THAT(parse_error(one(Bytes().str("a").u32(9).u32(7).u64(3).raw(std::string("\1\0\5", 3)))),
              HasSubstr("metadata 'a'[2]: bool value 5"));
  auto nested = [](int levels) {
    Bytes b;
    b.str("deep").u32(9);
    for (int i = 1; i < levels; ++i) b.u32(9).u64(1);
    b.u32(0).u64(1).u8(42);
    return b;
  };
  EXPECT_THAT(parse_error(one(nested(kGgufMaxArrayDepth + 1))), HasSubstr("nested deeper than 8 levels"));
  const GgufHeader ok = parse_gguf(to_bytes(one(nested(kGgufMaxArrayDepth))), "ok.gguf");
  const GgufArray* a = &std::get<GgufArray>(ok.find_value("deep")->data);
  for (int i = 1; i < kGgufMaxArrayDepth; ++i) a = &a->arrays.at(0);
  EXPECT_EQ(a->uints, std::vector<uint64_t>{42});
}

TEST(GgufCrafted, Alignment) {
  auto with_alignment = [](const Bytes& value) {
    Bytes b = gguf_start(1, 1).str("general.alignment").raw(value.s);
    return b.tensor("t", {8}, 0, 0).pad(64).raw(std::string(64, '\0')).s;
  };
  EXPECT_THAT(parse_error(with_alignment(Bytes().u32(4).u32(0))),
              HasSubstr("metadata 'general.alignment': 0 is not a nonzero power of two"));
  EXPECT_THAT(parse_error(with_alignment(Bytes().u32(4).u32(3))),
              HasSubstr("3 is not a nonzero power of two"));
  EXPECT_THAT(parse_error(with_alignment(Bytes().u32(5).u32(64))),
              HasSubstr("metadata 'general.alignment': expected u32, found i32"));
  const GgufHeader h = parse_gguf(to_bytes(with_alignment(Bytes().u32(4).u32(64))), "a.gguf");
  EXPECT_EQ(h.alignment(), 64u);
  EXPECT_EQ(h.data_offset() % 64, 0u);
  // An offset that is a multiple of 32 but not of the file's 64.
  Bytes b = gguf_start(1, 1).kv_u32("general.alignment", 64).tensor("t", {8}, 0, 32).pad(64);
  EXPECT_THAT(parse_error(b.raw(std::string(128, '\0')).s),
              HasSubstr("tensor 't': data offset 32 is not a multiple of the alignment 64"));
}

// One tensor info (and enough zero data after it) for the tensor-info checks.
std::string one_tensor(const std::vector<uint64_t>& ne, uint32_t type, uint64_t offset = 0,
                       size_t data = 64) {
  return gguf_start(1, 0).tensor("t", ne, type, offset).pad(32).raw(std::string(data, '\0')).s;
}

TEST(GgufCrafted, TensorInfos) {
  EXPECT_THAT(parse_error(one_tensor({1, 1, 1, 1, 1}, 0)),
              HasSubstr("tensor 't': n_dims 5 exceeds the maximum 4"));
  EXPECT_THAT(parse_error(one_tensor({48}, 8)),
              HasSubstr("tensor 't': row length ne[0] = 48 is not a multiple of the Q8_0 block size 32"));
  EXPECT_THAT(parse_error(one_tensor({128, 2}, 12)), HasSubstr("not a multiple of the Q4_K block size 256"));
  EXPECT_THAT(parse_error(one_tensor({uint64_t(1) << 32, uint64_t(1) << 32}, 0)),
              HasSubstr("tensor 't': ggml dims [4294967296, 4294967296] hold more than 2^63 - 1 elements"));
  EXPECT_THAT(parse_error(one_tensor({~uint64_t(0)}, 0)), HasSubstr("dimension 0 exceeds 2^63 - 1"));
  EXPECT_THAT(parse_error(one_tensor({uint64_t(1) << 62}, 0)), HasSubstr("of F32 need more than 2^64 bytes"));
  EXPECT_THAT(parse_error(one_tensor({8}, 0, ~uint64_t(31))), HasSubstr("overflows 64 bits"));
  EXPECT_THAT(parse_error(one_tensor({8}, 0, 16)),
              HasSubstr("tensor 't': data offset 16 is not a multiple of the alignment 32"));
  EXPECT_THAT(parse_error(one_tensor({8}, 200)), HasSubstr("tensor 't': unknown ggml type 200"));
  EXPECT_THAT(
      parse_error(one_tensor({256}, 16)),
      HasSubstr("tensor 't': ggml type 16 (IQ2_XXS) is not supported (supported: F32, F16, BF16, Q4_0, "
                "Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K)"));
  EXPECT_THAT(parse_error(one_tensor({32}, 4)),
              HasSubstr("ggml type 4 (Q4_2, removed from ggml) is not supported"));
  EXPECT_THAT(parse_error(one_tensor({8}, 28)), HasSubstr("ggml type 28 (F64) is not supported"));
  EXPECT_THAT(parse_error(gguf_start(1, 0).str("").u32(1).u64(1).u32(0).u64(0).s + std::string(64, '\0')),
              HasSubstr("tensor info #0 has an empty name"));
  EXPECT_THAT(parse_error(gguf_start(1, 0).u64(1000).raw("x").s + std::string(64, '\0')),
              HasSubstr("tensor info #0 (name): string length 1000 exceeds the file"));
  EXPECT_THAT(parse_error(gguf_start(2, 0).tensor("t", {8}, 0, 0).tensor("t", {8}, 0, 32).pad(32).s +
                          std::string(64, '\0')),
              HasSubstr("tensor 't' is declared twice"));
  EXPECT_THAT(parse_error(gguf_start(1, 0).tensor("t", {8}, 0, 0).s), HasSubstr("before the data section"));
  EXPECT_THAT(parse_error(gguf_start(1, 0).str("t").u32(2).u64(8).u64(8).u32(0).s),
              HasSubstr("tensor 't': the file is truncated: the header needs 28 bytes"));

  // Valid edge cases: no dims (a scalar), an empty tensor, tensors stored in another order than declared.
  const GgufHeader scalar = parse_gguf(to_bytes(one_tensor({}, 0)), "s.gguf");
  EXPECT_EQ(scalar.tensors()[0].shape, Shape{});
  EXPECT_EQ(scalar.tensors()[0].nbytes, 4u);
  const GgufHeader empty = parse_gguf(to_bytes(one_tensor({32, 0}, 8, 0, 0)), "e.gguf");
  EXPECT_EQ(empty.tensors()[0].shape, (Shape{0, 32}));
  EXPECT_EQ(empty.tensors()[0].nbytes, 0u);
  const std::string reversed =
      gguf_start(2, 0).tensor("a", {8}, 0, 32).tensor("b", {8}, 0, 0).pad(32).raw(std::string(64, '\0')).s;
  const GgufHeader r = parse_gguf(to_bytes(reversed), "r.gguf");
  EXPECT_EQ(r.tensors()[0].data - r.tensors()[1].data, 32);
}

TEST(GgufCrafted, DataPlacement) {
  // b overlaps a.
  EXPECT_THAT(parse_error(gguf_start(2, 0).tensor("a", {16}, 0, 0).tensor("b", {8}, 0, 32).pad(32).s +
                          std::string(96, '\0')),
              HasSubstr("tensors 'a' [0, 64) and 'b' [32, 64) overlap in the data section"));
  // b inside a large a, declared first.
  EXPECT_THAT(parse_error(gguf_start(2, 0).tensor("b", {8}, 0, 64).tensor("a", {64}, 0, 0).pad(32).s +
                          std::string(256, '\0')),
              HasSubstr("tensors 'a' [0, 256) and 'b' [64, 96) overlap"));
  // In order, the second cut short: truncation. Out of place: a bad offset.
  const Bytes two = gguf_start(2, 0).tensor("a", {8}, 0, 0).tensor("b", {16}, 0, 32).pad(32);
  EXPECT_THAT(parse_error(two.s + std::string(80, '\0')),
              HasSubstr("the file is truncated: tensor data of 'b' ends at byte " +
                        std::to_string(two.s.size() + 96) + " past the end of the file (" +
                        std::to_string(two.s.size() + 80) + " bytes)"));
  const Bytes gap = gguf_start(2, 0).tensor("a", {8}, 0, 0).tensor("b", {16}, 0, 4096).pad(32);
  EXPECT_THAT(parse_error(gap.s + std::string(96, '\0')),
              HasSubstr("tensor 'b': data offset/size outside the file (offset 4096 + 64 bytes"));
  EXPECT_THAT(parse_error(gguf_start(1, 0).tensor("e", {0}, 0, 4096).pad(32).s),
              HasSubstr("tensor 'e': data offset/size outside the file (empty tensor at offset 4096"));
}

TEST(GgmlTypes, MapToDTypes) {
  EXPECT_EQ(dtype_from_ggml_type(0), DType::F32);
  EXPECT_EQ(dtype_from_ggml_type(14), DType::Q6_K);
  EXPECT_EQ(dtype_from_ggml_type(30), DType::BF16);
  EXPECT_EQ(dtype_from_ggml_type(9), std::nullopt);
  EXPECT_EQ(dtype_from_ggml_type(1000), std::nullopt);
  EXPECT_EQ(ggml_type_from_dtype(DType::Q4_K), 12u);
  EXPECT_EQ(ggml_type_from_dtype(DType::F8_E4M3), std::nullopt);
  EXPECT_EQ(ggml_type_name(35), "TQ2_0");
  EXPECT_EQ(ggml_type_name(999), "");
  // Every supported id maps back to itself.
  int supported = 0;
  for (uint32_t id = 0; id < 64; ++id) {
    if (auto d = dtype_from_ggml_type(id)) {
      EXPECT_EQ(ggml_type_from_dtype(*d), id);
      ++supported;
    }
  }
  EXPECT_EQ(supported, 13);
}

}  // namespace
}  // namespace krea2
