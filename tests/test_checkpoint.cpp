// Checkpoint: single files, sharded checkpoints through an index, model-folder resolution, and bad indexes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "io/checkpoint.h"
#include "krea2/error.h"
#include "support/test_util.h"

namespace krea2 {
namespace {

namespace fs = std::filesystem;
using test::TempDir;
using ::testing::EndsWith;
using ::testing::HasSubstr;

const char kIndexName[] = "diffusion_pytorch_model.safetensors.index.json";

std::string sharded_dir() {
  return test::fixture_dir("small_sharded_bf16") + "/transformer";
}

std::string open_error(const std::string& path) {
  try {
    Checkpoint::open(path);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << path << " opened without error";
  return "";
}

// Checks `ck` against the fixture's index: every mapped tensor present, in the shard the index names.
void expect_matches_sharded_fixture(const Checkpoint& ck) {
  EXPECT_TRUE(fs::equivalent(ck.folder(), sharded_dir())) << ck.folder();
  nlohmann::json index = nlohmann::json::parse(test::read_file(sharded_dir() + "/" + kIndexName));
  const auto& wm = index.at("weight_map");
  ASSERT_EQ(ck.files().size(), 3u);
  ASSERT_EQ(ck.tensors().size(), wm.size());
  for (const auto& [name, shard] : wm.items()) {
    const TensorView* t = ck.find(name);
    ASSERT_NE(t, nullptr) << name;
    const SafetensorsFile* owner = nullptr;
    for (const auto& f : ck.files())
      if (f->find(name) == t) owner = f.get();
    ASSERT_NE(owner, nullptr) << name;
    EXPECT_THAT(owner->path(), EndsWith("/" + shard.get<std::string>())) << name;
  }
  // Sorted by name.
  std::vector<const TensorView*> all = ck.tensors();
  for (size_t i = 1; i < all.size(); ++i) EXPECT_LT(all[i - 1]->name, all[i]->name);
  EXPECT_EQ(ck.find("no.such.tensor"), nullptr);
  // bf16 weights, with the norm weights kept in float32.
  EXPECT_EQ(ck.find("img_in.weight")->dtype, DType::BF16);
}

TEST(Checkpoint, ShardedFixtureViaFolder) {
  expect_matches_sharded_fixture(Checkpoint::open(sharded_dir()));
}

TEST(Checkpoint, ShardedFixtureViaParentFolder) {
  expect_matches_sharded_fixture(Checkpoint::open(test::fixture_dir("small_sharded_bf16")));
}

TEST(Checkpoint, ShardedFixtureViaIndexPath) {
  expect_matches_sharded_fixture(Checkpoint::open(sharded_dir() + "/" + kIndexName));
}

TEST(Checkpoint, SingleShardFile) {
  Checkpoint ck = Checkpoint::open(sharded_dir() + "/diffusion_pytorch_model-00002-of-00003.safetensors");
  EXPECT_EQ(ck.files().size(), 1u);
  EXPECT_EQ(ck.tensors().size(), ck.files()[0]->tensors().size());
  EXPECT_EQ(ck.folder(), sharded_dir());
}

TEST(Checkpoint, SingleFileModelFolder) {
  Checkpoint ck = Checkpoint::open(test::fixture_dir("tiny"));
  ASSERT_EQ(ck.files().size(), 1u);
  EXPECT_THAT(ck.files()[0]->path(), EndsWith("/diffusion_pytorch_model.safetensors"));
  EXPECT_EQ(ck.folder(), test::fixture_dir("tiny") + "/transformer");
  EXPECT_NE(ck.find("img_in.weight"), nullptr);
}

TEST(Checkpoint, ResolveModelFolder) {
  const std::string root = test::fixture_dir("small_sharded_bf16");
  EXPECT_EQ(resolve_model_folder(root), root + "/transformer");
  EXPECT_EQ(resolve_model_folder(root + "/transformer"), root + "/transformer");
  EXPECT_EQ(resolve_model_folder(root + "/transformer/config.json"), root + "/transformer");
  EXPECT_EQ(resolve_model_folder(root + "/inputs.safetensors"), root);
  EXPECT_THROW(resolve_model_folder(root + "/nope"), Error);
}

TEST(Checkpoint, MissingPath) {
  TempDir dir;
  EXPECT_THAT(open_error(dir.file("nope")), HasSubstr("nope: no such file or folder"));
}

// --- Hand-built folders ---

class CheckpointFolder : public ::testing::Test {
 protected:
  void shard(const std::string& name, const std::vector<std::string>& tensors) {
    std::map<std::string, Tensor> m;
    for (const auto& t : tensors) m[t] = Tensor({2}, {1, 2});
    write_safetensors(dir_.file(name), m);
  }
  void index(const std::string& text, const std::string& name = kIndexName) {
    test::write_file(dir_.file(name), text);
  }
  // A valid two-shard layout: a, b in s1; c in s2.
  void two_shards() {
    shard("s1.safetensors", {"a", "b"});
    shard("s2.safetensors", {"c"});
  }
  TempDir dir_;
};

TEST_F(CheckpointFolder, ValidIndex) {
  two_shards();
  index(R"({"metadata":{"total_size":24},"weight_map":{"a":"s1.safetensors","b":"s1.safetensors",)"
        R"("c":"s2.safetensors"}})");
  Checkpoint ck = Checkpoint::open(dir_.path());
  EXPECT_EQ(ck.files().size(), 2u);
  EXPECT_EQ(ck.tensors().size(), 3u);
  EXPECT_EQ(ck.folder(), dir_.path());
}

TEST_F(CheckpointFolder, UnlistedShardTensorIsIncluded) {
  two_shards();
  index(R"({"weight_map":{"a":"s1.safetensors","c":"s2.safetensors"}})");
  Checkpoint ck = Checkpoint::open(dir_.path());
  EXPECT_NE(ck.find("b"), nullptr);
}

TEST_F(CheckpointFolder, IndexInvalidJson) {
  two_shards();
  index("{\"weight_map\": ");
  std::string msg = open_error(dir_.path());
  EXPECT_THAT(msg, HasSubstr(kIndexName));
  EXPECT_THAT(msg, HasSubstr("not valid JSON"));
}

TEST_F(CheckpointFolder, IndexMissingWeightMap) {
  two_shards();
  index(R"({"metadata":{}})");
  std::string msg = open_error(dir_.path());
  EXPECT_THAT(msg, HasSubstr(kIndexName));
  EXPECT_THAT(msg, HasSubstr("no \"weight_map\""));
}

TEST_F(CheckpointFolder, IndexWeightMapNotStrings) {
  two_shards();
  index(R"({"weight_map":{"a":1}})");
  EXPECT_THAT(open_error(dir_.path()), HasSubstr("weight_map entry for tensor a is not a string"));
}

TEST_F(CheckpointFolder, ShardMissingOnDisk) {
  two_shards();
  index(R"({"weight_map":{"a":"s1.safetensors","c":"gone.safetensors"}})");
  std::string msg = open_error(dir_.path());
  EXPECT_THAT(msg, HasSubstr(kIndexName));
  EXPECT_THAT(msg, HasSubstr("shard gone.safetensors not found"));
}

TEST_F(CheckpointFolder, TensorAbsentFromItsShard) {
  two_shards();
  index(R"({"weight_map":{"a":"s1.safetensors","c":"s1.safetensors"}})");
  std::string msg = open_error(dir_.path());
  EXPECT_THAT(msg, HasSubstr("tensor c is mapped to shard s1.safetensors, which does not hold it"));
}

TEST_F(CheckpointFolder, ShardNameEscapingFolder) {
  two_shards();
  for (const char* bad : {"../s1.safetensors", "/etc/passwd", "sub/s1.safetensors", ".."}) {
    SCOPED_TRACE(bad);
    index(std::string(R"({"weight_map":{"a":")") + bad + R"("}})");
    std::string msg = open_error(dir_.path());
    EXPECT_THAT(msg, HasSubstr(kIndexName));
    EXPECT_THAT(msg, HasSubstr("tensor a: shard name \"" + std::string(bad) + "\""));
  }
}

TEST_F(CheckpointFolder, TensorInTwoShards) {
  shard("s1.safetensors", {"a", "b"});
  shard("s2.safetensors", {"b", "c"});
  index(R"({"weight_map":{"a":"s1.safetensors","b":"s1.safetensors","c":"s2.safetensors"}})");
  std::string msg = open_error(dir_.path());
  EXPECT_THAT(msg, HasSubstr("tensor b appears in two shards: s1.safetensors and s2.safetensors"));
}

TEST_F(CheckpointFolder, NoWeights) {
  test::write_file(dir_.file("config.json"), "{}");
  std::string msg = open_error(dir_.path());
  EXPECT_THAT(msg, HasSubstr(dir_.path()));
  EXPECT_THAT(msg, HasSubstr("found index files: none; safetensors files: none"));
}

TEST_F(CheckpointFolder, AmbiguousWeights) {
  two_shards();
  std::string msg = open_error(dir_.path());
  EXPECT_THAT(msg, HasSubstr("safetensors files: s1.safetensors, s2.safetensors"));
}

TEST_F(CheckpointFolder, PrefersDiffusersNames) {
  two_shards();
  shard("diffusion_pytorch_model.safetensors", {"x"});
  Checkpoint ck = Checkpoint::open(dir_.path());
  EXPECT_NE(ck.find("x"), nullptr);
  EXPECT_EQ(ck.find("a"), nullptr);

  // The diffusers index wins over the single file.
  index(R"({"weight_map":{"a":"s1.safetensors"}})");
  ck = Checkpoint::open(dir_.path());
  EXPECT_NE(ck.find("a"), nullptr);
  EXPECT_EQ(ck.find("x"), nullptr);
}

TEST_F(CheckpointFolder, LoneCustomIndex) {
  two_shards();
  index(R"({"weight_map":{"a":"s1.safetensors","c":"s2.safetensors"}})", "model.safetensors.index.json");
  Checkpoint ck = Checkpoint::open(dir_.path());
  EXPECT_EQ(ck.tensors().size(), 3u);
}

TEST_F(CheckpointFolder, LoneCustomFile) {
  shard("weights.safetensors", {"w"});
  Checkpoint ck = Checkpoint::open(dir_.path());
  EXPECT_NE(ck.find("w"), nullptr);
}

}  // namespace
}  // namespace krea2
