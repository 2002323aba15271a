// Hot sets: per-program traces of the first seconds of a run, replayed
// ahead of the next run.

#include <limits.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "io/json_string.h"
#include "io/log.h"
#include "prefetch/prefetch.h"

namespace cachefs {
namespace {

// Where the traces are kept in the volume's directory: one JSON object a
// line, one line a program.
constexpr char kHotSetsFile[] = "hotsets";
constexpr size_t kMaxHotSetsFile = 64 << 20;

std::string BaseName(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Interpreters, by the base name of their executable, whose programs are
// their scripts.
bool IsInterpreter(const std::string& exe) {
  const std::string base = BaseName(exe);
  for (const char* name : {"python", "perl", "ruby", "node", "nodejs", "sh",
                           "bash", "dash", "zsh", "java", "php", "lua", "Rscript",
                           "tclsh", "wish"}) {
    if (base == name ||
        (absl::StartsWith(base, name) &&
         base.find_first_not_of("0123456789.", std::strlen(name)) ==
             std::string::npos)) {
      return true;
    }
  }
  return false;
}

int64_t NowSeconds() { return absl::ToUnixSeconds(absl::Now()); }

// Field 22 of /proc/PID/stat: when the process started, in clock ticks.
uint64_t StartTime(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string text((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  const size_t paren = text.rfind(')');
  if (paren == std::string::npos) return 0;
  std::vector<std::string> fields =
      absl::StrSplit(text.substr(paren + 2), ' ');
  // Fields from 3 on follow the command name: 22 is at index 19.
  return fields.size() > 19 ? std::strtoull(fields[19].c_str(), nullptr, 10)
                            : 0;
}

}  // namespace

// Adds bytes [off, off + len) to `ranges`, merged with a range it touches
// (the kernel reads on where it left off).
void HotSets::AddRange(std::vector<Range>* ranges, uint64_t off,
                       uint64_t len) {
  for (Range& r : *ranges) {
    if (off <= r.off + r.len && r.off <= off + len) {
      const uint64_t end = std::max(r.off + r.len, off + len);
      r.off = std::min(r.off, off);
      r.len = end - r.off;
      return;
    }
  }
  ranges->push_back({off, len});
}

namespace {
}  // namespace

std::vector<std::string> HotSets::DefaultIgnore() {
  return {"cp",      "cat",      "tar",      "rsync",   "find",
          "grep",    "egrep",    "fgrep",    "rg",      "du",
          "md5sum",  "sha1sum",  "sha256sum", "sha512sum", "b2sum",
          "cksum",   "dd",       "diff",     "cmp",     "updatedb",
          "mlocate", "plocate",  "ls",       "stat",    "file",
          "cachefs", "cachefs-ctl", "mount.cachefs", "sshfs", "rclone"};
}

HotSets::HotSets(Options options, PrefetchTarget* target, Volume* volume,
                 CacheStats* stats)
    : options_(std::move(options)),
      target_(target),
      volume_(volume),
      stats_(stats) {
  Load();
}

HotSets::~HotSets() {
  std::vector<std::thread> replays;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    for (auto& [pid, process] : processes_) Finish(process);
    replays = std::move(replays_);
  }
  for (std::thread& t : replays) t.join();
  absl::Status saved = Save();
  if (!saved.ok()) {
    Log(LogLevel::kWarning,
        absl::StrCat("the hot sets were not kept: ", saved.message()));
  }
}

std::string HotSets::ProgramOf(pid_t pid) const {
  char exe[PATH_MAX];
  const std::string link = absl::StrCat("/proc/", pid, "/exe");
  ssize_t n = readlink(link.c_str(), exe, sizeof(exe) - 1);
  if (n <= 0) return "";
  std::string program(exe, n);
  std::string named = BaseName(program);
  if (IsInterpreter(program)) {
    std::ifstream in(absl::StrCat("/proc/", pid, "/cmdline"));
    std::string cmdline((std::istreambuf_iterator<char>(in)),
                        std::istreambuf_iterator<char>());
    std::vector<std::string> args = absl::StrSplit(cmdline, '\0');
    // The script: the first argument after argv[0] that is not an option.
    for (size_t i = 1; i < args.size(); ++i) {
      if (args[i].empty() || args[i][0] == '-') continue;
      std::string script = args[i];
      if (script[0] != '/') {
        char cwd[PATH_MAX];
        const std::string cwd_link = absl::StrCat("/proc/", pid, "/cwd");
        ssize_t m = readlink(cwd_link.c_str(), cwd, sizeof(cwd) - 1);
        if (m > 0) script = std::string(cwd, m) + "/" + script;
      }
      program += " " + script;
      named = BaseName(script);
      break;
    }
  }
  for (const std::string& ignored : options_.ignore) {
    if (named == ignored || BaseName(program.substr(0, program.find(' '))) ==
                                ignored) {
      return "";
    }
  }
  return program;
}

void HotSets::Note(pid_t pid, const std::string& key, uint64_t off,
                   uint64_t len, const struct stat* opened) {
  if (pid <= 0) return;
  std::shared_ptr<Trace> replay;
  std::vector<std::thread> ended;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    if (absl::Now() - last_sweep_ > absl::Seconds(1)) {
      last_sweep_ = absl::Now();
      FinishExpired();
    }
    auto it = processes_.find(pid);
    if (it == processes_.end()) {
      Process process;
      process.start_time = StartTime(pid);
      process.program = ProgramOf(pid);
      process.until = absl::Now() + options_.window;
      if (!process.program.empty()) {
        process.recording = std::make_shared<Trace>();
        process.recording->program = process.program;
        auto known = traces_.find(process.program);
        if (known != traces_.end()) {
          replay = known->second;
          process.replayed = replay;
        }
      }
      it = processes_.emplace(pid, std::move(process)).first;
    }
    Process& process = it->second;
    if (process.replayed != nullptr && opened != nullptr &&
        process.hit.insert(key).second) {
      for (const TracedFile& f : process.replayed->files) {
        if (f.path != key) continue;
        // Counted on the program's trace of now: this process's own may
        // have taken the replayed one's place meanwhile.
        auto current = traces_.find(process.program);
        if (current != traces_.end()) ++current->second->hits;
        break;
      }
    }
    if (process.recording != nullptr) {
      std::vector<TracedFile>& files = process.recording->files;
      auto found = process.index.find(key);
      if (found == process.index.end() && files.size() < options_.max_files) {
        found = process.index.emplace(key, files.size()).first;
        TracedFile traced;
        traced.path = key;
        files.push_back(std::move(traced));
      }
      if (found != process.index.end()) {
        TracedFile& file = files[found->second];
        if (opened != nullptr) {
          file.size = static_cast<uint64_t>(opened->st_size);
          file.mtime_ns = opened->st_mtim.tv_sec * int64_t{1000000000} +
                          opened->st_mtim.tv_nsec;
        }
        if (len > 0) AddRange(&file.ranges, off, len);
      }
    }
    if (replay != nullptr) {
      replay->last_replay = NowSeconds();
      ++replay->replays;
      // Replays that ended are joined here, off the lock.
      if (replaying_ == 0) ended = std::move(replays_);
      ++replaying_;
      replays_.emplace_back([this, replay] { Replay(replay); });
    }
  }
  for (std::thread& t : ended) t.join();
  if (replay != nullptr && stats_ != nullptr) Bump(stats_->hotset_replays);
}

void HotSets::FinishExpired() {
  const absl::Time now = absl::Now();
  for (auto it = processes_.begin(); it != processes_.end();) {
    Process& process = it->second;
    if (process.until > now) {
      ++it;
      continue;
    }
    Finish(process);
    // Forgotten once its window is long over, or the pid is another
    // process's now.
    if (now - process.until > options_.window ||
        StartTime(it->first) != process.start_time) {
      processes_.erase(it++);
    } else {
      ++it;
    }
  }
}

void HotSets::Finish(Process& process) {
  std::shared_ptr<Trace> trace = std::move(process.recording);
  process.index.clear();
  if (trace == nullptr || trace->files.empty()) return;
  trace->learned = NowSeconds();
  auto known = traces_.find(trace->program);
  if (known != traces_.end()) {
    trace->replays = known->second->replays;
    trace->hits = known->second->hits;
    trace->last_replay = known->second->last_replay;
    // A run the replay served reads little through cachefs (the kernel
    // had the pages): a file it only opened keeps the ranges the last
    // trace had for the same version of it.
    absl::flat_hash_map<std::string, const TracedFile*> before;
    for (const TracedFile& f : known->second->files) before[f.path] = &f;
    for (TracedFile& f : trace->files) {
      auto old = before.find(f.path);
      if (f.ranges.empty() && old != before.end() &&
          old->second->size == f.size && old->second->mtime_ns == f.mtime_ns) {
        f.ranges = old->second->ranges;
      }
    }
  }
  traces_[trace->program] = trace;
  if (stats_ != nullptr) {
    stats_->hotset_programs.store(traces_.size(), std::memory_order_relaxed);
  }
}

void HotSets::Replay(std::shared_ptr<Trace> trace) {
  // The files, several at once; each checked (by the fetch's open), then
  // its ranges brought in and pushed to the kernel. A copy: another
  // replay of the same trace may drop files from it meanwhile.
  std::vector<TracedFile> files;
  {
    absl::MutexLock lock(&mu_);
    files = trace->files;
  }
  std::atomic<size_t> next{0};
  std::vector<std::string> changed;
  absl::Mutex changed_mu;
  auto worker = [&] {
    while (true) {
      {
        absl::MutexLock lock(&mu_);
        if (stopping_) return;
      }
      const size_t i = next.fetch_add(1);
      if (i >= files.size()) return;
      const TracedFile& file = files[i];
      absl::StatusOr<PrefetchTarget::Node> node = target_->Stat(file.path);
      if (!node.ok() || !node->regular || node->size != file.size ||
          (file.mtime_ns != 0 && node->mtime_ns != file.mtime_ns)) {
        absl::MutexLock lock(&changed_mu);
        changed.push_back(file.path);
        continue;
      }
      std::vector<Range> ranges = file.ranges;
      if (ranges.empty()) ranges.push_back({0, file.size});
      for (const Range& r : ranges) {
        const uint64_t len = std::min(r.len, file.size - std::min(file.size, r.off));
        if (len == 0) continue;
        absl::StatusOr<uint64_t> pushed = target_->Push(file.path, r.off, len);
        if (pushed.ok() && stats_ != nullptr) {
          Bump(stats_->hotset_bytes_pushed, *pushed);
        }
      }
    }
  };
  std::vector<std::thread> threads;
  for (int i = 1; i < options_.threads; ++i) threads.emplace_back(worker);
  worker();
  for (std::thread& t : threads) t.join();
  absl::MutexLock lock(&mu_);
  if (!changed.empty()) {
    std::erase_if(trace->files, [&](const TracedFile& f) {
      return std::find(changed.begin(), changed.end(), f.path) !=
             changed.end();
    });
  }
  --replaying_;
}

bool HotSets::WaitIdle(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return replaying_ == 0;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&idle), timeout);
}

