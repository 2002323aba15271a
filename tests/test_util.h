// Helpers shared by the tests: status assertions (abseil 20220623 has no
// status matchers), a self-removing temporary directory, and a bounded
// wait for something a background thread or daemon does.

#ifndef CACHEFS_TESTS_TEST_UTIL_H_
#define CACHEFS_TESTS_TEST_UTIL_H_

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace cachefs::testing {

inline const absl::Status& ToStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& ToStatus(const absl::StatusOr<T>& s) {
  return s.status();
}

// The result of `expr` is bound first so a temporary StatusOr outlives
// the check.
#define ASSERT_OK(expr)                                                 \
  do {                                                                  \
    const auto& cachefs_result_ = (expr);                               \
    const absl::Status& cachefs_status_ =                               \
        ::cachefs::testing::ToStatus(cachefs_result_);                  \
    ASSERT_TRUE(cachefs_status_.ok()) << cachefs_status_;               \
  } while (0)
#define EXPECT_OK(expr)                                                 \
  do {                                                                  \
    const auto& cachefs_result_ = (expr);                               \
    const absl::Status& cachefs_status_ =                               \
        ::cachefs::testing::ToStatus(cachefs_result_);                  \
    EXPECT_TRUE(cachefs_status_.ok()) << cachefs_status_;               \
  } while (0)

// A fresh directory under $TMPDIR (default /var/tmp, which is disk-backed
// and so supports O_DIRECT), removed with everything in it on destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& parent = "");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // An O_PATH|O_DIRECTORY descriptor is not enough for *at syscalls that
  // create; this is a plain O_DIRECTORY descriptor, closed on destruction.
  int fd() const { return fd_; }

 private:
  std::string path_;
  int fd_ = -1;
};

// `n` bytes from a generator seeded with `seed`: the same for the same
// seed.
std::string RandomBytes(size_t n, uint32_t seed);

// Asks `done` every `period` until it says yes or `timeout` has passed;
// returns its last answer.
bool Eventually(const std::function<bool()>& done,
                absl::Duration timeout = absl::Seconds(5),
                absl::Duration period = absl::Milliseconds(50));

}  // namespace cachefs::testing

#endif  // CACHEFS_TESTS_TEST_UTIL_H_
