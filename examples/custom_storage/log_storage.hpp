// A relaycore::Storage written by the host, from scratch: every committed batch is appended to
// a text log and fsynced, and an in-memory index answers queries. Opening a log replays it, so
// events survive a restart. The log never shrinks (compaction is left out to keep this small).
//
// Log records, one per line. A batch is committed by the "." line that ends it; a torn batch
// at the end of the file (a crash mid-write) was never acknowledged and is dropped on open.
//
//   + <seq> <canonical event JSON>    stored
//   - <id hex>                        removed (replaced, deleted, expired or erased)
//   .                                 end of batch
//
// NIP-09 tombstones are not logged: they come from the kind 5 events themselves, which replay
// re-inserts in the same order, so the rebuilt index is the one that was lost.
#pragma once

#include <memory>
#include <string>

#include "relaycore/status.hpp"
#include "relaycore/storage.hpp"

namespace example {

// Opens the log at `path`, creating it if missing, and replays it into memory.
relaycore::Result<std::shared_ptr<relaycore::Storage>> open_log_storage(const std::string& path);

}  // namespace example
