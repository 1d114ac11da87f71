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
//
// The same wrapper paces a checkpointer's writes to the database file. A checkpoint copies
// megabytes of pages into the file's page cache and then syncs it; the sync hands the disk all
// of them at once, and every WAL sync the writer makes meanwhile waits behind that burst (at
// 4,000 events/s the OKs' p99 doubled, to about 3 ms, in the bursts). Paced, every
// kPaceBytes written are sent to the disk and waited for before the copy goes on, so the disk
// never holds more than that much of the checkpoint's when a commit syncs.
#pragma once

#include <sqlite3.h>

#include <cstddef>

#include "relaycore/status.hpp"

namespace relaycore::storage {

// How much of a paced connection's writes to its database file may wait in the page cache.
// 256 KiB took the OKs' p99 at 4,000 events/s from 2.3-2.8 ms to 1.3-1.6 ms, at no cost in CPU;
// smaller steps cost the checkpointer more system calls for no better tail.
inline constexpr std::size_t kPaceBytes = std::size_t{256} << 10;

// Registers the VFS (once per process, not as the default) and returns its name, for
// sqlite3_open_v2. Null if registration failed; callers then open with the default VFS.
const char* wal_buffer_vfs_name() noexcept;

// Turns WAL write buffering on for the main database of `db`, which must have been opened with
// the VFS above and run with synchronous=FULL. Does nothing when the VFS could not be
// registered (the connection then uses the default one).
Status enable_wal_buffering(sqlite3* db);

// Writes to the main database file of `db` (opened with the VFS above) go to the disk every
// kPaceBytes as they are made, rather than all at the next sync. Meant for a connection that
// only checkpoints: the waits fall on its thread. Does nothing where the VFS could not be
// registered or the platform cannot start writeback of a file range.
Status pace_database_writes(sqlite3* db);

}  // namespace relaycore::storage
