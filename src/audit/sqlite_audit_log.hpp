// The built-in SQLite audit sink, with the knobs tests need that the public options do not
// carry.
#pragma once

#include <chrono>
#include <memory>

#include "relaycore/audit.hpp"

namespace relaycore::audit {

// Like relaycore::new_sqlite_audit_log, but the writer thread sleeps `append_delay` before it
// writes each batch, to stand in for a slow disk when testing backpressure.
Result<std::shared_ptr<AuditSink>> new_sqlite_audit_log(const SqliteAuditOptions& options,
                                                        std::chrono::microseconds append_delay);

}  // namespace relaycore::audit
