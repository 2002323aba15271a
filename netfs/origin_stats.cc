#include "netfs/origin_stats.h"

namespace cachefs {

std::vector<std::pair<std::string, uint64_t>> OriginStats::Snapshot() const {
  auto get = [](const Counter& c) { return c.load(std::memory_order_relaxed); };
  std::vector<std::pair<std::string, uint64_t>> out = {
      {"origin_attr_fetches", get(attr_fetches)},
      {"origin_walks", get(walks)},
      {"origin_opens", get(opens)},
      {"origin_reads", get(reads)},
      {"origin_writes", get(writes)},
      {"origin_dir_opens", get(dir_opens)},
      {"origin_changes", get(changes)},
      {"origin_other", get(other)},
  };
  uint64_t calls = 0;
  for (const auto& [name, value] : out) calls += value;
  out.push_back({"origin_calls", calls});
  return out;
}

}  // namespace cachefs
