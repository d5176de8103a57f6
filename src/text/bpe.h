// The BPE merge loop of byte-level BPE (HF tokenizers' `Word::merge_all`): start from one symbol per byte,
// repeatedly merge the adjacent pair of lowest merge rank (leftmost first on ties) until no pair has a merge.
#pragma once
#include <array>
#include <cstdint>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace krea2::text {

struct Merge {
  int32_t rank;
  int32_t merged_id;
};

class BpeMerges {
 public:
  // Adds the merge (left, right) -> merged at the next rank; a pair given again takes the later rank (as HF's
  // map and the slow tokenizer's dict do).
  void add(int32_t left, int32_t right, int32_t merged, int32_t rank) {
    map_[key(left, right)] = Merge{rank, merged};
  }
  const Merge* find(int32_t left, int32_t right) const {
    auto it = map_.find(key(left, right));
    return it == map_.end() ? nullptr : &it->second;
  }
  size_t size() const { return map_.size(); }
  void reserve(size_t n) { map_.reserve(n); }

  // Appends the ids of the byte string `piece` (one pre-token) to `out`. byte_ids[b]: the id of byte b's
  // byte-level character, or `unk` (>= 0) when it is missing; bytes with neither are dropped (HF without
  // unk_token).
  void encode(std::string_view piece, const std::array<int32_t, 256>& byte_ids, int32_t unk,
              std::vector<int32_t>& out) const;

 private:
  static uint64_t key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }
  std::unordered_map<uint64_t, Merge> map_;
};

}  // namespace krea2::text
