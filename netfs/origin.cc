#include "netfs/origin.h"

#include <cerrno>

#include "io/errno_status.h"

namespace cachefs {

bool SaysUnreachable(const absl::Status& status) {
  if (status.ok()) return false;
  switch (StatusToErrno(status)) {
    case ENOTCONN:
    case ETIMEDOUT:
    case ECONNREFUSED:
    case ECONNRESET:
    case ECONNABORTED:
    case EHOSTUNREACH:
    case EHOSTDOWN:
    case ENETUNREACH:
    case ENETDOWN:
    case ESHUTDOWN:
    case EPIPE:
      return true;
    default:
      return false;
  }
}

}  // namespace cachefs
