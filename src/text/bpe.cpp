#include "text/bpe.h"

#include <algorithm>

namespace krea2::text {

namespace {

struct Symbol {
  int32_t id;
  int32_t prev, next;  // -1 at the ends
  bool alive;
};

struct Candidate {
  int32_t rank;
  int32_t pos;  // index of the left symbol
  int32_t merged_id;
};

// Min-heap order: lowest rank, then leftmost.
bool later(const Candidate& a, const Candidate& b) {
  return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
}

struct Scratch {
  std::vector<Symbol> symbols;
  std::vector<Candidate> heap;
};

}  // namespace

void BpeMerges::encode(std::string_view piece, const std::array<int32_t, 256>& byte_ids, int32_t unk,
                       std::vector<int32_t>& out) const {
  thread_local Scratch s;
  auto& sym = s.symbols;
  auto& heap = s.heap;
  sym.clear();
  heap.clear();
  for (char c : piece) {
    int32_t id = byte_ids[static_cast<unsigned char>(c)];
    if (id < 0) id = unk;
    if (id < 0) continue;
    const int32_t n = int32_t(sym.size());
    sym.push_back(Symbol{id, n - 1, -1, true});
    if (n > 0) sym[size_t(n - 1)].next = n;
  }
  if (sym.size() == 1) {
    out.push_back(sym[0].id);
    return;
  }
  auto push = [&](int32_t pos) {
    const Symbol& l = sym[size_t(pos)];
    if (l.next < 0) return;
    if (const Merge* m = find(l.id, sym[size_t(l.next)].id)) {
      heap.push_back(Candidate{m->rank, pos, m->merged_id});
      std::push_heap(heap.begin(), heap.end(), later);
    }
  };
  for (int32_t i = 0; i + 1 < int32_t(sym.size()); ++i) push(i);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), later);
    const Candidate top = heap.back();
    heap.pop_back();
    Symbol& left = sym[size_t(top.pos)];
    if (!left.alive || left.next < 0) continue;
    Symbol& right = sym[size_t(left.next)];
    // A stale entry: the pair at pos changed since it was queued.
    const Merge* m = find(left.id, right.id);
    if (!m || m->merged_id != top.merged_id || m->rank != top.rank) continue;
    left.id = top.merged_id;
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0) sym[size_t(right.next)].prev = top.pos;
    if (left.prev >= 0) push(left.prev);
    push(top.pos);
  }
  for (int32_t i = sym.empty() ? -1 : 0; i >= 0; i = sym[size_t(i)].next) out.push_back(sym[size_t(i)].id);
}

}  // namespace krea2::text
