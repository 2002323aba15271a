#include "netfs/mount_table.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "io/errno_status.h"

namespace cachefs {
namespace {

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string Unescape(const std::string& field) {
  std::string out;
  for (size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '\\' && i + 3 < field.size()) {
      int v = 0;
      bool octal = true;
      for (size_t j = 1; j <= 3; ++j) {
        char c = field[i + j];
        if (c < '0' || c > '7') octal = false;
        v = v * 8 + (c - '0');
      }
      if (octal) {
        out.push_back(static_cast<char>(v));
        i += 3;
        continue;
      }
    }
    out.push_back(field[i]);
  }
  return out;
}

bool IsUnder(const std::string& path, const std::string& dir) {
  if (dir == "/") return true;
  return path == dir ||
         (path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
          path[dir.size()] == '/');
}

}  // namespace

absl::StatusOr<std::vector<MountEntry>> ReadMountTable(
    const std::string& path) {
  std::ifstream in(path);
  if (!in) return ErrnoToStatus(errno, "reading " + path);
  std::vector<MountEntry> table;
  std::string line;
  while (std::getline(in, line)) {
    // id parent major:minor root mount-point options [optional...] - type
    // source super-options
    std::vector<std::string> f = absl::StrSplit(line, ' ');
    size_t dash = 0;
    while (dash < f.size() && f[dash] != "-") ++dash;
    if (f.size() < 5 || dash + 2 >= f.size()) continue;
    table.push_back({Unescape(f[4]), Unescape(f[3]), Unescape(f[dash + 1]),
                     Unescape(f[dash + 2])});
  }
  return table;
}

const MountEntry* FindMountOf(const std::vector<MountEntry>& table,
                              const std::string& path) {
  const MountEntry* best = nullptr;
  for (const MountEntry& e : table) {
    if (!IsUnder(path, e.mount_point)) continue;
    if (best == nullptr || e.mount_point.size() >= best->mount_point.size()) {
      best = &e;
    }
  }
  return best;
}

bool IsMountPoint(const std::vector<MountEntry>& table,
                  const std::string& path) {
  for (const MountEntry& e : table) {
    if (e.mount_point == path) return true;
  }
  return false;
}

std::string OriginVolumeKey(const std::vector<MountEntry>& table,
                            const std::string& path) {
  const MountEntry* mount = FindMountOf(table, path);
  if (mount == nullptr) return absl::StrCat("dir::", path);
  std::string inside = path.substr(
      mount->mount_point == "/" ? 0 : mount->mount_point.size());
  std::string root = mount->root == "/" ? "" : mount->root;
  std::string within = absl::StrCat(root, inside);
  return absl::StrCat(mount->fs_type, ":", mount->source, ":",
                      within.empty() ? std::string("/") : within);
}

absl::StatusOr<std::string> CurrentOriginKey(const std::string& path) {
  absl::StatusOr<std::vector<MountEntry>> table = ReadMountTable();
  if (!table.ok()) return table.status();
  return OriginVolumeKey(*table, path);
}

}  // namespace cachefs
