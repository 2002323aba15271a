#include "netfs/nfs4_compound.h"

#include <arpa/inet.h>
#include <sys/sysmacros.h>

#include <cerrno>
#include <cstring>
#include <string_view>

#include <nfsc/libnfs.h>
#include <nfsc/libnfs-raw.h>
#include <nfsc/libnfs-raw-nfs4.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace cachefs::nfs4 {
namespace {

// XDR, as fattr4's attr_vals wants its values: big-endian, padded to 4.
class XdrWriter {
 public:
  void U32(uint32_t v) {
    v = htonl(v);
    out_.append(reinterpret_cast<const char*>(&v), 4);
  }
  void U64(uint64_t v) {
    U32(static_cast<uint32_t>(v >> 32));
    U32(static_cast<uint32_t>(v));
  }
  void String(std::string_view s) {
    U32(static_cast<uint32_t>(s.size()));
    out_.append(s.data(), s.size());
    out_.append((4 - s.size() % 4) % 4, '\0');
  }
  void SetTime(const struct timespec& t) {
    if (t.tv_nsec == UTIME_NOW) {
      U32(SET_TO_SERVER_TIME4);
      return;
    }
    U32(SET_TO_CLIENT_TIME4);
    U64(static_cast<uint64_t>(static_cast<int64_t>(t.tv_sec)));
    U32(static_cast<uint32_t>(t.tv_nsec));
  }
  std::string& out() { return out_; }

 private:
  std::string out_;
};

// An fattr4 and the storage it points into.
struct Attrs {
  uint32_t bitmap[2] = {0, 0};
  std::string values;
  fattr4 Fattr() {
    fattr4 f;
    std::memset(&f, 0, sizeof(f));
    f.attrmask.bitmap4_len = bitmap[1] != 0 ? 2 : 1;
    f.attrmask.bitmap4_val = bitmap;
    f.attr_vals.attrlist4_len = static_cast<u_int>(values.size());
    f.attr_vals.attrlist4_val = values.data();
    return f;
  }
};

void Set(uint32_t* bitmap, int attr) { bitmap[attr / 32] |= 1u << (attr % 32); }

// Values go in attribute number order.
Attrs Encode(const AttrSet& a) {
  Attrs out;
  XdrWriter w;
  if (a.size) {
    Set(out.bitmap, FATTR4_SIZE);
    w.U64(*a.size);
  }
  if (a.mode) {
    Set(out.bitmap, FATTR4_MODE);
    w.U32(*a.mode & 07777);
  }
  // Numeric owners, as Linux's client sends them under AUTH_SYS.
  if (a.uid) {
    Set(out.bitmap, FATTR4_OWNER);
    w.String(absl::StrCat(*a.uid));
  }
  if (a.gid) {
    Set(out.bitmap, FATTR4_OWNER_GROUP);
    w.String(absl::StrCat(*a.gid));
  }
  if (a.atime) {
    Set(out.bitmap, FATTR4_TIME_ACCESS_SET);
    w.SetTime(*a.atime);
  }
  if (a.mtime) {
    Set(out.bitmap, FATTR4_TIME_MODIFY_SET);
    w.SetTime(*a.mtime);
  }
  out.values = std::move(w.out());
  return out;
}

// Builds the ops of one COMPOUND; every pointer it hands libnfs points
// into itself, and libnfs encodes the call before Start* returns.
class Compound {
 public:
  explicit Compound(size_t reserve) { names_.reserve(reserve); }
  nfs_argop4& Add(nfs_opnum4 op) {
    ops_.emplace_back();
    std::memset(&ops_.back(), 0, sizeof(nfs_argop4));
    ops_.back().argop = op;
    return ops_.back();
  }
  // PUTROOTFH, then a LOOKUP of each of `names` (of their first `count`).
  void Walk(const std::vector<std::string>& names, size_t count) {
    Add(OP_PUTROOTFH);
    for (size_t i = 0; i < count; ++i) {
      nfs_argop4& op = Add(OP_LOOKUP);
      Component(names[i], &op.nfs_argop4_u.oplookup.objname);
    }
  }
  void Component(const std::string& name, component4* out) {
    names_.push_back(name);
    out->utf8string_len = static_cast<u_int>(names_.back().size());
    out->utf8string_val = names_.back().data();
  }
  int Send(struct nfs_context* nfs, rpc_cb cb, void* private_data) {
    COMPOUND4args args;
    std::memset(&args, 0, sizeof(args));
    args.argarray.argarray_len = static_cast<u_int>(ops_.size());
    args.argarray.argarray_val = ops_.data();
#ifdef LIBNFS_API_V2
    // libnfs 6 renamed rpc_*_async to rpc_*_task, returning the PDU (NULL
    // when it could not be queued; the callback then never runs).
    return rpc_nfs4_compound_task(nfs_get_rpc_context(nfs), cb, &args,
                                  private_data) != nullptr
               ? 0
               : -1;
#else
    return rpc_nfs4_compound_async(nfs_get_rpc_context(nfs), cb, &args,
                                   private_data);
#endif
  }

