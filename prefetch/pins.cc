#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <tuple>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "io/errno_status.h"
#include "io/log.h"
#include "prefetch/prefetch.h"

namespace cachefs {
namespace {

// Where the `cachefs-ctl pin` rules are kept, in the volume's directory:
// one rule a line.
constexpr char kPinsFile[] = "pins";
constexpr size_t kMaxPinsFile = 4 << 20;
constexpr char kCtlSource[] = "cachefs-ctl pin";

bool IsGlob(std::string_view part) {
  return part.find_first_of("*?[") != std::string_view::npos;
}

// Why `pattern` cannot be a rule, or "" if it can.
std::string CheckPattern(const std::string& pattern) {
  if (pattern.empty()) return "an empty path";
  if (pattern[0] == '/') {
    return "an absolute path: rules are relative to the mount root";
  }
  if (pattern.find('\n') != std::string::npos) return "a newline in the path";
  for (absl::string_view part : absl::StrSplit(pattern, '/')) {
    if (part == "..") return "\"..\" in the path";
    // An unclosed bracket never matches in fnmatch(3): a typo.
    size_t open = part.find('[');
    if (open != absl::string_view::npos &&
        part.find(']', open + 1) == absl::string_view::npos) {
      return "an unclosed [ in the glob";
    }
  }
  return "";
}

// The parts of a rule's path, without empty ones and ".".
std::vector<std::string> Parts(const std::string& pattern) {
  std::vector<std::string> parts;
  for (absl::string_view part :
       absl::StrSplit(pattern, '/', absl::SkipEmpty())) {
    if (part != ".") parts.emplace_back(part);
  }
  return parts;
}

std::string Join(const std::string& dir, const std::string& name) {
  return dir.empty() ? name : dir + "/" + name;
}

}  // namespace

absl::StatusOr<std::vector<PinSet::Rule>> PinSet::ReadPinFile(
    const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, "cannot read the pin file " + path);
  std::string text;
  char buf[65536];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0 && text.size() < (16 << 20)) {
    text.append(buf, n);
  }
  const int err = errno;
  close(fd);
  if (n < 0) return ErrnoToStatus(err, "cannot read the pin file " + path);
  std::vector<Rule> rules;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    absl::string_view rule = absl::StripAsciiWhitespace(line);
    if (rule.empty() || rule[0] == '#') continue;
    std::string pattern(rule);
    if (std::string why = CheckPattern(pattern); !why.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("pin file ", path, " line ", line_number, ": ", why,
                       ": ", pattern));
    }
    rules.push_back({pattern, absl::StrCat(path, ":", line_number)});
  }
  return rules;
}

PinSet::PinSet(Options options, PrefetchTarget* target, Cache* cache,
               Volume* volume)
    : options_(std::move(options)),
      target_(target),
      cache_(cache),
      volume_(volume) {}

absl::StatusOr<std::unique_ptr<PinSet>> PinSet::Start(Options options,
                                                      PrefetchTarget* target,
                                                      Cache* cache,
                                                      Volume* volume) {
  std::vector<Rule> file_rules;
  if (!options.pin_file.empty()) {
    absl::StatusOr<std::vector<Rule>> read = ReadPinFile(options.pin_file);
    if (!read.ok()) return read.status();
    file_rules = *std::move(read);
  }
  std::vector<Rule> ctl_rules;
  absl::StatusOr<std::string> kept = volume->ReadFile(kPinsFile, kMaxPinsFile);
  if (kept.ok()) {
    for (absl::string_view line : absl::StrSplit(*kept, '\n')) {
      std::string pattern(line);
      if (!pattern.empty() && CheckPattern(pattern).empty()) {
        ctl_rules.push_back({pattern, kCtlSource});
      }
    }
  } else if (!absl::IsNotFound(kept.status())) {
    Log(LogLevel::kWarning,
        absl::StrCat("the pins kept in the cache cannot be read: ",
                     kept.status().message()));
  }
  std::unique_ptr<PinSet> pins(
      new PinSet(std::move(options), target, cache, volume));
  {
    absl::MutexLock lock(&pins->mu_);
    pins->file_rules_ = std::move(file_rules);
    pins->ctl_rules_ = std::move(ctl_rules);
  }
  cache->AddCullVeto(pins.get());
  cache->AddObserver(pins.get());
  pins->thread_ = std::thread([p = pins.get()] { p->Loop(); });
  if (!pins->options_.mount_point.empty() &&
      pins->options_.map_sample > absl::ZeroDuration()) {
    pins->sampler_ = std::thread([p = pins.get()] { p->SampleMaps(); });
  }
  return pins;
}

