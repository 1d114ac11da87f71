/* A SQLite VFS for the C API tests, wrapping the default one, through which a test sees what the
 * relay's storage does on disk: it counts the syncs of WAL files and the reads made on one
 * thread, and can hold a WAL sync (and so the commit making it) until the test releases it.
 * The relay is linked against the same libsqlite3, so it uses the probe once it is the default;
 * relaycore's writer wraps whichever VFS is the default when it first opens a database, so
 * probe_install() runs before any relay opens. */
#ifndef RELAYCORE_SQLITE_PROBE_H
#define RELAYCORE_SQLITE_PROBE_H

/* Makes the probe the default VFS; 0 when SQLite refused it. */
int probe_install(void);

/* WAL syncs so far, on every thread. */
unsigned long probe_wal_syncs(void);

/* From now on, reads of database and WAL files are counted on the calling thread only, from 0. */
void probe_count_reads_here(void);
/* Reads counted since probe_count_reads_here(). */
unsigned long probe_reads(void);

/* The next WAL sync waits in the probe until probe_release(). */
void probe_hold_next_wal_sync(void);
/* Waits up to 10 s for a sync to be held; 1 when one is. */
int probe_wait_held(void);
/* Lets the held sync go on. */
void probe_release(void);

#endif
