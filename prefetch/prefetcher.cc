#include <cstring>
#include <deque>
#include <thread>

#include "absl/strings/str_cat.h"
#include "io/errno_status.h"
#include "prefetch/prefetch.h"

namespace cachefs {

const char* PrefetchStateName(PrefetchJob::State state) {
  switch (state) {
    case PrefetchJob::State::kWalking:
      return "walking";
    case PrefetchJob::State::kFetching:
      return "fetching";
    case PrefetchJob::State::kDone:
      return "done";
    case PrefetchJob::State::kCancelled:
      return "cancelled";
  }
  return "unknown";
}

struct Prefetcher::Running {
  PrefetchJob job;  // guarded by the prefetcher's mu_
  absl::Time started;
  absl::Time ended;
  std::atomic<bool> cancelled{false};
  std::thread thread;
};

Prefetcher::Prefetcher(Options options, PrefetchTarget* target,
                       CacheStats* stats)
    : options_(options), target_(target), stats_(stats) {}

Prefetcher::~Prefetcher() {
  std::vector<Running*> all;
  {
    absl::MutexLock lock(&mu_);
    for (auto& job : jobs_) {
      job->cancelled = true;
      all.push_back(job.get());
    }
  }
  for (Running* job : all) {
    if (job->thread.joinable()) job->thread.join();
  }
}

absl::StatusOr<uint64_t> Prefetcher::Start(PrefetchRequest request) {
  if (request.paths.empty()) {
    return absl::InvalidArgumentError("prefetch needs at least one path");
  }
  // Checked before anything starts: a typo is an error, not a job that
  // fails at once.
  std::vector<PrefetchTarget::Node> roots;
  for (const std::string& path : request.paths) {
    absl::StatusOr<PrefetchTarget::Node> node = target_->Stat(path);
    const std::string shown = path.empty() ? "the mount's root" : path;
    if (!node.ok()) {
      // "lookup x: No such file or directory" reads oddly after the path.
      const int err = StatusToErrno(node.status());
      return absl::Status(node.status().code(),
                          absl::StrCat(shown, ": ",
                                       err != 0 ? std::strerror(err)
                                                : node.status().message()));
    }
    if (node->directory && !request.recursive) {
      return absl::InvalidArgumentError(
          absl::StrCat(shown, " is a directory: give -r to prefetch its tree"));
    }
    roots.push_back(*std::move(node));
  }
  auto running = std::make_unique<Running>();
  Running* job = running.get();
  absl::MutexLock lock(&mu_);
  ReapEnded();
  job->job.id = next_id_++;
  job->job.request = std::move(request);
  job->started = absl::Now();
  jobs_.push_back(std::move(running));
  job->thread = std::thread([this, job, roots = std::move(roots)] {
    Walk(job, roots);
    Finish(job);
  });
  return job->job.id;
}

void Prefetcher::Walk(Running* job,
                      const std::vector<PrefetchTarget::Node>& roots) {
  // Breadth first, directories listed several at once; files are kept in
  // the order the walk met them (a tree's files in listing order).
  std::vector<PrefetchTarget::Node> files;
  std::deque<std::string> dirs;
  for (const PrefetchTarget::Node& root : roots) {
    if (root.directory) {
      dirs.push_back(root.path);
    } else if (root.regular) {
      files.push_back(root);
    }
  }
  absl::Mutex walk_mu;
  int busy = 0;
  auto add_files = [&](const std::vector<PrefetchTarget::Node>& found) {
    absl::MutexLock lock(&mu_);
    for (const PrefetchTarget::Node& f : found) {
      ++job->job.files_total;
      job->job.bytes_total += f.size;
    }
  };
  add_files(files);
  auto worker = [&] {
    while (true) {
      std::string dir;
      {
        absl::MutexLock lock(&walk_mu);
        auto ready = [&] {
          return !dirs.empty() || busy == 0 || job->cancelled.load();
        };
        walk_mu.Await(absl::Condition(&ready));
        if (dirs.empty() || job->cancelled.load()) return;
        dir = std::move(dirs.front());
        dirs.pop_front();
        ++busy;
      }
      absl::StatusOr<std::vector<PrefetchTarget::Node>> listed =
          target_->List(dir);
      std::vector<PrefetchTarget::Node> found;
      if (!listed.ok()) {
        Fail(job, dir, listed.status());
      } else {
        for (PrefetchTarget::Node& node : *listed) {
          if (node.regular) found.push_back(node);
        }
        absl::MutexLock lock(&mu_);
        ++job->job.dirs_listed;
      }
      add_files(found);
      absl::MutexLock lock(&walk_mu);
      if (listed.ok()) {
        for (PrefetchTarget::Node& node : *listed) {
          if (node.directory) dirs.push_back(std::move(node.path));
        }
      }
      files.insert(files.end(), found.begin(), found.end());
      --busy;
    }
  };
  std::vector<std::thread> threads;
  for (int i = 1; i < options_.jobs; ++i) threads.emplace_back(worker);
  worker();
  for (std::thread& t : threads) t.join();
  if (job->job.request.meta_only || job->cancelled.load()) return;
  {
    absl::MutexLock lock(&mu_);
    job->job.state = PrefetchJob::State::kFetching;
  }
  FetchAll(job, files);
}

void Prefetcher::FetchAll(Running* job,
                          const std::vector<PrefetchTarget::Node>& files) {
  std::atomic<size_t> next{0};
  auto worker = [&] {
    while (!job->cancelled.load()) {
      // Bounded by the pause, which ends with the pressure.
      while (paused_.load() && !job->cancelled.load()) {
        absl::SleepFor(absl::Milliseconds(100));
      }
      const size_t i = next.fetch_add(1);
      if (i >= files.size()) return;
      const PrefetchTarget::Node& file = files[i];
      // What this file has added to the job's counts so far.
      uint64_t done = 0, fetched = 0;
      auto progress = [&](uint64_t now_done, uint64_t now_fetched) {
        absl::MutexLock lock(&mu_);
        job->job.bytes_done += now_done - done;
        job->job.bytes_fetched += now_fetched - fetched;
        done = now_done;
        fetched = now_fetched;
        return !job->cancelled.load();
      };
      absl::StatusOr<PrefetchTarget::Fetched> result =
          target_->Fetch(file.path, progress);
      if (result.ok()) progress(result->bytes, result->bytes_fetched);
      if (stats_ != nullptr) Bump(stats_->prefetch_bytes, fetched);
      if (result.ok()) {
        if (stats_ != nullptr) Bump(stats_->prefetch_files);
        absl::MutexLock lock(&mu_);
        ++job->job.files_done;
        // The size may have moved since the walk: the total follows.
        if (result->bytes > file.size) {
          job->job.bytes_total += result->bytes - file.size;
        }
      } else if (result.status().code() != absl::StatusCode::kCancelled ||
                 !job->cancelled.load()) {
        Fail(job, file.path, result.status());
        absl::MutexLock lock(&mu_);
        ++job->job.files_done;
      }
    }
  };
  std::vector<std::thread> threads;
  for (int i = 1; i < options_.jobs; ++i) threads.emplace_back(worker);
  worker();
  for (std::thread& t : threads) t.join();
}

void Prefetcher::Finish(Running* job) {
  absl::MutexLock lock(&mu_);
  job->ended = absl::Now();
  job->job.state = job->cancelled.load() ? PrefetchJob::State::kCancelled
                                         : PrefetchJob::State::kDone;
}

void Prefetcher::Fail(Running* job, const std::string& path,
                      const absl::Status& why) {
  absl::MutexLock lock(&mu_);
  ++job->job.files_failed;
  if (job->job.errors.size() < PrefetchJob::kMaxErrors) {
    job->job.errors.emplace_back(path, std::string(why.message()));
  }
}

PrefetchJob Prefetcher::Snapshot(const Running& job) const {
  PrefetchJob out = job.job;
  const absl::Time end = out.ended() ? job.ended : absl::Now();
  out.seconds = absl::ToDoubleSeconds(end - job.started);
  return out;
}

void Prefetcher::ReapEnded() {
  size_t ended = 0;
  for (const auto& job : jobs_) ended += job->job.ended();
  for (auto it = jobs_.begin();
       it != jobs_.end() && ended > options_.ended_kept;) {
    if (!(*it)->job.ended()) {
      ++it;
      continue;
    }
    // Its thread has nothing left to do but return.
    if ((*it)->thread.joinable()) (*it)->thread.join();
    it = jobs_.erase(it);
    --ended;
  }
}

std::vector<PrefetchJob> Prefetcher::Jobs() const {
  absl::MutexLock lock(&mu_);
  std::vector<PrefetchJob> out;
  for (const auto& job : jobs_) out.push_back(Snapshot(*job));
  return out;
}

std::optional<PrefetchJob> Prefetcher::Job(uint64_t id) const {
  absl::MutexLock lock(&mu_);
  for (const auto& job : jobs_) {
    if (job->job.id == id) return Snapshot(*job);
  }
  return std::nullopt;
}

bool Prefetcher::Cancel(uint64_t id) {
  absl::MutexLock lock(&mu_);
  for (const auto& job : jobs_) {
    if (job->job.id == id && !job->job.ended()) {
      job->cancelled = true;
      return true;
    }
  }
  return false;
}

std::optional<PrefetchJob> Prefetcher::Wait(uint64_t id,
                                            absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  Running* found = nullptr;
  for (const auto& job : jobs_) {
    if (job->job.id == id) found = job.get();
  }
  if (found == nullptr) return std::nullopt;
  auto ended = [found] { return found->job.ended(); };
  mu_.AwaitWithTimeout(absl::Condition(&ended), timeout);
  return Snapshot(*found);
}

}  // namespace cachefs