std::vector<HotSets::Program> HotSets::Programs() const {
  absl::MutexLock lock(&mu_);
  const_cast<HotSets*>(this)->FinishExpired();
  std::vector<Program> out;
  for (const auto& [name, trace] : traces_) {
    Program p;
    p.name = name;
    p.files = trace->files.size();
    for (const TracedFile& f : trace->files) {
      if (f.ranges.empty()) p.bytes += f.size;  // replayed whole
      for (const Range& r : f.ranges) p.bytes += r.len;
    }
    p.learned = trace->learned;
    p.last_replay = trace->last_replay;
    p.replays = trace->replays;
    p.hits = trace->hits;
    out.push_back(std::move(p));
  }
  std::sort(out.begin(), out.end(),
            [](const Program& a, const Program& b) { return a.name < b.name; });
  return out;
}

bool HotSets::Forget(const std::string& name) {
  bool gone = false;
  {
    absl::MutexLock lock(&mu_);
    gone = traces_.erase(name) > 0;
    if (stats_ != nullptr) {
      stats_->hotset_programs.store(traces_.size(), std::memory_order_relaxed);
    }
  }
  if (gone) Save().IgnoreError();
  return gone;
}

absl::Status HotSets::Save() {
  std::string text;
  {
    absl::MutexLock lock(&mu_);
    const int64_t oldest =
        NowSeconds() - static_cast<int64_t>(absl::ToInt64Seconds(options_.ttl));
    for (const auto& [name, trace] : traces_) {
      if (trace->learned < oldest) continue;
      absl::StrAppend(&text, "{\"program\": ", JsonString(name),
                      ", \"learned\": ", trace->learned,
                      ", \"last_replay\": ", trace->last_replay,
                      ", \"replays\": ", trace->replays,
                      ", \"hits\": ", trace->hits, ", \"files\": [");
      for (size_t i = 0; i < trace->files.size(); ++i) {
        const TracedFile& f = trace->files[i];
        absl::StrAppend(&text, i ? ", " : "", "{\"path\": ", JsonString(f.path),
                        ", \"size\": ", f.size, ", \"mtime_ns\": ",
                        f.mtime_ns, ", \"ranges\": [");
        for (size_t j = 0; j < f.ranges.size(); ++j) {
          absl::StrAppend(&text, j ? ", " : "", "[", f.ranges[j].off, ", ",
                          f.ranges[j].len, "]");
        }
        text += "]}";
      }
      text += "]}\n";
    }
  }
  return volume_->WriteFile(kHotSetsFile, text);
}

