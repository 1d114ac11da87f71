// A relaycore::Storage written by the host on relaycore's public API: every committed batch is
// appended to
// a text log and fsynced, and an in-memory index answers queries. Opening a log replays it, so
// events survive a restart. The log never shrinks (compaction is left out to keep this small).
//
// Log records, one per line. A batch is committed by the "." line that ends it; a torn batch
// at the end of the file (a crash mid-write) was never acknowledged and is dropped on open.
//
//   + <seq> <canonical event JSON>               stored
//   - <id hex>                                   removed (replaced, deleted, expired or erased)
//   x <id hex> <author hex>                      NIP-09: the author deleted this id
//   a <until> <kind> <pubkey hex> <d in hex>     NIP-09: this slot is deleted up to `until`
//   .                                            end of batch
//
// Each record is one call of the write primitives that relaycore's storage rules
// (relaycore/storage_rules.hpp) made, so replaying them in order rebuilds the index.
#pragma once

#include <memory>
#include <string>

#include "relaycore/status.hpp"
#include "relaycore/storage.hpp"

namespace example {

// Opens the log at `path`, creating it if missing, and replays it into memory.
relaycore::Result<std::shared_ptr<relaycore::Storage>> open_log_storage(const std::string& path);

}  // namespace example