 private:
  std::vector<nfs_argop4> ops_;
  // Reserved up front: components point into these strings.
  std::vector<std::string> names_;
};

struct Pending {
  NfsConnection::Callback cb;
  void* private_data;
  struct nfs_context* nfs;
  // Turns a successful reply into the callback's data; none by default.
  void (*on_success)(const COMPOUND4res& res, Pending& self) = nullptr;
  // The data handed out by on_success, if any.
  std::string text;
  dev_t dev = 0;
  void* data = nullptr;
};

const char* StatusName(int status) {
  switch (status) {
    case RPC_STATUS_ERROR:
      return "RPC error";
    case RPC_STATUS_CANCEL:
      return "RPC cancelled";
    case RPC_STATUS_TIMEOUT:
      return "RPC timed out";
    default:
      return "RPC failed";
  }
}

void OnCompound(struct rpc_context*, int status, void* data,
                void* private_data) {
  auto* pending = static_cast<Pending*>(private_data);
  if (status != RPC_STATUS_SUCCESS) {
    pending->cb(status == RPC_STATUS_TIMEOUT ? -ETIMEDOUT : -EIO,
                pending->nfs, const_cast<char*>(StatusName(status)),
                pending->private_data);
  } else {
    const auto* res = static_cast<COMPOUND4res*>(data);
    if (res->status != NFS4_OK) {
      std::string message = absl::StrCat("NFS4 status ", res->status);
      pending->cb(-ErrnoOf(res->status), pending->nfs, message.data(),
                  pending->private_data);
    } else {
      if (pending->on_success != nullptr) pending->on_success(*res, *pending);
      pending->cb(0, pending->nfs, pending->data, pending->private_data);
    }
  }
  delete pending;
}

// The result of the compound's last op, if it is `op`: what a Start*
// function hands out.
const nfs_resop4* LastResult(const COMPOUND4res& res, nfs_opnum4 op) {
  const u_int n = res.resarray.resarray_len;
  if (n == 0 || res.resarray.resarray_val[n - 1].resop != op) return nullptr;
  return &res.resarray.resarray_val[n - 1];
}

int Send(Compound& compound, struct nfs_context* nfs,
         NfsConnection::Callback cb, void* private_data,
         void (*on_success)(const COMPOUND4res&, Pending&) = nullptr) {
  auto* pending = new Pending{cb, private_data, nfs, on_success, {}, 0, nullptr};
  const int rc = compound.Send(nfs, &OnCompound, pending);
  if (rc != 0) delete pending;
  return rc;
}

}  // namespace

std::vector<std::string> NamesOf(const std::string& export_path,
                                 const std::string& path) {
  std::vector<std::string> names =
      absl::StrSplit(export_path, '/', absl::SkipEmpty());
  for (absl::string_view name : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    names.emplace_back(name);
  }
  return names;
}

int StartSetAttr(struct nfs_context* nfs, const std::vector<std::string>& names,
                 const AttrSet& attrs, NfsConnection::Callback cb,
                 void* private_data) {
  Compound compound(names.size());
  compound.Walk(names, names.size());
  Attrs encoded = Encode(attrs);
  nfs_argop4& op = compound.Add(OP_SETATTR);
  // The anonymous stateid (all zero): no open is needed to change
  // attributes, and the server checks the caller's permissions.
  op.nfs_argop4_u.opsetattr.obj_attributes = encoded.Fattr();
  return Send(compound, nfs, cb, private_data);
}

int StartMakeSpecial(struct nfs_context* nfs,
                     const std::vector<std::string>& names, mode_t mode,
                     dev_t rdev, NfsConnection::Callback cb,
                     void* private_data) {
  if (names.empty()) return -EINVAL;
  nfs_ftype4 type;
  if (S_ISFIFO(mode)) {
    type = NF4FIFO;
  } else if (S_ISSOCK(mode)) {
    type = NF4SOCK;
  } else if (S_ISCHR(mode)) {
    type = NF4CHR;
  } else if (S_ISBLK(mode)) {
    type = NF4BLK;
  } else {
    return -EINVAL;
  }
  Compound compound(names.size());
  compound.Walk(names, names.size() - 1);
  AttrSet set;
  set.mode = mode & 07777;
  Attrs encoded = Encode(set);
  nfs_argop4& op = compound.Add(OP_CREATE);
  CREATE4args& create = op.nfs_argop4_u.opcreate;
  create.objtype.type = type;
  if (type == NF4CHR || type == NF4BLK) {
    create.objtype.createtype4_u.devdata.specdata1 = major(rdev);
    create.objtype.createtype4_u.devdata.specdata2 = minor(rdev);
  }
  compound.Component(names.back(), &create.objname);
  create.createattrs = encoded.Fattr();
  return Send(compound, nfs, cb, private_data);
}