void HotSets::Load() {
  absl::StatusOr<std::string> text =
      volume_->ReadFile(kHotSetsFile, kMaxHotSetsFile);
  if (!text.ok()) return;
  const int64_t oldest =
      NowSeconds() - static_cast<int64_t>(absl::ToInt64Seconds(options_.ttl));
  auto number = [](const JsonValue* v) -> uint64_t {
    return v == nullptr ? 0 : std::strtoull(v->text.c_str(), nullptr, 10);
  };
  absl::MutexLock lock(&mu_);
  for (absl::string_view line : absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
    absl::StatusOr<JsonValue> v = ParseJson(std::string_view(line.data(), line.size()));
    if (!v.ok() || v->Find("program") == nullptr || v->Find("files") == nullptr) {
      continue;  // a damaged line costs its program's trace only
    }
    auto trace = std::make_shared<Trace>();
    trace->program = v->Find("program")->text;
    trace->learned = static_cast<int64_t>(number(v->Find("learned")));
    if (trace->learned < oldest) continue;  // expired
    trace->last_replay = static_cast<int64_t>(number(v->Find("last_replay")));
    trace->replays = number(v->Find("replays"));
    trace->hits = number(v->Find("hits"));
    for (const JsonValue& f : v->Find("files")->items) {
      if (f.Find("path") == nullptr) continue;
      TracedFile file;
      file.path = f.Find("path")->text;
      file.size = number(f.Find("size"));
      file.mtime_ns = static_cast<int64_t>(number(f.Find("mtime_ns")));
      if (const JsonValue* ranges = f.Find("ranges")) {
        for (const JsonValue& r : ranges->items) {
          if (r.items.size() != 2) continue;
          file.ranges.push_back({number(&r.items[0]), number(&r.items[1])});
        }
      }
      trace->files.push_back(std::move(file));
    }
    traces_[trace->program] = std::move(trace);
  }
  if (stats_ != nullptr) {
    stats_->hotset_programs.store(traces_.size(), std::memory_order_relaxed);
  }
}

}  // namespace cachefs