PinSet::~PinSet() {
  std::vector<uint64_t> in_memory;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
  if (sampler_.joinable()) sampler_.join();
  {
    absl::MutexLock lock(&mu_);
    for (auto& [path, file] : files_) {
      if (file.shown.memory > 0) in_memory.push_back(file.hash);
    }
  }
  DropMemoryOf(in_memory);
  cache_->RemoveObserver(this);
  cache_->RemoveCullVeto(this);
}

absl::Status PinSet::Reload() {
  if (options_.pin_file.empty()) {
    return absl::FailedPreconditionError("this mount has no -o pin=FILE");
  }
  absl::StatusOr<std::vector<Rule>> read = ReadPinFile(options_.pin_file);
  if (!read.ok()) return read.status();
  absl::MutexLock lock(&mu_);
  file_rules_ = *std::move(read);
  resolve_ = busy_ = true;
  return absl::OkStatus();
}

absl::StatusOr<size_t> PinSet::Pin(const std::vector<std::string>& paths,
                                   bool recursive) {
  std::vector<Rule> added;
  for (const std::string& path : paths) {
    if (path.empty()) {
      if (!recursive) {
        return absl::InvalidArgumentError(
            "the mount's root is a directory: give -r to pin its tree");
      }
      added.push_back({".", kCtlSource});
      continue;
    }
    if (std::string why = CheckPattern(path); !why.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": ", why));
    }
    if (!IsGlob(path)) {
      absl::StatusOr<PrefetchTarget::Node> node = target_->Stat(path);
      if (!node.ok()) {
        const int err = StatusToErrno(node.status());
        return absl::Status(node.status().code(),
                            absl::StrCat(path, ": ", std::strerror(err)));
      }
      if (node->directory && !recursive) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, " is a directory: give -r to pin its tree"));
      }
    }
    added.push_back({path, kCtlSource});
  }
  size_t fresh = 0;
  {
    absl::MutexLock lock(&mu_);
    for (Rule& rule : added) {
      auto same = [&](const Rule& r) { return r.pattern == rule.pattern; };
      if (std::any_of(ctl_rules_.begin(), ctl_rules_.end(), same)) continue;
      ctl_rules_.push_back(std::move(rule));
      ++fresh;
    }
    resolve_ = busy_ = true;
  }
  absl::Status saved = SaveRules();
  if (!saved.ok()) return saved;
  return fresh;
}

size_t PinSet::Unpin(const std::vector<std::string>& paths, bool below) {
  size_t removed = 0;
  {
    absl::MutexLock lock(&mu_);
    for (const std::string& raw : paths) {
      const std::string path = raw.empty() ? "." : raw;
      removed += std::erase_if(ctl_rules_, [&](const Rule& r) {
        if (r.pattern == path) return true;
        if (!below) return false;
        return path == "." || r.pattern.rfind(path + "/", 0) == 0;
      });
    }
    resolve_ = busy_ = true;
  }
  absl::Status saved = SaveRules();
  if (!saved.ok()) {
    Log(LogLevel::kWarning, absl::StrCat("the pins could not be kept: ",
                                         saved.message()));
  }
  return removed;
}

absl::Status PinSet::SaveRules() {
  std::string text;
  {
    absl::MutexLock lock(&mu_);
    for (const Rule& r : ctl_rules_) absl::StrAppend(&text, r.pattern, "\n");
  }
  return volume_->WriteFile(kPinsFile, text);
}

std::vector<PinSet::Rule> PinSet::Rules() const {
  absl::MutexLock lock(&mu_);
  std::vector<Rule> rules = file_rules_;
  rules.insert(rules.end(), ctl_rules_.begin(), ctl_rules_.end());
  rules.insert(rules.end(), mapped_rules_.begin(), mapped_rules_.end());
  return rules;
}