int StartLink(struct nfs_context* nfs, const std::vector<std::string>& from,
              const std::vector<std::string>& to, NfsConnection::Callback cb,
              void* private_data) {
  if (to.empty()) return -EINVAL;
  Compound compound(from.size() + to.size());
  compound.Walk(from, from.size());
  compound.Add(OP_SAVEFH);
  compound.Walk(to, to.size() - 1);
  nfs_argop4& op = compound.Add(OP_LINK);
  compound.Component(to.back(), &op.nfs_argop4_u.oplink.newname);
  return Send(compound, nfs, cb, private_data);
}

int StartReadLink(struct nfs_context* nfs,
                  const std::vector<std::string>& names,
                  NfsConnection::Callback cb, void* private_data) {
  Compound compound(names.size());
  compound.Walk(names, names.size());
  compound.Add(OP_READLINK);
  return Send(compound, nfs, cb, private_data,
              [](const COMPOUND4res& res, Pending& self) {
                const nfs_resop4* last = LastResult(res, OP_READLINK);
                if (last == nullptr) return;
                const linktext4& link =
                    last->nfs_resop4_u.opreadlink.READLINK4res_u.resok4.link;
                self.text.assign(link.utf8string_val, link.utf8string_len);
                self.data = &self.text;
              });
}

int StartGetRawDev(struct nfs_context* nfs,
                   const std::vector<std::string>& names,
                   NfsConnection::Callback cb, void* private_data) {
  Compound compound(names.size());
  compound.Walk(names, names.size());
  nfs_argop4& op = compound.Add(OP_GETATTR);
  uint32_t bitmap[2] = {0, 0};
  Set(bitmap, FATTR4_RAWDEV);
  op.nfs_argop4_u.opgetattr.attr_request.bitmap4_len = 2;
  op.nfs_argop4_u.opgetattr.attr_request.bitmap4_val = bitmap;
  return Send(compound, nfs, cb, private_data,
              [](const COMPOUND4res& res, Pending& self) {
                const nfs_resop4* last = LastResult(res, OP_GETATTR);
                if (last == nullptr) return;
                const fattr4& attrs =
                    last->nfs_resop4_u.opgetattr.GETATTR4res_u.resok4
                        .obj_attributes;
                // Only RAWDEV was asked for: its specdata4, two numbers.
                if (attrs.attr_vals.attrlist4_len < 8) return;
                uint32_t numbers[2];
                std::memcpy(numbers, attrs.attr_vals.attrlist4_val, 8);
                self.dev = makedev(ntohl(numbers[0]), ntohl(numbers[1]));
                self.data = &self.dev;
              });
}

int ErrnoOf(int status) {
  switch (status) {
    case NFS4ERR_PERM: return EPERM;
    case NFS4ERR_NOENT: return ENOENT;
    case NFS4ERR_IO: return EIO;
    case NFS4ERR_NXIO: return ENXIO;
    case NFS4ERR_ACCESS: return EACCES;
    case NFS4ERR_EXIST: return EEXIST;
    case NFS4ERR_XDEV: return EXDEV;
    case NFS4ERR_NOTDIR: return ENOTDIR;
    case NFS4ERR_ISDIR: return EISDIR;
    case NFS4ERR_INVAL: return EINVAL;
    case NFS4ERR_FBIG: return EFBIG;
    case NFS4ERR_NOSPC: return ENOSPC;
    case NFS4ERR_ROFS: return EROFS;
    case NFS4ERR_MLINK: return EMLINK;
    case NFS4ERR_NAMETOOLONG: return ENAMETOOLONG;
    case NFS4ERR_NOTEMPTY: return ENOTEMPTY;
    case NFS4ERR_DQUOT: return EDQUOT;
    case NFS4ERR_STALE: return ESTALE;
    case NFS4ERR_NOTSUPP: return EOPNOTSUPP;
    case NFS4ERR_ATTRNOTSUPP: return EOPNOTSUPP;
    case NFS4ERR_BADTYPE: return EINVAL;
    case NFS4ERR_DELAY: return EAGAIN;
    case NFS4ERR_SYMLINK: return ELOOP;
    case NFS4ERR_BADOWNER: return EINVAL;
    case NFS4ERR_BADNAME: return EINVAL;
    case NFS4ERR_BADCHAR: return EINVAL;
    case NFS4ERR_LOCKED: return EAGAIN;
    case NFS4ERR_SHARE_DENIED: return EACCES;
    case NFS4ERR_WRONGSEC: return EPERM;
    default: return EIO;
  }
}

}  // namespace cachefs::nfs4
