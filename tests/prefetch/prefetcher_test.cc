// The prefetch layer's jobs over a fake target: the walk, totals, errors
// per file, cancellation and how many fetches run at once. The real
// target (cachefs over real origins) is tested in
// tests/integration/prefetch_test.cc.

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "io/errno_status.h"
#include "prefetch/prefetch.h"

namespace cachefs {
namespace {

// A tree in memory. Fetches can be held until released.
class FakeTarget : public PrefetchTarget {
 public:
  void AddDir(const std::string& path) {
    nodes_[path] = {path, true, false, 0, 0};
  }
  void AddFile(const std::string& path, uint64_t size) {
    nodes_[path] = {path, false, true, size, 0};
  }
  // Fetches of `path` fail with `err` (as if the file went since the walk).
  void FailFetch(const std::string& path, int err) { fail_[path] = err; }
  void HoldFetches() { hold_ = true; }
  void ReleaseFetches() { released_.Notify(); }

  absl::StatusOr<Node> Stat(const std::string& path) override {
    auto it = nodes_.find(path);
    if (it == nodes_.end()) return ErrnoToStatus(ENOENT, "lookup " + path);
    return it->second;
  }
  absl::StatusOr<std::vector<Node>> List(const std::string& path) override {
    std::vector<Node> out;
    const std::string prefix = path.empty() ? "" : path + "/";
    for (const auto& [p, node] : nodes_) {
      if (p.empty() || p.compare(0, prefix.size(), prefix) != 0) continue;
      if (p.find('/', prefix.size()) != std::string::npos) continue;
      out.push_back(node);
    }
    absl::MutexLock lock(&mu_);
    listed_.insert(path);
    return out;
  }
  absl::StatusOr<Fetched> Fetch(const std::string& path,
                                const Progress& progress) override {
    {
      absl::MutexLock lock(&mu_);
      ++running_;
      max_running_ = std::max(max_running_, running_);
      fetched_.push_back(path);
    }
    if (hold_) released_.WaitForNotification();
    absl::StatusOr<Fetched> result;
    if (auto f = fail_.find(path); f != fail_.end()) {
      result = ErrnoToStatus(f->second, "open " + path);
    } else {
      const uint64_t size = nodes_.at(path).size;
      Fetched done;
      // In two halves, so a stop between them is seen.
      if (!progress(size / 2, size / 2)) {
        result = absl::CancelledError("stopped");
      } else {
        done.bytes = done.bytes_fetched = size;
        result = done;
      }
    }
    absl::MutexLock lock(&mu_);
    --running_;
    return result;
  }

  absl::StatusOr<uint64_t> Push(const std::string&, uint64_t,
                                uint64_t len) override {
    return len;
  }

  int max_running() {
    absl::MutexLock lock(&mu_);
    return max_running_;
  }
  std::vector<std::string> fetched() {
    absl::MutexLock lock(&mu_);
    return fetched_;
  }
  std::set<std::string> listed() {
    absl::MutexLock lock(&mu_);
    return listed_;
  }

 private:
  std::map<std::string, Node> nodes_;
  std::map<std::string, int> fail_;
  bool hold_ = false;
  absl::Notification released_;
  absl::Mutex mu_;
  int running_ = 0;
  int max_running_ = 0;
  std::vector<std::string> fetched_;
  std::set<std::string> listed_;
};

PrefetchJob RunToEnd(Prefetcher& prefetcher, PrefetchRequest request) {
  absl::StatusOr<uint64_t> id = prefetcher.Start(std::move(request));
  EXPECT_TRUE(id.ok()) << id.status();
  if (!id.ok()) return {};
  std::optional<PrefetchJob> job = prefetcher.Wait(*id, absl::Seconds(30));
  EXPECT_TRUE(job.has_value());
  EXPECT_TRUE(job->ended());
  return *job;
}

class PrefetcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    target_.AddDir("");
    target_.AddDir("src");
    target_.AddDir("src/lib");
    target_.AddFile("src/a.c", 1000);
    target_.AddFile("src/b.c", 2000);
    target_.AddFile("src/lib/c.c", 3000);
    target_.AddFile("README", 10);
  }
  FakeTarget target_;
  CacheStats stats_;
};

TEST_F(PrefetcherTest, WalksTheTreeAndFetchesEveryFile) {
  Prefetcher prefetcher({.jobs = 3}, &target_, &stats_);
  PrefetchJob job = RunToEnd(prefetcher, {{"src"}, true, false});
  EXPECT_EQ(job.state, PrefetchJob::State::kDone);
  EXPECT_EQ(job.dirs_listed, 2u);
  EXPECT_EQ(job.files_total, 3u);
  EXPECT_EQ(job.files_done, 3u);
  EXPECT_EQ(job.files_failed, 0u);
  EXPECT_EQ(job.bytes_total, 6000u);
  EXPECT_EQ(job.bytes_done, 6000u);
  EXPECT_EQ(job.bytes_fetched, 6000u);
  std::vector<std::string> fetched = target_.fetched();
  EXPECT_EQ(std::set<std::string>(fetched.begin(), fetched.end()),
            (std::set<std::string>{"src/a.c", "src/b.c", "src/lib/c.c"}));
  EXPECT_EQ(stats_.prefetch_files.load(), 3u);
  EXPECT_EQ(stats_.prefetch_bytes.load(), 6000u);
}

