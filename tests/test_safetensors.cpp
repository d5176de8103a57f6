// safetensors reader/writer: round trips, the reference fixtures, and every malformed-file rejection.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "io/safetensors.h"
#include "krea2/error.h"
#include "support/safetensors_craft.h"
#include "support/test_util.h"
#include "tensor/convert.h"

namespace krea2 {
namespace {

using test::TempDir;
using test::write_crafted;
using ::testing::HasSubstr;

template <typename T>
std::string bytes_of(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

std::string bytes_of(const TensorView& t) {
  return std::string(reinterpret_cast<const char*>(t.data), t.nbytes);
}

// Message of the krea2::Error that opening `path` throws (a test failure if it opens).
std::string open_error(const std::string& path) {
  try {
    SafetensorsFile f(path);
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected krea2::Error, got another exception: " << e.what();
    return e.what();
  }
  ADD_FAILURE() << path << " opened without error";
  return "";
}

TEST(Safetensors, RoundTripAllDtypesWithMetadata) {
  TempDir dir;
  const std::string path = dir.file("all.safetensors");
  std::vector<float> f32 = test::random_floats(24, 1);
  std::vector<uint16_t> bf16, f16;
  for (int i = 0; i < 6; ++i) {
    bf16.push_back(f32_to_bf16(0.25f * float(i) - 0.5f));
    f16.push_back(f32_to_f16(1.5f * float(i)));
  }
  std::vector<int64_t> i64 = {-(int64_t(1) << 40), -1, 0, 7, int64_t(1) << 50};
  std::vector<int32_t> i32 = {-3, 2, 1 << 30};
  std::vector<uint8_t> b = {1, 0, 0, 1};
  std::vector<TensorToWrite> in = {
      {"w.f32", DType::F32, {2, 3, 4}, f32.data()}, {"w.bf16", DType::BF16, {2, 3}, bf16.data()},
      {"a.f16", DType::F16, {6}, f16.data()},       {"ids", DType::I64, {5}, i64.data()},
      {"n", DType::I32, {1, 3}, i32.data()},        {"mask", DType::BOOL, {1, 4}, b.data()},
      {"empty", DType::F32, {0, 3}, nullptr},       {"scalar", DType::F32, {}, f32.data()},
  };
  std::map<std::string, std::string> meta = {{"format", "pt"}, {"note", "krea2 \"test\" \xc3\xa9"}};
  write_safetensors(path, in, meta);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));

  // The header is padded so the data block starts 8-byte aligned.
  std::string raw = test::read_file(path);
  ASSERT_GE(raw.size(), 8u);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | uint8_t(raw[size_t(i)]);
  EXPECT_EQ(header_len % 8, 0u);

