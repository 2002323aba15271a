// PosixOrigin: an origin that is a directory on any mounted filesystem
// (SSHFS, NFS, CIFS, local). Every node is an O_PATH|O_NOFOLLOW descriptor
// and every operation is relative to one, as in libfuse's passthrough_hp:
// a name from the kernel is one path component resolved inside its parent,
// so nothing escapes the origin, and symlinks are read, never followed.

#ifndef CACHEFS_NETFS_POSIX_ORIGIN_H_
#define CACHEFS_NETFS_POSIX_ORIGIN_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "netfs/origin.h"

namespace cachefs {

class PosixOrigin : public Origin {
 public:
  // Opens the origin directory `path`. Fails with a message naming it if it
  // is missing, not a directory, or cannot be opened.
  static absl::StatusOr<std::unique_ptr<PosixOrigin>> Open(
      const std::string& path);
  ~PosixOrigin() override;

  const Traits& traits() const override { return traits_; }
  std::string Describe() const override { return path_; }
  const Node& Root() const override { return *root_; }
  absl::StatusOr<LookupResult> Lookup(const Node& parent,
                                      const std::string& name) override;
  absl::StatusOr<LookupResult> Resolve(const std::string& path) override;
  absl::StatusOr<struct stat> GetAttr(const Node& node) override;
  absl::StatusOr<std::unique_ptr<OriginFile>> OpenFile(const Node& node,
                                                       int flags) override;
  absl::Status CheckAccess(const Node& node, int mask) override;
  absl::StatusOr<std::unique_ptr<OriginDir>> OpenDir(
      const Node& node) override;
  absl::StatusOr<std::string> ReadLink(const Node& node) override;
  absl::StatusOr<struct statvfs> StatFs(const Node& node) override;
  absl::StatusOr<std::string> GetXattr(const Node& node,
                                       const std::string& name) override;
  absl::StatusOr<std::vector<std::string>> ListXattr(
      const Node& node) override;

  absl::StatusOr<CreateResult> Create(const Node& parent,
                                      const std::string& name, mode_t mode,
                                      int flags) override;
  absl::StatusOr<LookupResult> MakeNode(const Node& parent,
                                        const std::string& name, mode_t mode,
                                        dev_t rdev) override;
  absl::StatusOr<LookupResult> MakeDir(const Node& parent,
                                       const std::string& name,
                                       mode_t mode) override;
  absl::StatusOr<LookupResult> MakeSymlink(const std::string& target,
                                           const Node& parent,
                                           const std::string& name) override;
  absl::StatusOr<LookupResult> Link(const Node& node, const Node& new_parent,
                                    const std::string& new_name) override;
  absl::Status Unlink(const Node& parent, const std::string& name) override;
  absl::Status RemoveDir(const Node& parent, const std::string& name) override;
  absl::Status Rename(const Node& parent, const std::string& name,
                      const Node& new_parent, const std::string& new_name,
                      unsigned flags) override;
  absl::Status SetAttr(const Node& node, const AttrChange& change,
                       OriginFile* file) override;
  absl::Status SetXattr(const Node& node, const std::string& name,
                        const std::string& value, int flags) override;
  absl::Status RemoveXattr(const Node& node, const std::string& name) override;
  absl::Status SyncDir(const Node& node, bool datasync) override;

 private:
  // The entry a change just made.
  absl::StatusOr<LookupResult> LookUpMade(const Node& parent,
                                          const std::string& name);
  PosixOrigin(std::string path, std::unique_ptr<Node> root, Traits traits);

  const std::string path_;
  const std::unique_ptr<Node> root_;
  const Traits traits_;
};

}  // namespace cachefs

#endif  // CACHEFS_NETFS_POSIX_ORIGIN_H_