TEST_F(PrefetcherTest, MetaOnlyWalksAndFetchesNothing) {
  Prefetcher prefetcher({}, &target_, &stats_);
  PrefetchJob job = RunToEnd(prefetcher, {{""}, true, true});
  EXPECT_EQ(job.state, PrefetchJob::State::kDone);
  EXPECT_EQ(job.dirs_listed, 3u);
  EXPECT_EQ(job.files_total, 4u);
  EXPECT_EQ(job.bytes_total, 6010u);
  EXPECT_EQ(job.files_done, 0u);
  EXPECT_TRUE(target_.fetched().empty());
  EXPECT_EQ(target_.listed(), (std::set<std::string>{"", "src", "src/lib"}));
}

TEST_F(PrefetcherTest, AFileThatFailsIsCountedAndTheJobGoesOn) {
  target_.FailFetch("src/a.c", ENOENT);
  target_.FailFetch("src/lib/c.c", EACCES);
  Prefetcher prefetcher({.jobs = 1}, &target_, &stats_);
  PrefetchJob job = RunToEnd(prefetcher, {{"src", "README"}, true, false});
  EXPECT_EQ(job.state, PrefetchJob::State::kDone);
  EXPECT_EQ(job.files_total, 4u);
  EXPECT_EQ(job.files_done, 4u);
  EXPECT_EQ(job.files_failed, 2u);
  EXPECT_EQ(job.bytes_done, 2010u);
  ASSERT_EQ(job.errors.size(), 2u);
  std::map<std::string, std::string> errors(job.errors.begin(),
                                            job.errors.end());
  EXPECT_NE(errors["src/a.c"].find("No such file"), std::string::npos);
  EXPECT_NE(errors["src/lib/c.c"].find("Permission denied"),
            std::string::npos);
  EXPECT_EQ(stats_.prefetch_files.load(), 2u);
}

TEST_F(PrefetcherTest, BadPathsAreRefusedBeforeAnythingStarts) {
  Prefetcher prefetcher({}, &target_, &stats_);
  absl::StatusOr<uint64_t> missing = prefetcher.Start({{"src", "nope"}, true});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message(), "nope: No such file or directory");
  absl::StatusOr<uint64_t> dir = prefetcher.Start({{"src"}, false});
  ASSERT_FALSE(dir.ok());
  EXPECT_NE(dir.status().message().find("src is a directory: give -r"),
            std::string::npos);
  EXPECT_FALSE(prefetcher.Start({{}, true}).ok());
  EXPECT_TRUE(prefetcher.Jobs().empty());
  EXPECT_TRUE(target_.fetched().empty());
}

TEST_F(PrefetcherTest, NoMoreFetchesRunAtOnceThanTheJobsOption) {
  for (int i = 0; i < 40; ++i) {
    target_.AddFile("many/f" + std::to_string(i), 100);
  }
  target_.AddDir("many");
  Prefetcher prefetcher({.jobs = 3}, &target_, &stats_);
  target_.HoldFetches();
  absl::StatusOr<uint64_t> id = prefetcher.Start({{"many"}, true});
  ASSERT_TRUE(id.ok());
  // All three workers reach the held fetch; nothing more starts.
  for (int i = 0; i < 1000 && target_.fetched().size() < 3; ++i) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(target_.fetched().size(), 3u);
  std::optional<PrefetchJob> running = prefetcher.Job(*id);
  ASSERT_TRUE(running.has_value());
  EXPECT_EQ(running->state, PrefetchJob::State::kFetching);
  EXPECT_EQ(running->files_total, 40u);
  target_.ReleaseFetches();
  std::optional<PrefetchJob> job = prefetcher.Wait(*id, absl::Seconds(30));
  ASSERT_TRUE(job.has_value() && job->ended());
  EXPECT_EQ(job->files_done, 40u);
  EXPECT_EQ(target_.max_running(), 3);
}

TEST_F(PrefetcherTest, ACancelledJobStopsBetweenPieces) {
  for (int i = 0; i < 20; ++i) {
    target_.AddFile("many/f" + std::to_string(i), 100);
  }
  target_.AddDir("many");
  Prefetcher prefetcher({.jobs = 2}, &target_, &stats_);
  target_.HoldFetches();
  absl::StatusOr<uint64_t> id = prefetcher.Start({{"many"}, true});
  ASSERT_TRUE(id.ok());
  for (int i = 0; i < 1000 && target_.fetched().size() < 2; ++i) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_TRUE(prefetcher.Cancel(*id));
  target_.ReleaseFetches();
  std::optional<PrefetchJob> job = prefetcher.Wait(*id, absl::Seconds(30));
  ASSERT_TRUE(job.has_value());
  EXPECT_EQ(job->state, PrefetchJob::State::kCancelled);
  // The two fetches under way were stopped at their first piece; none
  // started after the cancel, and no stop counts as a failure.
  EXPECT_EQ(target_.fetched().size(), 2u);
  EXPECT_EQ(job->files_done, 0u);
  EXPECT_EQ(job->files_failed, 0u);
  EXPECT_EQ(job->bytes_done, 100u);
  EXPECT_FALSE(prefetcher.Cancel(*id));  // ended already
}

TEST_F(PrefetcherTest, EndedJobsAreKeptUpToTheLimit) {
  Prefetcher prefetcher({.jobs = 1, .ended_kept = 2}, &target_, &stats_);
  for (int i = 0; i < 5; ++i) RunToEnd(prefetcher, {{"README"}, false});
  // Reaped as the next one starts: the limit, plus the one just ended.
  std::vector<PrefetchJob> jobs = prefetcher.Jobs();
  ASSERT_EQ(jobs.size(), 3u);
  EXPECT_EQ(jobs.back().id, 5u);
  EXPECT_FALSE(prefetcher.Job(1).has_value());
}

}  // namespace
}  // namespace cachefs
