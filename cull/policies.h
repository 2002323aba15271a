// The constructors of the policies MakeCullPolicy knows. Each policy lives
// in its own file behind CullPolicy; adding one is that file, its line
// here and its line in the table in cull_policy.cc.

#ifndef CACHEFS_CULL_POLICIES_H_
#define CACHEFS_CULL_POLICIES_H_

#include <cstdint>
#include <memory>

#include "cull/cull_policy.h"

namespace cachefs {

std::unique_ptr<CullPolicy> NewLruPolicy(uint64_t capacity_bytes);
std::unique_ptr<CullPolicy> NewSievePolicy(uint64_t capacity_bytes);
std::unique_ptr<CullPolicy> NewS3FifoPolicy(uint64_t capacity_bytes);
std::unique_ptr<CullPolicy> NewArcPolicy(uint64_t capacity_bytes);

}  // namespace cachefs

#endif  // CACHEFS_CULL_POLICIES_H_
