// A SQLite VFS that wraps the default one and gathers the writes of a WAL commit into a few
// large pwrite calls.
//
// SQLite writes each WAL frame as two calls (a 24-byte header, then the page), so a group
// commit that dirties 2,000 pages makes 4,000 system calls, and on a virtual machine each call
// costs more than the copy it does. The wrapper appends contiguous WAL writes to a buffer and
// writes it out before anything that could observe the file: xSync, xRead of a buffered range,
// xFileSize, xTruncate, xClose, a write that does not continue the buffer, or a full buffer.
//
// Buffering is switched on per database file, and only where every commit syncs the WAL
// (synchronous=FULL): then the commit's frames reach the file inside xSync, before SQLite
// publishes the commit to other connections through the wal-index, and a failed write is
// reported by that xSync as the commit's error. With synchronous=NORMAL a commit does not sync,
// nothing would flush the frames before other connections look for them, so the buffer stays
// off and every write goes straight through.
#pragma once

#include <sqlite3.h>

#include "relaycore/status.hpp"

namespace relaycore::storage {

// Registers the VFS (once per process, not as the default) and returns its name, for
// sqlite3_open_v2. Null if registration failed; callers then open with the default VFS.
const char* wal_buffer_vfs_name() noexcept;

// Turns WAL write buffering on for the main database of `db`, which must have been opened with
// the VFS above and run with synchronous=FULL. Does nothing when the VFS could not be
// registered (the connection then uses the default one).
Status enable_wal_buffering(sqlite3* db);

}  // namespace relaycore::storage
