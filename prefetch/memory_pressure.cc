// Memory pressure sources and the watch that lets go of memory pins.

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "io/errno_status.h"
#include "io/log.h"
#include "prefetch/prefetch.h"

namespace cachefs {
namespace {

class PsiPressure : public PressureSource {
 public:
  PsiPressure(int fd, std::string what) : fd_(fd), what_(std::move(what)) {}
  ~PsiPressure() override { close(fd_); }
  bool Wait(absl::Duration timeout) override {
    pollfd p{fd_, POLLPRI, 0};
    const int ms = static_cast<int>(absl::ToInt64Milliseconds(timeout));
    return poll(&p, 1, ms) > 0 && (p.revents & POLLPRI) != 0;
  }
  std::string Describe() const override { return what_; }

 private:
  const int fd_;
  const std::string what_;
};

// MemAvailable as a fraction of MemTotal, or a negative number.
double AvailableFraction() {
  std::ifstream in("/proc/meminfo");
  std::string name;
  uint64_t value = 0, total = 0, available = 0;
  std::string unit;
  while (in >> name >> value >> unit) {
    if (name == "MemTotal:") total = value;
    if (name == "MemAvailable:") available = value;
  }
  return total == 0 ? -1.0 : static_cast<double>(available) / total;
}

class SampledPressure : public PressureSource {
 public:
  SampledPressure(std::function<bool()> under, std::string what,
                  absl::Duration period)
      : under_(std::move(under)), what_(std::move(what)), period_(period) {}
  bool Wait(absl::Duration timeout) override {
    // Bounded by the timeout: a sample every period until then.
    const absl::Time end = absl::Now() + timeout;
    while (true) {
      if (under_()) return true;
      const absl::Duration left = end - absl::Now();
      if (left <= absl::ZeroDuration()) return false;
      absl::SleepFor(std::min(left, period_));
    }
  }
  std::string Describe() const override { return what_; }

 private:
  const std::function<bool()> under_;
  const std::string what_;
  const absl::Duration period_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<PressureSource>> OpenPsiPressure(
    const std::string& path, absl::Duration stall, absl::Duration window) {
  int fd = open(path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, "open " + path);
  const std::string trigger =
      absl::StrCat("some ", absl::ToInt64Microseconds(stall), " ",
                   absl::ToInt64Microseconds(window));
  // The kernel wants the trigger with its terminating NUL.
  if (write(fd, trigger.c_str(), trigger.size() + 1) < 0) {
    const int err = errno;
    close(fd);
    return ErrnoToStatus(err, "arming a PSI trigger \"" + trigger + "\" on " +
                                  path);
  }
  return std::unique_ptr<PressureSource>(new PsiPressure(
      fd, absl::StrFormat("psi: %s (some %d ms stalled in %d s)", path,
                          absl::ToInt64Milliseconds(stall),
                          absl::ToInt64Seconds(window))));
}

std::unique_ptr<PressureSource> MemAvailablePressure(double min_available,
                                                     absl::Duration period) {
  return std::make_unique<SampledPressure>(
      [min_available] {
        const double available = AvailableFraction();
        return available >= 0 && available < min_available;
      },
      absl::StrFormat("meminfo: MemAvailable below %.0f%% of MemTotal",
                      min_available * 100),
      period);
}

std::unique_ptr<PressureSource> FilePressure(std::string path,
                                             absl::Duration period) {
  return std::make_unique<SampledPressure>(
      [path] {
        char c = 0;
        int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) return false;
        const bool one = read(fd, &c, 1) == 1 && c == '1';
        close(fd);
        return one;
      },
      "file: " + path, period);
}

PressureWatch::PressureWatch(Options options,
                             std::unique_ptr<PressureSource> source,
                             PinSet* pins, Prefetcher* prefetcher,
                             CacheStats* stats)
    : options_(options),
      source_(std::move(source)),
      pins_(pins),
      prefetcher_(prefetcher),
      stats_(stats) {
  thread_ = std::thread([this] { Loop(); });
}

PressureWatch::~PressureWatch() {
  stopping_.store(true);
  thread_.join();
}

std::string PressureWatch::Describe() const {
  return absl::StrCat(state_.load() == 1 ? "under pressure" : "no pressure",
                      " (", source_->Describe(), ")");
}

void PressureWatch::Loop() {
  // Short turns, so a stop is seen soon.
  constexpr absl::Duration kTurn = absl::Milliseconds(200);
  absl::Time last_sign = absl::InfinitePast();
  absl::Time last_event = absl::InfinitePast();
  while (!stopping_.load()) {
    const bool sign = source_->Wait(kTurn);
    const absl::Time now = absl::Now();
    if (sign) {
      const bool first = state_.load() == 0;
      last_sign = now;
      // A trigger fires once a window at most; a sampled source says so
      // each turn: one event a window (2 s) either way.
      if (!first && now - last_event < absl::Seconds(2)) continue;
      last_event = now;
      Bump(stats_->memory_pressure_events);
      const uint64_t before = pins_->memory_locked();
      const uint64_t keep =
          first ? static_cast<uint64_t>(options_.budget * options_.low_watermark)
                : 0;
      pins_->ReleaseMemory(keep);
      if (prefetcher_ != nullptr) prefetcher_->Pause(true);
      state_.store(1);
      LogParts(LogLevel::kNotice, "memory pressure: let go of ",
               before - pins_->memory_locked(),
               " bytes of pinned files held in RAM (",
               pins_->memory_locked(), " left); prefetch paused");
    } else if (state_.load() == 1 && now - last_sign >= options_.calm) {
      state_.store(0);
      if (prefetcher_ != nullptr) prefetcher_->Pause(false);
      pins_->RestoreMemory();
      Log(LogLevel::kNotice,
          "memory pressure over: pinned files are locked in RAM again, "
          "prefetch goes on");
    }
  }
}

}  // namespace cachefs
