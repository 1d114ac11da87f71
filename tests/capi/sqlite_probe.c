/* The SQLite probe of the C API tests; see sqlite_probe.h. Every method passes the call on to the
 * VFS that was the default, whose file sits right after the probe's. */
#include "sqlite_probe.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <time.h>

typedef struct ProbeFile {
  sqlite3_file base;
  sqlite3_file* real;
  int wal;
} ProbeFile;

static sqlite3_vfs* inner;
static sqlite3_vfs probe_vfs;

/* What the test asks for and what the probe saw. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static unsigned long wal_syncs;
static unsigned long reads;
static int counting_reads;
static pthread_t reading_thread;
static int hold_next;
static int held;

static sqlite3_file* real(sqlite3_file* f) { return ((ProbeFile*)f)->real; }

static void count_read(void) {
  pthread_mutex_lock(&mu);
  if (counting_reads && pthread_equal(pthread_self(), reading_thread)) ++reads;
  pthread_mutex_unlock(&mu);
}

static int file_close(sqlite3_file* f) { return real(f)->pMethods->xClose(real(f)); }

static int file_read(sqlite3_file* f, void* out, int n, sqlite3_int64 offset) {
  count_read();
  return real(f)->pMethods->xRead(real(f), out, n, offset);
}

static int file_write(sqlite3_file* f, const void* data, int n, sqlite3_int64 offset) {
  return real(f)->pMethods->xWrite(real(f), data, n, offset);
}

static int file_truncate(sqlite3_file* f, sqlite3_int64 size) {
  return real(f)->pMethods->xTruncate(real(f), size);
}

static int file_sync(sqlite3_file* f, int flags) {
  if (((ProbeFile*)f)->wal) {
    pthread_mutex_lock(&mu);
    ++wal_syncs;
    if (hold_next) {
      hold_next = 0;
      held = 1;
      pthread_cond_broadcast(&cv);
      while (held) pthread_cond_wait(&cv, &mu);
    }
    pthread_mutex_unlock(&mu);
  }
  return real(f)->pMethods->xSync(real(f), flags);
}

static int file_size(sqlite3_file* f, sqlite3_int64* size) {
  return real(f)->pMethods->xFileSize(real(f), size);
}

static int file_lock(sqlite3_file* f, int level) {
  return real(f)->pMethods->xLock(real(f), level);
}

static int file_unlock(sqlite3_file* f, int level) {
  return real(f)->pMethods->xUnlock(real(f), level);
}

static int file_check_reserved_lock(sqlite3_file* f, int* out) {
  return real(f)->pMethods->xCheckReservedLock(real(f), out);
}

static int file_control(sqlite3_file* f, int op, void* arg) {
  return real(f)->pMethods->xFileControl(real(f), op, arg);
}

static int file_sector_size(sqlite3_file* f) { return real(f)->pMethods->xSectorSize(real(f)); }

static int file_device_characteristics(sqlite3_file* f) {
  return real(f)->pMethods->xDeviceCharacteristics(real(f));
}

static int file_shm_map(sqlite3_file* f, int region, int size, int extend, void volatile** out) {
  return real(f)->pMethods->xShmMap(real(f), region, size, extend, out);
}

static int file_shm_lock(sqlite3_file* f, int offset, int n, int flags) {
  return real(f)->pMethods->xShmLock(real(f), offset, n, flags);
}

static void file_shm_barrier(sqlite3_file* f) { real(f)->pMethods->xShmBarrier(real(f)); }

static int file_shm_unmap(sqlite3_file* f, int delete_flag) {
  return real(f)->pMethods->xShmUnmap(real(f), delete_flag);
}

static int file_fetch(sqlite3_file* f, sqlite3_int64 offset, int n, void** out) {
  const int rc = real(f)->pMethods->xFetch(real(f), offset, n, out);
  if (rc == SQLITE_OK && *out != NULL) count_read();
  return rc;
}

static int file_unfetch(sqlite3_file* f, sqlite3_int64 offset, void* page) {
  return real(f)->pMethods->xUnfetch(real(f), offset, page);
}

static const sqlite3_io_methods kProbeMethods = {
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

static int vfs_open(sqlite3_vfs* vfs, const char* name, sqlite3_file* f, int flags,
                    int* out_flags) {
  ProbeFile* p = (ProbeFile*)f;
  int rc;
  (void)vfs;
  p->real = (sqlite3_file*)(p + 1);
  p->wal = (flags & SQLITE_OPEN_WAL) != 0;
  p->real->pMethods = NULL;
  rc = inner->xOpen(inner, name, p->real, flags, out_flags);
  /* SQLite calls xClose only on a file whose pMethods is set. */
  p->base.pMethods = p->real->pMethods != NULL ? &kProbeMethods : NULL;
  return rc;
}