  SafetensorsFile f(path);
  EXPECT_EQ(f.path(), path);
  EXPECT_EQ(f.metadata(), meta);
  ASSERT_EQ(f.tensors().size(), in.size());
  const std::vector<std::string> expected_bytes = {
      bytes_of(f32), bytes_of(bf16), bytes_of(f16), bytes_of(i64),
      bytes_of(i32), bytes_of(b),    std::string(), bytes_of(std::vector<float>{f32[0]})};
  for (size_t i = 0; i < in.size(); ++i) {
    const TensorView& t = f.tensors()[i];  // header order is the write order
    SCOPED_TRACE(in[i].name);
    EXPECT_EQ(t.name, in[i].name);
    EXPECT_EQ(t.dtype, in[i].dtype);
    EXPECT_EQ(t.shape, in[i].shape);
    EXPECT_EQ(t.nbytes, size_t(t.numel()) * dtype_size(t.dtype));
    EXPECT_EQ(bytes_of(t), expected_bytes[i]);
    EXPECT_EQ(f.find(in[i].name), &t);
  }
  EXPECT_EQ(f.find("missing"), nullptr);
  EXPECT_EQ(f.find("empty")->numel(), 0);
  EXPECT_EQ(f.find("scalar")->numel(), 1);
  EXPECT_EQ(to_float_tensor(*f.find("w.bf16")).data[1], -0.25f);
  EXPECT_EQ(to_float_tensor(*f.find("a.f16")).data[5], 7.5f);
}

TEST(Safetensors, RoundTripFloatTensorMap) {
  TempDir dir;
  const std::string path = dir.file("map.safetensors");
  std::map<std::string, Tensor> in;
  in["b"] = Tensor({3, 2}, test::random_floats(6, 2));
  in["a"] = Tensor({4}, test::random_floats(4, 3));
  in["z"] = Tensor({0});
  write_safetensors(path, in);

  SafetensorsFile f(path);
  EXPECT_TRUE(f.metadata().empty());
  ASSERT_EQ(f.tensors().size(), 3u);
  for (const auto& [name, t] : in) {
    const TensorView* v = f.find(name);
    ASSERT_NE(v, nullptr) << name;
    EXPECT_EQ(v->dtype, DType::F32);
    EXPECT_EQ(v->shape, t.shape);
    EXPECT_EQ(to_float_tensor(*v).data, t.data);
  }
}

TEST(Safetensors, OverwritesExistingFile) {
  TempDir dir;
  const std::string path = dir.file("x.safetensors");
  write_safetensors(path, std::map<std::string, Tensor>{{"old", Tensor({2})}});
  write_safetensors(path, std::map<std::string, Tensor>{{"new", Tensor({3}, {1, 2, 3})}});
  SafetensorsFile f(path);
  ASSERT_EQ(f.tensors().size(), 1u);
  EXPECT_EQ(f.tensors()[0].name, "new");
}

TEST(Safetensors, WriteFailureLeavesNothing) {
  TempDir dir;
  const std::string path = dir.file("no_such_dir/x.safetensors");
  try {
    write_safetensors(path, std::map<std::string, Tensor>{{"t", Tensor({2})}});
    FAIL() << "write into a missing folder succeeded";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("x.safetensors"));
  }
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST(Safetensors, WriteRejectsBadInput) {
  TempDir dir;
  const std::string path = dir.file("bad.safetensors");
  float x[2] = {1, 2};
  EXPECT_THROW(write_safetensors(path, {{"a", DType::F32, {2}, x}, {"a", DType::F32, {2}, x}}), Error);
  EXPECT_THROW(write_safetensors(path, {{"a", DType::F32, {-2}, x}}), Error);
  EXPECT_THROW(write_safetensors(path, {{"__metadata__", DType::F32, {2}, x}}), Error);
  EXPECT_THROW(write_safetensors(path, {{"a", DType::F32, {2}, nullptr}}), Error);
  // Data size that disagrees with the shape.
  EXPECT_THROW(write_safetensors(path, std::map<std::string, Tensor>{{"t", Tensor({2, 2}, {1, 2, 3})}}),
               Error);
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST(Safetensors, ReadsTinyFixtureInputs) {
  SafetensorsFile f(test::fixture_dir("tiny") + "/inputs.safetensors");
  struct Want {
    const char* name;
    DType dtype;
    Shape shape;
  };
  const Want want[] = {
      {"hidden_states", DType::F32, {1, 4, 16}},
      {"encoder_hidden_states", DType::F32, {1, 4, 3, 16}},
      {"timestep", DType::F32, {1}},
      {"position_ids", DType::F32, {8, 3}},
      {"encoder_attention_mask", DType::BOOL, {1, 4}},
  };
  EXPECT_EQ(f.tensors().size(), std::size(want));
  for (const Want& w : want) {
    const TensorView* t = f.find(w.name);
    ASSERT_NE(t, nullptr) << w.name;
    EXPECT_EQ(t->dtype, w.dtype) << w.name;
    EXPECT_EQ(t->shape, w.shape) << w.name;
    EXPECT_EQ(t->nbytes, size_t(t->numel()) * dtype_size(w.dtype)) << w.name;
  }
  for (float m : to_float_tensor(*f.find("encoder_attention_mask")).data) EXPECT_TRUE(m == 0.0f || m == 1.0f);
  Tensor h = to_float_tensor(*f.find("hidden_states"));
  EXPECT_GT(test::max_abs(h.ptr(), h.data.size()), 0.0);
}

TEST(Safetensors, ReadsEveryFixtureFile) {
  for (const auto& entry : std::filesystem::recursive_directory_iterator(test::fixture_dir(""))) {
    if (entry.path().extension() != ".safetensors") continue;
    SCOPED_TRACE(entry.path().string());
    SafetensorsFile f(entry.path().string());
    EXPECT_FALSE(f.tensors().empty());
  }
}

TEST(Safetensors, AcceptsEdgeCases) {
  TempDir dir;
  // Empty header object: no tensors.
  EXPECT_TRUE(SafetensorsFile(write_crafted(dir.file("e.safetensors"), "{}")).tensors().empty());
  // Trailing spaces (padding), empty tensors sharing an offset, unused trailing bytes.
  SafetensorsFile f(write_crafted(dir.file("p.safetensors"),
                                  R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},)"
                                  R"("b":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                                  R"("c":{"dtype":"I8","shape":[2,0],"data_offsets":[4,4]}}   )",
                                  std::string("\x01\x02\x03\x04\x05", 5)));
  ASSERT_EQ(f.tensors().size(), 3u);
  EXPECT_EQ(f.tensors()[0].name, "a");  // header order, not sorted
  EXPECT_EQ(bytes_of(*f.find("b")), "\x01\x02\x03\x04");
}

