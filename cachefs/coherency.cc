#include "cachefs/coherency.h"

#include "absl/strings/str_format.h"

namespace cachefs {

std::string MakeAuxData(const struct stat& st, bool use_inode) {
  std::string aux = absl::StrFormat(
      "v1 size=%d mtime=%d.%09d ctime=%d.%09d", st.st_size, st.st_mtim.tv_sec,
      st.st_mtim.tv_nsec, st.st_ctim.tv_sec, st.st_ctim.tv_nsec);
  if (use_inode) absl::StrAppendFormat(&aux, " ino=%d", st.st_ino);
  return aux;
}

std::string ChildKey(const std::string& parent_key, const std::string& name) {
  return parent_key.empty() ? name : parent_key + "/" + name;
}

}  // namespace cachefs
