// Failures whose cleanup failed too. A ROLLBACK that fails after a failed write can leave a
// connection inside a transaction, which makes every later write fail; the caller must hear of
// it rather than see only the first error.
#pragma once

#include <string>

#include "relaycore/status.hpp"

namespace relaycore {

// `failure`, with the cleanup's failure appended when there is one: "error: <failure detail>;
// then <cleanup detail>". The code is the first failure's.
inline Status with_cleanup(const Status& failure, const Status& cleanup) {
  if (cleanup.is_ok()) return failure;
  if (failure.is_ok()) return cleanup;
  std::string detail(failure.detail());
  detail.append("; then ").append(cleanup.detail());
  return Status(failure.code(), detail);
}

}  // namespace relaycore