// --- Malformed files: each must give a krea2::Error naming the file and the problem. ---

class SafetensorsMalformed : public ::testing::Test {
 protected:
  // Writes a crafted file named `name` and returns the error opening it, checking it names the file.
  std::string error_for(const std::string& name, const std::string& header, const std::string& data = "",
                        int64_t header_len = -1) {
    std::string msg = open_error(write_crafted(dir_.file(name), header, data, header_len));
    EXPECT_THAT(msg, HasSubstr(name));
    return msg;
  }
  std::string entry(const std::string& body) { return R"({"t":{)" + body + "}}"; }
  TempDir dir_;
};

TEST_F(SafetensorsMalformed, MissingFile) {
  std::string msg = open_error(dir_.file("absent.safetensors"));
  EXPECT_THAT(msg, HasSubstr("absent.safetensors"));
  EXPECT_THAT(msg, HasSubstr("No such file"));
}

TEST_F(SafetensorsMalformed, Directory) {
  EXPECT_THAT(open_error(dir_.path()), HasSubstr("not a regular file"));
}

TEST_F(SafetensorsMalformed, EmptyFile) {
  test::write_file(dir_.file("empty.safetensors"), "");
  std::string msg = open_error(dir_.file("empty.safetensors"));
  EXPECT_THAT(msg, HasSubstr("empty.safetensors"));
  EXPECT_THAT(msg, HasSubstr("is 0 bytes"));
}

TEST_F(SafetensorsMalformed, FiveByteFile) {
  test::write_file(dir_.file("five.safetensors"), "abcde");
  std::string msg = open_error(dir_.file("five.safetensors"));
  EXPECT_THAT(msg, HasSubstr("five.safetensors"));
  EXPECT_THAT(msg, HasSubstr("is 5 bytes"));
}

TEST_F(SafetensorsMalformed, HugeHeaderLength) {
  std::string msg = error_for("huge.safetensors", "{}", "", int64_t(1) << 60);
  EXPECT_THAT(msg, HasSubstr("header length 1152921504606846976 exceeds the limit"));
}

TEST_F(SafetensorsMalformed, HeaderLongerThanFile) {
  std::string msg = error_for("short.safetensors", "{}", "", 100);
  EXPECT_THAT(msg, HasSubstr("header length 100 exceeds the file size"));
}

TEST_F(SafetensorsMalformed, HeaderNotJson) {
  EXPECT_THAT(error_for("nj.safetensors", "{not json"), HasSubstr("header is not valid JSON"));
}

TEST_F(SafetensorsMalformed, HeaderJsonArray) {
  std::string msg = error_for("arr.safetensors", "[1, 2]");
  EXPECT_THAT(msg, HasSubstr("header is not a JSON object"));
  EXPECT_THAT(msg, HasSubstr("array"));
}

TEST_F(SafetensorsMalformed, EntryNotObject) {
  EXPECT_THAT(error_for("eno.safetensors", R"({"t": [1]})"),
              HasSubstr("tensor t: entry is not a JSON object"));
}

TEST_F(SafetensorsMalformed, DuplicateTensorName) {
  std::string e = R"({"dtype":"U8","shape":[1],"data_offsets":[0,1]})";
  EXPECT_THAT(error_for("dup.safetensors", R"({"t":)" + e + R"(,"t":)" + e + "}", "x"),
              HasSubstr("tensor t: name appears twice"));
}

TEST_F(SafetensorsMalformed, UnknownDtype) {
  std::string msg =
      error_for("q7.safetensors", entry(R"("dtype":"Q7","shape":[1],"data_offsets":[0,1])"), "x");
  EXPECT_THAT(msg, HasSubstr("tensor t: unknown dtype \"Q7\""));
}

TEST_F(SafetensorsMalformed, MissingDtype) {
  EXPECT_THAT(error_for("nodt.safetensors", entry(R"("shape":[1],"data_offsets":[0,1])"), "x"),
              HasSubstr("tensor t: missing or non-string \"dtype\""));
}

