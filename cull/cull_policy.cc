// The registry of cull policies, by name.

#include "cull/cull_policy.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cull/policies.h"

namespace cachefs {
namespace {

struct PolicyEntry {
  std::string_view name;
  std::unique_ptr<CullPolicy> (*make)(uint64_t capacity_bytes);
};

constexpr PolicyEntry kPolicies[] = {
    {"lru", NewLruPolicy},
    {"arc", NewArcPolicy},
    {"s3fifo", NewS3FifoPolicy},
    {"sieve", NewSievePolicy},
};

}  // namespace

std::vector<std::string> CullPolicyNames() {
  std::vector<std::string> names;
  for (const PolicyEntry& p : kPolicies) names.emplace_back(p.name);
  return names;
}

absl::StatusOr<std::unique_ptr<CullPolicy>> MakeCullPolicy(
    std::string_view name, uint64_t capacity_bytes) {
  for (const PolicyEntry& p : kPolicies) {
    if (p.name == name) return p.make(capacity_bytes);
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown cull policy '", std::string(name),
      "'; valid policies: ", absl::StrJoin(CullPolicyNames(), ", ")));
}

}  // namespace cachefs