void PinSet::SampleMaps() {
  const std::string prefix = options_.mount_point + "/";
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      auto stop = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_;
      };
      if (mu_.AwaitWithTimeout(absl::Condition(&stop), options_.map_sample)) {
        return;
      }
    }
    // Each process counts once per file, however often it maps it.
    absl::flat_hash_map<std::string, int> mapped;
    DIR* proc = opendir("/proc");
    if (proc == nullptr) continue;
    while (dirent* e = readdir(proc)) {
      if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
      std::ifstream maps(absl::StrCat("/proc/", e->d_name, "/maps"));
      absl::flat_hash_set<std::string> seen;
      std::string line;
      while (std::getline(maps, line)) {
        const size_t at = line.find(prefix);
        if (at == std::string::npos) continue;
        std::string path = line.substr(at + prefix.size());
        if (absl::EndsWith(path, " (deleted)")) continue;
        if (seen.insert(path).second) ++mapped[path];
      }
    }
    closedir(proc);
    std::vector<std::pair<int, std::string>> ranked;
    for (auto& [path, count] : mapped) ranked.emplace_back(-count, path);
    std::sort(ranked.begin(), ranked.end());
    if (ranked.size() > options_.max_mapped) ranked.resize(options_.max_mapped);
    std::vector<Rule> rules;
    for (const auto& [count, path] : ranked) {
      if (!CheckPattern(path).empty() || IsGlob(path)) continue;
      rules.push_back({path, absl::StrCat("mapped by ", -count, " process",
                                          count == -1 ? "" : "es")});
    }
    absl::MutexLock lock(&mu_);
    auto same = [](const std::vector<Rule>& a, const std::vector<Rule>& b) {
      if (a.size() != b.size()) return false;
      for (size_t i = 0; i < a.size(); ++i) {
        if (a[i].pattern != b[i].pattern || a[i].source != b[i].source) {
          return false;
        }
      }
      return true;
    };
    if (same(rules, mapped_rules_)) continue;
    mapped_rules_ = std::move(rules);
    resolve_ = busy_ = true;
  }
}

std::vector<PinSet::Rule> PinSet::Unmatched() const {
  absl::MutexLock lock(&mu_);
  return unmatched_;
}

std::vector<PinSet::PinnedFile> PinSet::Files() const {
  std::vector<PinnedFile> out;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [path, file] : files_) out.push_back(file.shown);
  }
  std::sort(out.begin(), out.end(),
            [](const PinnedFile& a, const PinnedFile& b) {
              return a.path < b.path;
            });
  return out;
}

bool PinSet::WaitSettled(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto settled = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !busy_;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&settled), timeout);
}

bool PinSet::MayCull(const std::string& volume_key, uint64_t hash) {
  if (volume_key != volume_->key()) return true;
  absl::MutexLock lock(&mu_);
  return !hashes_.contains(hash);
}

void PinSet::Used(const std::string& volume_key, uint64_t hash) {
  if (volume_key != volume_->key()) return;
  absl::MutexLock lock(&mu_);
  if (!hashes_.contains(hash)) return;
  ++use_clock_;
  for (auto& [path, file] : files_) {
    if (file.hash == hash) file.used = use_clock_;
  }
}

void PinSet::MemoryDropped(const std::string& volume_key, uint64_t hash) {
  if (volume_key != volume_->key()) return;
  absl::MutexLock lock(&mu_);
  if (!hashes_.contains(hash)) return;
  for (auto& [path, file] : files_) {
    if (file.hash != hash || file.shown.memory == 0) continue;
    // Its data is changing: checked and fetched again, then locked again.
    memory_locked_ -= file.shown.memory;
    file.shown.memory = 0;
    file.shown.state = PinnedFile::State::kFetching;
    file.due = true;
    busy_ = true;
  }
  UpdateStats();
}

void PinSet::Removed(const std::string& volume_key, uint64_t hash) {
  if (volume_key != volume_->key()) return;
  absl::MutexLock lock(&mu_);
  if (!hashes_.contains(hash)) return;
  for (auto& [path, file] : files_) {
    if (file.hash != hash) continue;
    file.due = true;
    file.shown.state = PinnedFile::State::kFetching;
    busy_ = true;
  }
}

