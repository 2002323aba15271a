#include "netfs/origin_path.h"

#include <string_view>

#include "absl/strings/str_cat.h"

namespace cachefs {

absl::Status CheckOriginPath(const std::string& path) {
  size_t start = 0;
  while (!path.empty()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    std::string_view name(path.data() + start, end - start);
    if (name.empty() || name == "." || name == ".." ||
        name.find('\0') != std::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", path, "\" is not a path inside the origin"));
    }
    if (end == path.size()) break;
    start = end + 1;
  }
  return absl::OkStatus();
}

}  // namespace cachefs