static int vfs_delete(sqlite3_vfs* vfs, const char* name, int sync_dir) {
  (void)vfs;
  return inner->xDelete(inner, name, sync_dir);
}

static int vfs_access(sqlite3_vfs* vfs, const char* name, int flags, int* out) {
  (void)vfs;
  return inner->xAccess(inner, name, flags, out);
}

static int vfs_full_pathname(sqlite3_vfs* vfs, const char* name, int n, char* out) {
  (void)vfs;
  return inner->xFullPathname(inner, name, n, out);
}

static void* vfs_dl_open(sqlite3_vfs* vfs, const char* name) {
  (void)vfs;
  return inner->xDlOpen(inner, name);
}

static void vfs_dl_error(sqlite3_vfs* vfs, int n, char* out) {
  (void)vfs;
  inner->xDlError(inner, n, out);
}

static void (*vfs_dl_sym(sqlite3_vfs* vfs, void* handle, const char* symbol))(void) {
  (void)vfs;
  return inner->xDlSym(inner, handle, symbol);
}

static void vfs_dl_close(sqlite3_vfs* vfs, void* handle) {
  (void)vfs;
  inner->xDlClose(inner, handle);
}

static int vfs_randomness(sqlite3_vfs* vfs, int n, char* out) {
  (void)vfs;
  return inner->xRandomness(inner, n, out);
}

static int vfs_sleep(sqlite3_vfs* vfs, int micros) {
  (void)vfs;
  return inner->xSleep(inner, micros);
}

static int vfs_current_time(sqlite3_vfs* vfs, double* out) {
  (void)vfs;
  return inner->xCurrentTime(inner, out);
}

static int vfs_get_last_error(sqlite3_vfs* vfs, int n, char* out) {
  (void)vfs;
  return inner->xGetLastError(inner, n, out);
}

static int vfs_current_time_int64(sqlite3_vfs* vfs, sqlite3_int64* out) {
  (void)vfs;
  return inner->xCurrentTimeInt64(inner, out);
}

int probe_install(void) {
  if (inner != NULL) return 1;
  inner = sqlite3_vfs_find(NULL);
  /* WAL needs the shared-memory methods of version 2 files and more; every unix VFS has them. */
  if (inner == NULL || inner->iVersion < 2) return 0;
  probe_vfs.iVersion = 2;
  probe_vfs.szOsFile = (int)sizeof(ProbeFile) + inner->szOsFile;
  probe_vfs.mxPathname = inner->mxPathname;
  probe_vfs.zName = "relaycore-test-probe";
  probe_vfs.xOpen = vfs_open;
  probe_vfs.xDelete = vfs_delete;
  probe_vfs.xAccess = vfs_access;
  probe_vfs.xFullPathname = vfs_full_pathname;
  probe_vfs.xDlOpen = vfs_dl_open;
  probe_vfs.xDlError = vfs_dl_error;
  probe_vfs.xDlSym = vfs_dl_sym;
  probe_vfs.xDlClose = vfs_dl_close;
  probe_vfs.xRandomness = vfs_randomness;
  probe_vfs.xSleep = vfs_sleep;
  probe_vfs.xCurrentTime = vfs_current_time;
  probe_vfs.xGetLastError = vfs_get_last_error;
  probe_vfs.xCurrentTimeInt64 = vfs_current_time_int64;
  return sqlite3_vfs_register(&probe_vfs, 1) == SQLITE_OK;
}

static unsigned long locked_value(const unsigned long* counter) {
  unsigned long n;
  pthread_mutex_lock(&mu);
  n = *counter;
  pthread_mutex_unlock(&mu);
  return n;
}

unsigned long probe_wal_syncs(void) { return locked_value(&wal_syncs); }

void probe_count_reads_here(void) {
  pthread_mutex_lock(&mu);
  counting_reads = 1;
  reading_thread = pthread_self();
  reads = 0;
  pthread_mutex_unlock(&mu);
}

unsigned long probe_reads(void) { return locked_value(&reads); }

void probe_hold_next_wal_sync(void) {
  pthread_mutex_lock(&mu);
  hold_next = 1;
  pthread_mutex_unlock(&mu);
}

int probe_wait_held(void) {
  struct timespec deadline;
  int ok;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += 10;
  pthread_mutex_lock(&mu);
  while (!held) {
    if (pthread_cond_timedwait(&cv, &mu, &deadline) == ETIMEDOUT) break;
  }
  ok = held;
  pthread_mutex_unlock(&mu);
  return ok;
}

void probe_release(void) {
  pthread_mutex_lock(&mu);
  held = 0;
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&mu);
}