void PinSet::UpdateStats() {
  uint64_t bytes = 0;
  for (const auto& [path, file] : files_) {
    if (file.shown.state != PinnedFile::State::kFetching &&
        file.shown.state != PinnedFile::State::kFailed) {
      bytes += file.shown.size;
    }
  }
  cache_->stats().pinned_files.store(files_.size(), std::memory_order_relaxed);
  cache_->stats().pinned_bytes_disk.store(bytes, std::memory_order_relaxed);
  cache_->stats().pinned_bytes_memory.store(memory_locked_,
                                            std::memory_order_relaxed);
}

uint64_t PinSet::memory_locked() const {
  absl::MutexLock lock(&mu_);
  return memory_locked_;
}

void PinSet::DropMemoryOf(const std::vector<uint64_t>& hashes) {
  for (uint64_t hash : hashes) volume_->DropMemoryPin(hash);
}

void PinSet::AdmitToMemory() {
  if (options_.memory == 0) return;
  struct Candidate {
    size_t order;
    std::string path;
    uint64_t hash;
    bool released;
  };
  std::vector<Candidate> candidates;
  uint64_t left = 0;
  // Each file in memory is one mapping: a quarter of vm.max_map_count at
  // most, so the rest of the daemon (io_uring, threads, libraries) keeps
  // room for its own.
  static const size_t max_mappings = [] {
    std::ifstream in("/proc/sys/vm/max_map_count");
    size_t n = 65530;
    in >> n;
    return std::max<size_t>(16, n / 4);
  }();
  size_t mappings = 0;
  {
    absl::MutexLock lock(&mu_);
    if (memory_released_ || stopping_) return;
    admit_ = false;
    left = options_.memory - std::min(options_.memory, memory_locked_);
    for (const auto& [path, file] : files_) {
      mappings += file.shown.memory > 0;
    }
    for (const auto& [path, file] : files_) {
      if (file.shown.state == PinnedFile::State::kOnDisk &&
          file.shown.memory == 0 && !file.due) {
        candidates.push_back({file.order, path, file.hash, file.released});
      }
    }
  }
  // Whole files, in the order of their rules, while they fit.
  std::sort(candidates.begin(), candidates.end(),
            [](const Candidate& a, const Candidate& b) {
              return std::tie(a.order, a.path) < std::tie(b.order, b.path);
            });
  for (const Candidate& c : candidates) {
    if (mappings >= max_mappings) {
      absl::MutexLock lock(&mu_);
      if (!warned_mappings_) {
        warned_mappings_ = true;
        Log(LogLevel::kWarning,
            absl::StrCat("pinned files beyond ", max_mappings,
                         " stay on disk: each held in RAM is a mapping, and "
                         "vm.max_map_count allows ",
                         max_mappings * 4));
      }
      return;
    }
    absl::StatusOr<Volume::ObjectInfo> info = volume_->DescribeObjectOf(c.path);
    if (!info.ok() || info->granules_present != info->granules) continue;
    const uint64_t page = 4096;
    if ((info->object_size + page - 1) / page * page > left) continue;
    // A stale mapping of an older version goes first: its pages must not
    // be the ones the new mapping finds.
    volume_->DropMemoryPin(c.hash);
    const std::string backing =
        cache_->options().directory + "/" + info->backing;
    int fd = open(backing.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    absl::StatusOr<std::unique_ptr<LockedMapping>> mapped =
        LockedMapping::Map(fd);
    close(fd);
    if (!mapped.ok()) {
      const int err = StatusToErrno(mapped.status());
      absl::MutexLock lock(&mu_);
      if ((err == EPERM || err == ENOMEM || err == EAGAIN) &&
          !warned_memlock_) {
        warned_memlock_ = true;
        struct rlimit limit;
        getrlimit(RLIMIT_MEMLOCK, &limit);
        Log(LogLevel::kWarning,
            absl::StrCat("pinned files stay on disk: locking them in RAM "
                         "failed (", mapped.status().message(),
                         "); the limit of locked memory (RLIMIT_MEMLOCK) is ",
                         limit.rlim_cur,
                         " bytes: raise it (systemd LimitMEMLOCK=, ulimit "
                         "-l, or CAP_IPC_LOCK) to at least -o pin_memory"));
      }
      if (err == EPERM || err == ENOMEM || err == EAGAIN) return;
      continue;
    }
    std::shared_ptr<const LockedMapping> mapping = *std::move(mapped);
    if (mapping->length() > left) continue;  // grew: dropped here
    bool keep = false;
    {
      absl::MutexLock lock(&mu_);
      auto it = files_.find(c.path);
      if (it != files_.end() && !memory_released_ && !stopping_ &&
          it->second.shown.state == PinnedFile::State::kOnDisk &&
          !it->second.due && it->second.hash == c.hash) {
        keep = true;
        it->second.shown.memory = mapping->length();
        it->second.shown.state = PinnedFile::State::kInMemory;
        if (it->second.released) {
          it->second.released = false;
          Bump(cache_->stats().pin_restores);
        }
        memory_locked_ += mapping->length();
        left -= mapping->length();
        ++mappings;
        UpdateStats();
      }
    }
    if (keep) volume_->SetMemoryPin(c.hash, std::move(mapping));
  }
}

void PinSet::ReleaseMemory(uint64_t keep) {
  std::vector<uint64_t> released;
  {
    absl::MutexLock lock(&mu_);
    memory_released_ = true;
    std::vector<File*> locked;
    for (auto& [path, file] : files_) {
      if (file.shown.memory > 0) locked.push_back(&file);
    }
    std::sort(locked.begin(), locked.end(),
              [](const File* a, const File* b) { return a->used < b->used; });
    for (File* file : locked) {
      if (memory_locked_ <= keep) break;
      memory_locked_ -= file->shown.memory;
      file->shown.memory = 0;
      file->shown.state = PinnedFile::State::kReleased;
      file->released = true;
      released.push_back(file->hash);
      Bump(cache_->stats().pin_releases);
    }
    UpdateStats();
  }
  DropMemoryOf(released);
}

void PinSet::RestoreMemory() {
  absl::MutexLock lock(&mu_);
  memory_released_ = false;
  for (auto& [path, file] : files_) {
    if (file.shown.state == PinnedFile::State::kReleased) {
      file.shown.state = PinnedFile::State::kOnDisk;
    }
  }
  admit_ = busy_ = true;
}

void PinSet::AddTree(const std::string& dir, const std::string& rule,
                     std::vector<std::pair<std::string, std::string>>* out) {
  // Bounded by the tree; directories are visited once each (the origin's
  // names form a tree: symbolic links are not followed).
  std::vector<std::string> dirs = {dir};
  while (!dirs.empty()) {
    std::string d = std::move(dirs.back());
    dirs.pop_back();
    absl::StatusOr<std::vector<PrefetchTarget::Node>> listed =
        target_->List(d);
    if (!listed.ok()) continue;
    for (PrefetchTarget::Node& node : *listed) {
      if (node.directory) {
        dirs.push_back(std::move(node.path));
      } else if (node.regular) {
        out->emplace_back(std::move(node.path), rule);
      }
    }
  }
}

void PinSet::ResolveRule(
    const Rule& rule, const std::string& dir, size_t part,
    const std::vector<std::string>& parts,
    std::vector<std::pair<std::string, std::string>>* out) {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
  }
  if (part == parts.size()) {
    absl::StatusOr<PrefetchTarget::Node> node = target_->Stat(dir);
    if (!node.ok()) return;
    if (node->directory) {
      AddTree(dir, rule.source, out);
    } else if (node->regular) {
      out->emplace_back(dir, rule.source);
    }
    return;
  }
  if (!IsGlob(parts[part])) {
    ResolveRule(rule, Join(dir, parts[part]), part + 1, parts, out);
    return;
  }
  absl::StatusOr<std::vector<PrefetchTarget::Node>> listed =
      target_->List(dir);
  if (!listed.ok()) return;
  const std::string prefix = dir.empty() ? "" : dir + "/";
  for (const PrefetchTarget::Node& node : *listed) {
    const std::string name = node.path.substr(prefix.size());
    if (fnmatch(parts[part].c_str(), name.c_str(), FNM_PERIOD) != 0) continue;
    if (part + 1 == parts.size()) {
      if (node.directory) {
        AddTree(node.path, rule.source, out);
      } else if (node.regular) {
        out->emplace_back(node.path, rule.source);
      }
    } else if (node.directory) {
      ResolveRule(rule, node.path, part + 1, parts, out);
    }
  }
}