TEST_F(SafetensorsMalformed, NegativeShape) {
  std::string msg =
      error_for("neg.safetensors", entry(R"("dtype":"U8","shape":[2,-3],"data_offsets":[0,6])"));
  EXPECT_THAT(msg, HasSubstr("tensor t: shape must be a list of non-negative integers"));
  EXPECT_THAT(msg, HasSubstr("[2,-3]"));
}

TEST_F(SafetensorsMalformed, NonIntegerShape) {
  EXPECT_THAT(error_for("fs.safetensors", entry(R"("dtype":"U8","shape":[2.0],"data_offsets":[0,2])"), "xx"),
              HasSubstr("tensor t: shape must be a list of non-negative integers"));
  EXPECT_THAT(error_for("ss.safetensors", entry(R"("dtype":"U8","shape":"2","data_offsets":[0,2])"), "xx"),
              HasSubstr("tensor t: shape must be a list of non-negative integers"));
}

TEST_F(SafetensorsMalformed, OffsetsReversed) {
  std::string msg = error_for("rev.safetensors", entry(R"("dtype":"U8","shape":[4],"data_offsets":[8,4])"),
                              std::string(8, 'x'));
  EXPECT_THAT(msg, HasSubstr("tensor t: data_offsets [8, 4] have begin > end"));
}

TEST_F(SafetensorsMalformed, OffsetsNotTwoIntegers) {
  EXPECT_THAT(error_for("o3.safetensors", entry(R"("dtype":"U8","shape":[1],"data_offsets":[0,1,2])"), "xx"),
              HasSubstr("tensor t: data_offsets must be 2 non-negative integers"));
  EXPECT_THAT(error_for("on.safetensors", entry(R"("dtype":"U8","shape":[1],"data_offsets":[-1,0])"), "xx"),
              HasSubstr("tensor t: data_offsets must be 2 non-negative integers"));
}

TEST_F(SafetensorsMalformed, WrongByteLengthForDtype) {
  std::string msg =
      error_for("len.safetensors", entry(R"("dtype":"BF16","shape":[2,3],"data_offsets":[0,10])"),
                std::string(10, 'x'));
  EXPECT_THAT(msg, HasSubstr("tensor t: dtype BF16 shape (2, 3) needs 12 bytes, data_offsets give 10"));
}

TEST_F(SafetensorsMalformed, ShapeProductOverflows) {
  std::string msg = error_for(
      "ovf.safetensors", entry(R"("dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,0])"));
  EXPECT_THAT(msg, HasSubstr("needs more than 2^64 bytes"));
}

TEST_F(SafetensorsMalformed, OffsetsBeyondFile) {
  // 4 floats declared, only 8 data bytes present: a truncated file.
  std::string msg = error_for(
      "trunc.safetensors", entry(R"("dtype":"F32","shape":[4],"data_offsets":[0,16])"), std::string(8, 'x'));
  EXPECT_THAT(msg, HasSubstr("tensor t: data_offsets [0, 16] extend past the data block of 8 bytes"));
}

TEST_F(SafetensorsMalformed, OverlappingTensors) {
  std::string msg = error_for("ovl.safetensors",
                              R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                              R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                              std::string(12, 'x'));
  EXPECT_THAT(msg, HasSubstr("tensors a [0, 8) and b [4, 12) overlap"));
}

TEST_F(SafetensorsMalformed, ContainedTensorOverlaps) {
  // c lies inside a even though it does not overlap b, the range just before it.
  std::string msg = error_for("ovl2.safetensors",
                              R"({"a":{"dtype":"U8","shape":[10],"data_offsets":[0,10]},)"
                              R"("b":{"dtype":"U8","shape":[1],"data_offsets":[1,2]},)"
                              R"("c":{"dtype":"U8","shape":[2],"data_offsets":[5,7]}})",
                              std::string(10, 'x'));
  EXPECT_THAT(msg, HasSubstr("overlap"));
}

TEST_F(SafetensorsMalformed, NonStringMetadata) {
  std::string msg = error_for("meta.safetensors", R"({"__metadata__":{"ok":"x","k":1}})");
  EXPECT_THAT(msg, HasSubstr("__metadata__ must be an object of strings"));
  EXPECT_THAT(msg, HasSubstr("\"k\""));
  EXPECT_THAT(error_for("meta2.safetensors", R"({"__metadata__":["x"]})"),
              HasSubstr("__metadata__ must be an object of strings"));
}

}  // namespace
}  // namespace krea2
