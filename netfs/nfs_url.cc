#include "netfs/nfs_url.h"

#include <cstdint>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace cachefs {
namespace {

constexpr absl::string_view kScheme = "nfs://";

absl::Status Bad(absl::string_view arg, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("origin ", arg, ": ", why,
                   " (expected nfs://HOST[:PORT]/EXPORT[/SUBDIR]"
                   "[?version=3|4])"));
}

bool ParsePort(absl::string_view text, int* port) {
  uint32_t value = 0;
  if (text.empty() || !absl::SimpleAtoi(text, &value) || value == 0 ||
      value > 65535 || text.find_first_not_of("0123456789") !=
                           absl::string_view::npos) {
    return false;
  }
  *port = static_cast<int>(value);
  return true;
}

}  // namespace

bool LooksLikeNfsUrl(const std::string& arg) {
  return absl::StartsWithIgnoreCase(arg, kScheme);
}

absl::StatusOr<NfsUrl> ParseNfsUrl(const std::string& arg) {
  if (!LooksLikeNfsUrl(arg)) return Bad(arg, "not an nfs:// URL");
  absl::string_view rest = absl::string_view(arg).substr(kScheme.size());
  absl::string_view query;
  if (size_t q = rest.find('?'); q != absl::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  const size_t slash = rest.find('/');
  if (slash == absl::string_view::npos) return Bad(arg, "no export path");
  absl::string_view authority = rest.substr(0, slash);
  absl::string_view path = rest.substr(slash);

  NfsUrl url;
  if (absl::StartsWith(authority, "[")) {
    const size_t close = authority.find(']');
    if (close == absl::string_view::npos) {
      return Bad(arg, "unclosed [ in the host");
    }
    url.host = std::string(authority.substr(1, close - 1));
    absl::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':' || !ParsePort(after.substr(1), &url.port)) {
        return Bad(arg, "bad port");
      }
    }
  } else {
    const size_t colon = authority.find(':');
    url.host = std::string(authority.substr(0, colon));
    if (colon != absl::string_view::npos &&
        !ParsePort(authority.substr(colon + 1), &url.port)) {
      return Bad(arg, "bad port");
    }
  }
  if (url.host.empty()) return Bad(arg, "no host");
  if (url.host.find_first_of("/?&=@ ") != std::string::npos) {
    return Bad(arg, "bad host");
  }

  // The path: no empty, "." or ".." names, no trailing '/'.
  std::vector<absl::string_view> names =
      absl::StrSplit(path.substr(1), '/', absl::SkipEmpty());
  if (names.empty()) return Bad(arg, "no export path");
  for (absl::string_view name : names) {
    if (name == "." || name == "..") {
      return Bad(arg, "the export path may not hold . or ..");
    }
    absl::StrAppend(&url.path, "/", name);
  }

  for (absl::string_view pair : absl::StrSplit(query, '&', absl::SkipEmpty())) {
    const size_t eq = pair.find('=');
    absl::string_view key = pair.substr(0, eq);
    absl::string_view value =
        eq == absl::string_view::npos ? absl::string_view() : pair.substr(eq + 1);
    if (key == "version") {
      if (value == "3") {
        url.version = 3;
      } else if (value == "4") {
        url.version = 4;
      } else {
        return Bad(arg, "version must be 3 or 4");
      }
    } else if (key == "nfsport") {
      if (!ParsePort(value, &url.port)) return Bad(arg, "bad nfsport");
    } else if (key == "mountport") {
      if (!ParsePort(value, &url.mount_port)) return Bad(arg, "bad mountport");
    } else {
      return Bad(arg, absl::StrCat("unknown argument \"", key, "\""));
    }
  }
  return url;
}

std::string NfsUrl::ForLibnfs() const {
  const bool v6 = host.find(':') != std::string::npos;
  std::string out = absl::StrCat("nfs://", v6 ? "[" : "", host, v6 ? "]" : "",
                                 path, "?version=", version);
  // Without a port, NFSv4 goes straight to 2049 as the kernel's client
  // does: there may be no portmapper at all.
  const int nfs_port = port != 0 ? port : (version == 4 ? 2049 : 0);
  if (nfs_port != 0) absl::StrAppend(&out, "&nfsport=", nfs_port);
  if (mount_port != 0) absl::StrAppend(&out, "&mountport=", mount_port);
  return out;
}

std::string NfsUrl::ToString() const {
  const bool v6 = host.find(':') != std::string::npos;
  std::string out = absl::StrCat("nfs://", v6 ? "[" : "", host, v6 ? "]" : "");
  if (port != 0) absl::StrAppend(&out, ":", port);
  absl::StrAppend(&out, path, "?version=", version);
  if (mount_port != 0) absl::StrAppend(&out, "&mountport=", mount_port);
  return out;
}

std::string NfsUrl::VolumeKey() const {
  return absl::StrCat("nfs:", host, ":", path);
}

}  // namespace cachefs
