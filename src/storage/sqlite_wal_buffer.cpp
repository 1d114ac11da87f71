#include "storage/sqlite_wal_buffer.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <memory>

namespace relaycore::storage {
namespace {

constexpr const char* kVfsName = "relaycore-wal-buffer";
// A private file-control opcode ("RC" + 1); SQLite passes unknown opcodes to the VFS.
constexpr int kEnableBufferingOp = 0x52430001;
// Another, whose argument is a descriptor of the main database file to pace writes through.
constexpr int kPaceWritesOp = 0x52430002;
// Large enough that a group commit of 1,024 typical events takes a handful of calls.
constexpr std::size_t kBufferBytes = std::size_t{1} << 20;
// The unix VFS writes at most 0x1ffff bytes per call (it masks the length), so the buffer goes
// out in pieces of at most this many bytes.
constexpr std::size_t kMaxWriteBytes = 0x1f000;

struct WalBuffer {
  std::unique_ptr<char[]> data{new char[kBufferBytes]};
  std::size_t len = 0;
  sqlite3_int64 offset = 0;  // file offset of data[0]

  bool overlaps(sqlite3_int64 off, int amt) const noexcept {
    return len > 0 && off < offset + static_cast<sqlite3_int64>(len) && off + amt > offset;
  }
};

// The file object handed to SQLite: our header, then the wrapped VFS's file in the same
// allocation. `base` must come first, SQLite sees only it.
struct WrappedFile {
  sqlite3_file base;
  sqlite3_file* real;
  // Main database: WAL buffering requested (kEnableBufferingOp), and its open WAL file.
  bool buffering;
  WrappedFile* wal;
  // WAL file: its main database's wrapper (null once that is closed) and the buffer.
  WrappedFile* db;
  WalBuffer* buffer;
  // Main database, paced (kPaceWritesOp): a descriptor of its own for the file, or -1, and
  // the bytes written since the last writeback.
  int pace_fd;
  std::size_t unpaced;
};

constexpr int kHeaderBytes = static_cast<int>((sizeof(WrappedFile) + 7) & ~std::size_t{7});

WrappedFile* wrapped(sqlite3_file* f) noexcept { return reinterpret_cast<WrappedFile*>(f); }
sqlite3_file* real(sqlite3_file* f) noexcept { return wrapped(f)->real; }
sqlite3_vfs* real_vfs(sqlite3_vfs* vfs) noexcept {
  return static_cast<sqlite3_vfs*>(vfs->pAppData);
}

// Writes out what is buffered. The buffer is emptied even on failure: SQLite fails the
// transaction on the error and writes those frames again if it retries.
int flush(WrappedFile* f) noexcept {
  WalBuffer* b = f->buffer;
  if (b == nullptr || b->len == 0) return SQLITE_OK;
  int rc = SQLITE_OK;
  for (std::size_t done = 0; done < b->len && rc == SQLITE_OK;) {
    const std::size_t n = std::min(kMaxWriteBytes, b->len - done);
    rc = f->real->pMethods->xWrite(f->real, b->data.get() + done, static_cast<int>(n),
                                   b->offset + static_cast<sqlite3_int64>(done));
    done += n;
  }
  b->len = 0;
  return rc;
}

int file_close(sqlite3_file* file) {
  WrappedFile* f = wrapped(file);
  int rc = flush(f);
  if (f->db != nullptr && f->db->wal == f) f->db->wal = nullptr;
  if (f->wal != nullptr) f->wal->db = nullptr;
  delete f->buffer;
  f->buffer = nullptr;
  if (f->pace_fd >= 0) ::close(f->pace_fd);
  f->pace_fd = -1;
  const int closed = f->real->pMethods->xClose(f->real);
  return rc != SQLITE_OK ? rc : closed;
}

int file_read(sqlite3_file* file, void* out, int amt, sqlite3_int64 off) {
  WrappedFile* f = wrapped(file);
  if (f->buffer != nullptr && f->buffer->overlaps(off, amt)) {
    if (int rc = flush(f); rc != SQLITE_OK) return rc;
  }
  return f->real->pMethods->xRead(f->real, out, amt, off);
}

// Sends what a paced file has written to the disk and waits for it, once there is kPaceBytes of
// it. A failed writeback is not reported here: the pages stay dirty, and the sync that ends the
// checkpoint writes them again and reports the error.
void pace(WrappedFile* f, int amt) noexcept {
  f->unpaced += static_cast<std::size_t>(amt);
  if (f->unpaced < kPaceBytes) return;
  f->unpaced = 0;
#if defined(SYNC_FILE_RANGE_WRITE)
  (void)::sync_file_range(
      f->pace_fd, 0, 0,
      SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
#endif
}

int file_write(sqlite3_file* file, const void* in, int amt, sqlite3_int64 off) {
  WrappedFile* f = wrapped(file);
  if (f->pace_fd >= 0) {
    const int rc = f->real->pMethods->xWrite(f->real, in, amt, off);
    if (rc == SQLITE_OK && amt > 0) pace(f, amt);
    return rc;
  }
  const bool buffering = f->db != nullptr && f->db->buffering;
  if (!buffering || amt <= 0) {
    if (int rc = flush(f); rc != SQLITE_OK) return rc;
    return f->real->pMethods->xWrite(f->real, in, amt, off);
  }
  if (f->buffer == nullptr) f->buffer = new WalBuffer;
  WalBuffer& b = *f->buffer;
  const auto n = static_cast<std::size_t>(amt);
  const sqlite3_int64 end = b.offset + static_cast<sqlite3_int64>(b.len);
  if (b.len > 0 && off >= b.offset && off + amt <= end) {
    // Rewrites a frame already buffered (SQLite does this when a transaction writes a page
    // twice): later bytes win, as they would in the file.
    std::memcpy(b.data.get() + (off - b.offset), in, n);
    return SQLITE_OK;
  }
  if (b.len > 0 && off == end && b.len + n <= kBufferBytes) {
    std::memcpy(b.data.get() + b.len, in, n);
    b.len += n;
    return SQLITE_OK;
  }
  if (int rc = flush(f); rc != SQLITE_OK) return rc;
  if (n > kMaxWriteBytes) return f->real->pMethods->xWrite(f->real, in, amt, off);
  std::memcpy(b.data.get(), in, n);
  b.len = n;
  b.offset = off;
  return SQLITE_OK;
}

int file_truncate(sqlite3_file* file, sqlite3_int64 size) {
  if (int rc = flush(wrapped(file)); rc != SQLITE_OK) return rc;
  return real(file)->pMethods->xTruncate(real(file), size);
}

int file_sync(sqlite3_file* file, int flags) {
  if (int rc = flush(wrapped(file)); rc != SQLITE_OK) return rc;
  return real(file)->pMethods->xSync(real(file), flags);
}

int file_size(sqlite3_file* file, sqlite3_int64* size) {
  if (int rc = flush(wrapped(file)); rc != SQLITE_OK) return rc;
  return real(file)->pMethods->xFileSize(real(file), size);
}

int file_lock(sqlite3_file* file, int level) {
  return real(file)->pMethods->xLock(real(file), level);
}

int file_unlock(sqlite3_file* file, int level) {
  return real(file)->pMethods->xUnlock(real(file), level);
}

int file_check_reserved_lock(sqlite3_file* file, int* out) {
  return real(file)->pMethods->xCheckReservedLock(real(file), out);
}

int file_control(sqlite3_file* file, int op, void* arg) {
  if (op == kEnableBufferingOp) {
    wrapped(file)->buffering = true;
    return SQLITE_OK;
  }
  if (op == kPaceWritesOp) {
    WrappedFile* f = wrapped(file);
    if (f->pace_fd >= 0) ::close(f->pace_fd);
    f->pace_fd = *static_cast<int*>(arg);
    f->unpaced = 0;
    return SQLITE_OK;
  }
  return real(file)->pMethods->xFileControl(real(file), op, arg);
}

int file_sector_size(sqlite3_file* file) { return real(file)->pMethods->xSectorSize(real(file)); }

int file_device_characteristics(sqlite3_file* file) {
  return real(file)->pMethods->xDeviceCharacteristics(real(file));
}

// Shared memory and memory mapping belong to the main database file; passed through when the
// wrapped VFS has them.
int file_shm_map(sqlite3_file* file, int page, int page_size, int extend, void volatile** out) {
  const sqlite3_io_methods* m = real(file)->pMethods;
  if (m->iVersion < 2 || m->xShmMap == nullptr) return SQLITE_IOERR_SHMMAP;
  return m->xShmMap(real(file), page, page_size, extend, out);
}

int file_shm_lock(sqlite3_file* file, int offset, int n, int flags) {
  const sqlite3_io_methods* m = real(file)->pMethods;
  if (m->iVersion < 2 || m->xShmLock == nullptr) return SQLITE_IOERR_SHMLOCK;
  return m->xShmLock(real(file), offset, n, flags);
}

void file_shm_barrier(sqlite3_file* file) {
  const sqlite3_io_methods* m = real(file)->pMethods;
  if (m->iVersion >= 2 && m->xShmBarrier != nullptr) m->xShmBarrier(real(file));
}

int file_shm_unmap(sqlite3_file* file, int delete_flag) {
  const sqlite3_io_methods* m = real(file)->pMethods;
  if (m->iVersion < 2 || m->xShmUnmap == nullptr) return SQLITE_OK;
  return m->xShmUnmap(real(file), delete_flag);
}

int file_fetch(sqlite3_file* file, sqlite3_int64 off, int amt, void** out) {
  const sqlite3_io_methods* m = real(file)->pMethods;
  if (m->iVersion < 3 || m->xFetch == nullptr) {
    *out = nullptr;
    return SQLITE_OK;
  }
  return m->xFetch(real(file), off, amt, out);
}

int file_unfetch(sqlite3_file* file, sqlite3_int64 off, void* p) {
  const sqlite3_io_methods* m = real(file)->pMethods;
  if (m->iVersion < 3 || m->xUnfetch == nullptr) return SQLITE_OK;
  return m->xUnfetch(real(file), off, p);
}

const sqlite3_io_methods kIoMethods = {
    3,
    file_close,
    file_read,
    file_write,
    file_truncate,
    file_sync,
    file_size,
    file_lock,
    file_unlock,
    file_check_reserved_lock,
    file_control,
    file_sector_size,
    file_device_characteristics,
    file_shm_map,
    file_shm_lock,
    file_shm_barrier,
    file_shm_unmap,
    file_fetch,
    file_unfetch,
};

int vfs_open(sqlite3_vfs* vfs, const char* name, sqlite3_file* file, int flags, int* out_flags) {
  WrappedFile* f = wrapped(file);
  f->base.pMethods = nullptr;
  f->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(file) + kHeaderBytes);
  f->buffering = false;
  f->wal = nullptr;
  f->db = nullptr;
  f->buffer = nullptr;
  f->pace_fd = -1;
  f->unpaced = 0;
  f->real->pMethods = nullptr;
  sqlite3_vfs* inner = real_vfs(vfs);
  const int rc = inner->xOpen(inner, name, f->real, flags, out_flags);
  // SQLite calls xClose whenever pMethods is set, even after a failed open.
  if (f->real->pMethods == nullptr) return rc;
  f->base.pMethods = &kIoMethods;
  if (rc == SQLITE_OK && (flags & SQLITE_OPEN_WAL) != 0 && name != nullptr) {
    auto* db = reinterpret_cast<WrappedFile*>(sqlite3_database_file_object(name));
    if (db != nullptr && db->base.pMethods == &kIoMethods) {
      f->db = db;
      db->wal = f;
    }
  }
  return rc;
}

int vfs_delete(sqlite3_vfs* vfs, const char* name, int sync_dir) {
  return real_vfs(vfs)->xDelete(real_vfs(vfs), name, sync_dir);
}

int vfs_access(sqlite3_vfs* vfs, const char* name, int flags, int* out) {
  return real_vfs(vfs)->xAccess(real_vfs(vfs), name, flags, out);
}

int vfs_full_pathname(sqlite3_vfs* vfs, const char* name, int n, char* out) {
  return real_vfs(vfs)->xFullPathname(real_vfs(vfs), name, n, out);
}

void* vfs_dl_open(sqlite3_vfs* vfs, const char* name) {
  return real_vfs(vfs)->xDlOpen(real_vfs(vfs), name);
}

void vfs_dl_error(sqlite3_vfs* vfs, int n, char* out) {
  real_vfs(vfs)->xDlError(real_vfs(vfs), n, out);
}

void (*vfs_dl_sym(sqlite3_vfs* vfs, void* handle, const char* symbol))(void) {
  return real_vfs(vfs)->xDlSym(real_vfs(vfs), handle, symbol);
}

void vfs_dl_close(sqlite3_vfs* vfs, void* handle) {
  real_vfs(vfs)->xDlClose(real_vfs(vfs), handle);
}

int vfs_randomness(sqlite3_vfs* vfs, int n, char* out) {
  return real_vfs(vfs)->xRandomness(real_vfs(vfs), n, out);
}

int vfs_sleep(sqlite3_vfs* vfs, int micros) { return real_vfs(vfs)->xSleep(real_vfs(vfs), micros); }

int vfs_current_time(sqlite3_vfs* vfs, double* out) {
  return real_vfs(vfs)->xCurrentTime(real_vfs(vfs), out);
}

int vfs_get_last_error(sqlite3_vfs* vfs, int n, char* out) {
  return real_vfs(vfs)->xGetLastError(real_vfs(vfs), n, out);
}

int vfs_current_time_int64(sqlite3_vfs* vfs, sqlite3_int64* out) {
  return real_vfs(vfs)->xCurrentTimeInt64(real_vfs(vfs), out);
}

sqlite3_vfs* register_vfs() noexcept {
  sqlite3_vfs* inner = sqlite3_vfs_find(nullptr);
  // xCurrentTimeInt64 is version 2; every unix VFS has it.
  if (inner == nullptr || inner->iVersion < 2) return nullptr;
  static sqlite3_vfs vfs{};
  vfs.iVersion = 2;
  vfs.szOsFile = kHeaderBytes + inner->szOsFile;
  vfs.mxPathname = inner->mxPathname;
  vfs.zName = kVfsName;
  vfs.pAppData = inner;
  vfs.xOpen = vfs_open;
  vfs.xDelete = vfs_delete;
  vfs.xAccess = vfs_access;
  vfs.xFullPathname = vfs_full_pathname;
  vfs.xDlOpen = vfs_dl_open;
  vfs.xDlError = vfs_dl_error;
  vfs.xDlSym = vfs_dl_sym;
  vfs.xDlClose = vfs_dl_close;
  vfs.xRandomness = vfs_randomness;
  vfs.xSleep = vfs_sleep;
  vfs.xCurrentTime = vfs_current_time;
  vfs.xGetLastError = vfs_get_last_error;
  vfs.xCurrentTimeInt64 = vfs_current_time_int64;
  if (sqlite3_vfs_register(&vfs, /*makeDflt=*/0) != SQLITE_OK) return nullptr;
  return &vfs;
}

}  // namespace

const char* wal_buffer_vfs_name() noexcept {
  static sqlite3_vfs* const vfs = register_vfs();
  return vfs == nullptr ? nullptr : vfs->zName;
}

Status enable_wal_buffering(sqlite3* db) {
  // Without the VFS the connection was opened on the default one: writes go straight through.
  if (wal_buffer_vfs_name() == nullptr) return Status::ok();
  const int rc = sqlite3_file_control(db, "main", kEnableBufferingOp, nullptr);
  if (rc != SQLITE_OK) return Status::error("storage: WAL write buffering is not available");
  return Status::ok();
}

Status pace_database_writes(sqlite3* db) {
#if defined(SYNC_FILE_RANGE_WRITE)
  if (wal_buffer_vfs_name() == nullptr) return Status::ok();
  const char* path = sqlite3_db_filename(db, "main");
  if (path == nullptr || *path == '\0') return Status::ok();
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::error("storage: cannot open the database file to pace its writes");
  // The wrapper owns the descriptor from here and closes it with the file.
  const int rc = sqlite3_file_control(db, "main", kPaceWritesOp, &fd);
  if (rc != SQLITE_OK) {
    ::close(fd);
    return Status::error("storage: pacing the database file's writes is not available");
  }
#else
  (void)db;
#endif
  return Status::ok();
}

}  // namespace relaycore::storage