std::vector<std::pair<std::string, std::string>> PinSet::Resolve(
    const std::vector<Rule>& rules, std::vector<Rule>* unmatched) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const Rule& rule : rules) {
    const size_t before = out.size();
    ResolveRule(rule, "", 0, Parts(rule.pattern), &out);
    if (out.size() == before) unmatched->push_back(rule);
  }
  return out;
}

void PinSet::Loop() {
  while (true) {
    bool resolve = false;
    {
      absl::MutexLock lock(&mu_);
      auto work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        if (stopping_ || resolve_ || admit_) return true;
        for (const auto& [path, file] : files_) {
          if (file.due) return true;
        }
        return false;
      };
      busy_ = work();
      if (!mu_.AwaitWithTimeout(absl::Condition(&work), options_.recheck)) {
        // Every so often, each pinned file is checked against the origin.
        for (auto& [path, file] : files_) file.due = true;
      }
      if (stopping_) return;
      busy_ = true;
      resolve = resolve_;
      resolve_ = false;
    }
    if (resolve) {
      std::vector<Rule> unmatched;
      auto found = Resolve(Rules(), &unmatched);
      for (const Rule& r : unmatched) {
        Log(LogLevel::kWarning,
            absl::StrCat("pin rule ", r.pattern, " (", r.source,
                         ") matches no file"));
      }
      // Rule order, for what goes into memory first.
      std::vector<Rule> rules = Rules();
      std::vector<uint64_t> unpinned;
      {
        absl::MutexLock lock(&mu_);
        unmatched_ = std::move(unmatched);
        absl::flat_hash_map<std::string, File> files;
        for (auto& [path, rule] : found) {
          if (files.contains(path)) continue;
          auto old = files_.find(path);
          File file;
          if (old != files_.end()) {
            file = std::move(old->second);
            files_.erase(old);
          } else {
            file.shown.path = path;
            file.hash = cache_->HashKey(volume_->key(), path);
          }
          file.shown.rule = rule;
          file.order = 0;
          while (file.order < rules.size() &&
                 rules[file.order].source != rule) {
            ++file.order;
          }
          files.emplace(path, std::move(file));
        }
        // What is left was unpinned: its memory goes.
        for (auto& [path, file] : files_) {
          if (file.shown.memory == 0) continue;
          memory_locked_ -= file.shown.memory;
          unpinned.push_back(file.hash);
        }
        files_ = std::move(files);
        hashes_.clear();
        for (const auto& [path, file] : files_) hashes_.insert(file.hash);
        UpdateStats();
      }
      DropMemoryOf(unpinned);
    }
    // Fetches what is due, one file at a time.
    while (true) {
      std::string path;
      {
        absl::MutexLock lock(&mu_);
        if (stopping_ || resolve_) break;
        for (auto& [p, file] : files_) {
          if (file.due) {
            path = p;
            file.due = false;
            file.shown.state = PinnedFile::State::kFetching;
            break;
          }
        }
      }
      if (path.empty()) break;
      absl::StatusOr<PrefetchTarget::Fetched> fetched = target_->Fetch(
          path, [this](uint64_t, uint64_t) {
            absl::MutexLock lock(&mu_);
            return !stopping_;
          });
      absl::MutexLock lock(&mu_);
      auto it = files_.find(path);
      if (it == files_.end()) continue;  // unpinned meanwhile
      PinnedFile& shown = it->second.shown;
      if (fetched.ok()) {
        // A replacement seen during the fetch leaves it due again.
        if (!it->second.due) {
          shown.state = shown.memory > 0     ? PinnedFile::State::kInMemory
                        : it->second.released && memory_released_
                            ? PinnedFile::State::kReleased
                            : PinnedFile::State::kOnDisk;
        }
        shown.size = fetched->bytes;
        shown.error.clear();
      } else if (!stopping_) {
        shown.state = PinnedFile::State::kFailed;
        shown.error = std::string(fetched.status().message());
      }
      UpdateStats();
    }
    AdmitToMemory();
  }
}

}  // namespace cachefs
