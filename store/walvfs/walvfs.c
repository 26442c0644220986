/*
** A VFS over SQLite's default one that gathers a transaction's WAL writes and hands
** them to the file as one write when the commit frame is complete. See walvfs.go for
** why and for the rules that keep readers correct; the rules are marked (1)-(4) below.
*/
#include <stdlib.h>
#include <string.h>
#include "walvfs.h"

/* A frame's header in the WAL: 24 bytes, of which bytes 4-7 (big-endian) are the
** database's size in pages after a commit for a commit frame and 0 for any other. */
#define FRAME_HEADER 24
#define WAL_HEADER 32

/* What is gathered at most before it is written anyway: a purchase's commit is about
** 13 frames (54 KiB), a batch of 32 notifies a few hundred KiB. */
#define GATHER_MAX (256 * 1024)

/* The default VFS writes at most 128 KiB a call (it masks a larger length, and reports
** the short write as a full disk): what was gathered goes out in pieces below that. */
#define WRITE_MAX (96 * 1024)

typedef struct WalFile WalFile;
struct WalFile {
  sqlite3_file base;        /* our methods */
  sqlite3_file *real;       /* the default VFS's file, allocated right after this */
  WalFile *wal;             /* a database file: its connection's WAL file, while open */
  WalFile *db;              /* a WAL file: its connection's database file */
  int gathers;              /* a WAL file linked to its database file: writes are gathered */
  unsigned char *buf;       /* gathered bytes, for the file from offset at */
  int len;
  sqlite3_int64 at;
  sqlite3_int64 commitAt;   /* the last write was a commit frame's header: where its
                            ** page goes (0: it wasn't; no page goes at 0) */
  sqlite3_int64 end;        /* the end of what SQLite wrote since the log's header */
};

static sqlite3_vfs *realVfs;
static sqlite3_vfs walVfs;
static sqlite3_int64 nGathered, nWritten;
static int commitRule = 1; /* rule (1) on; the tests turn it off to try rule (4) alone */

/* writeGathered writes out what was gathered. If the file refuses it, the bytes are
** dropped, as a write SQLite made itself would have failed: SQLite hears the error and
** rolls the transaction back, and a commit it was told failed must never reach the
** file later, where recovery after a crash would find it whole. Only a barrier (rule
** (4)), which can't report an error, keeps them (keep) for the next call on the WAL to
** try again and report. */
static int writeGathered(WalFile *p, int keep) {
  int rc = SQLITE_OK, done = 0;
  while (done < p->len && rc == SQLITE_OK) {
    int n = p->len - done < WRITE_MAX ? p->len - done : WRITE_MAX;
    rc = p->real->pMethods->xWrite(p->real, p->buf + done, n, p->at + done);
    __atomic_add_fetch(&nWritten, 1, __ATOMIC_RELAXED);
    done += n;
  }
  if (rc == SQLITE_OK || !keep) p->len = 0;
  return rc;
}

static int flushWal(WalFile *p) { return writeGathered(p, 0); }

static int wClose(sqlite3_file *f) {
  WalFile *p = (WalFile *)f;
  int rc = flushWal(p);
  int rc2;
  if (p->db) p->db->wal = 0;
  if (p->wal) { /* not expected (SQLite closes the WAL first), but then without gathering */
    flushWal(p->wal);
    p->wal->db = 0;
    p->wal->gathers = 0;
  }
  free(p->buf);
  p->buf = 0;
  rc2 = p->real->pMethods->xClose(p->real);
  return rc != SQLITE_OK ? rc : rc2;
}

/* (2) Anything that reads or measures the WAL through this file sees what was
** gathered: it is written first. */
static int wRead(sqlite3_file *f, void *z, int n, sqlite3_int64 off) {
  WalFile *p = (WalFile *)f;
  int rc = flushWal(p);
  if (rc != SQLITE_OK) return rc;
  return p->real->pMethods->xRead(p->real, z, n, off);
}

static int wWrite(sqlite3_file *f, const void *z, int n, sqlite3_int64 off) {
  WalFile *p = (WalFile *)f;
  const unsigned char *b = (const unsigned char *)z;
  int rc;
  if (!p->gathers) {
    if ((rc = flushWal(p)) != SQLITE_OK) return rc; /* bytes of a WAL unlinked at close */
    return p->real->pMethods->xWrite(p->real, z, n, off);
  }
  if (off == 0) p->end = 0; /* the log's header: it starts again */
  /* (3) A write into what SQLite wrote before (a frame overwritten, the checksums of a
  ** commit rewritten, the frames of a rolled-back transaction written over) is not
  ** gathered: what was gathered goes first, then the write itself, whose error is
  ** SQLite's to hear. Nor is a commit frame's header rewritten there taken for one
  ** being appended. */
  if (off < p->end) {
    p->commitAt = 0;
    if ((rc = flushWal(p)) != SQLITE_OK) return rc;
    return p->real->pMethods->xWrite(p->real, z, n, off);
  }
  p->end = off + n;
  /* Only a write that continues the gathered bytes joins them; any other goes after
  ** them, so the file sees every write in the order SQLite made it. */
  if (p->len > 0 && (off != p->at + p->len || p->len + n > GATHER_MAX)) {
    if ((rc = flushWal(p)) != SQLITE_OK) return rc;
  }
  if (n > GATHER_MAX) return p->real->pMethods->xWrite(p->real, z, n, off);
  if (!p->buf && !(p->buf = malloc(GATHER_MAX))) {
    return p->real->pMethods->xWrite(p->real, z, n, off);
  }
  if (p->len == 0) p->at = off;
  memcpy(p->buf + p->len, z, n);
  p->len += n;
  __atomic_add_fetch(&nGathered, 1, __ATOMIC_RELAXED);
  /* (1) The commit frame's page completes the transaction in the log: written out
  ** now, before SQLite publishes the new frames to readers in the wal-index, and any
  ** error is the commit's. */
  if (p->commitAt == off && commitRule) {
    p->commitAt = 0;
    return flushWal(p);
  }
  p->commitAt = 0;
  if (n == FRAME_HEADER && off >= WAL_HEADER && (b[4] | b[5] | b[6] | b[7]) != 0) {
    p->commitAt = off + n;
  }
  return SQLITE_OK;
}

static int wTruncate(sqlite3_file *f, sqlite3_int64 size) {
  WalFile *p = (WalFile *)f;
  int rc = flushWal(p);
  if (rc != SQLITE_OK) return rc;
  if (size < p->end) p->end = size;
  return p->real->pMethods->xTruncate(p->real, size);
}

static int wSync(sqlite3_file *f, int flags) {
  WalFile *p = (WalFile *)f;
  int rc = flushWal(p);
  if (rc != SQLITE_OK) return rc;
  return p->real->pMethods->xSync(p->real, flags);
}

static int wFileSize(sqlite3_file *f, sqlite3_int64 *size) {
  WalFile *p = (WalFile *)f;
  int rc = flushWal(p);
  if (rc != SQLITE_OK) return rc;
  return p->real->pMethods->xFileSize(p->real, size);
}

static int wLock(sqlite3_file *f, int lock) {
  WalFile *p = (WalFile *)f;
  return p->real->pMethods->xLock(p->real, lock);
}

static int wUnlock(sqlite3_file *f, int lock) {
  WalFile *p = (WalFile *)f;
  return p->real->pMethods->xUnlock(p->real, lock);
}

static int wCheckReservedLock(sqlite3_file *f, int *out) {
  WalFile *p = (WalFile *)f;
  return p->real->pMethods->xCheckReservedLock(p->real, out);
}

static int wFileControl(sqlite3_file *f, int op, void *arg) {
  WalFile *p = (WalFile *)f;
  int rc = flushWal(p);
  if (rc != SQLITE_OK) return rc;
  return p->real->pMethods->xFileControl(p->real, op, arg);
}

static int wSectorSize(sqlite3_file *f) {
  WalFile *p = (WalFile *)f;
  return p->real->pMethods->xSectorSize(p->real);
}

static int wDeviceCharacteristics(sqlite3_file *f) {
  WalFile *p = (WalFile *)f;
  return p->real->pMethods->xDeviceCharacteristics(p->real);
}

/* (4) The wal-index (shared memory) is reached through the database file. Before a
** lock changes or a barrier orders its writes, whatever its connection gathered for
** the WAL is written: nothing the index can point readers to is left unwritten even
** if SQLite wrote a commit in a way rule (1) doesn't recognise. A barrier can't report
** an error: the bytes stay gathered, and the next call on the WAL file tries again and
** reports it. Rule (1) is what gives a commit its error; this is the safety net. */
static void flushLinked(WalFile *p) {
  if (p->wal && p->wal->len > 0) writeGathered(p->wal, 1);
}

static int wShmMap(sqlite3_file *f, int pg, int pgsz, int extend, void volatile **pp) {
  WalFile *p = (WalFile *)f;
  return p->real->pMethods->xShmMap(p->real, pg, pgsz, extend, pp);
}

static int wShmLock(sqlite3_file *f, int offset, int n, int flags) {
  WalFile *p = (WalFile *)f;
  flushLinked(p);
  return p->real->pMethods->xShmLock(p->real, offset, n, flags);
}

static void wShmBarrier(sqlite3_file *f) {
  WalFile *p = (WalFile *)f;
  flushLinked(p);
  p->real->pMethods->xShmBarrier(p->real);
}

static int wShmUnmap(sqlite3_file *f, int deleteFlag) {
  WalFile *p = (WalFile *)f;
  return p->real->pMethods->xShmUnmap(p->real, deleteFlag);
}

static int wFetch(sqlite3_file *f, sqlite3_int64 off, int n, void **pp) {
  WalFile *p = (WalFile *)f;
  return p->real->pMethods->xFetch(p->real, off, n, pp);
}

static int wUnfetch(sqlite3_file *f, sqlite3_int64 off, void *ptr) {
  WalFile *p = (WalFile *)f;
  return p->real->pMethods->xUnfetch(p->real, off, ptr);
}

/* One table per version of the methods the default VFS's file offers: a file must
** not claim methods (shared memory, memory mapping) its real file lacks. */
#define WAL_METHODS(v) { v, wClose, wRead, wWrite, wTruncate, wSync, wFileSize, wLock, \
    wUnlock, wCheckReservedLock, wFileControl, wSectorSize, wDeviceCharacteristics, \
    wShmMap, wShmLock, wShmBarrier, wShmUnmap, wFetch, wUnfetch }
static const sqlite3_io_methods methods1 = WAL_METHODS(1);
static const sqlite3_io_methods methods2 = WAL_METHODS(2);
static const sqlite3_io_methods methods3 = WAL_METHODS(3);

static int isOurs(const sqlite3_file *f) {
  return f && (f->pMethods == &methods1 || f->pMethods == &methods2 || f->pMethods == &methods3);
}

static int wOpen(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *f, int flags, int *outFlags) {
  WalFile *p = (WalFile *)f;
  int rc, v;
  (void)vfs;
  memset(p, 0, sizeof(*p));
  p->real = (sqlite3_file *)&p[1];
  rc = realVfs->xOpen(realVfs, name, p->real, flags, outFlags);
  if (!p->real->pMethods) {
    p->base.pMethods = 0;
    return rc;
  }
  v = p->real->pMethods->iVersion;
  p->base.pMethods = v >= 3 ? &methods3 : v == 2 ? &methods2 : &methods1;
  if (rc == SQLITE_OK && (flags & SQLITE_OPEN_WAL) && name) {
    /* Gathering needs rule (4)'s safety net: only a WAL whose database file is ours. */
    sqlite3_file *db = sqlite3_database_file_object(name);
    if (isOurs(db) && v >= 2) {
      p->db = (WalFile *)db;
      p->db->wal = p;
      p->gathers = 1;
    }
  }
  return rc;
}

/* walvfs_register registers the VFS as name over the default VFS, once (the Go side
** calls it under a sync.Once). It does not become the default. Only opening a file is
** the VFS's own: every other method is the default VFS's, called as it is (unix's
** ignore the VFS object they are handed, and its pAppData is copied with them). */
int walvfs_register(const char *name) {
  realVfs = sqlite3_vfs_find(0);
  if (!realVfs) return SQLITE_ERROR;
  walVfs = *realVfs;
  if (walVfs.iVersion > 3) walVfs.iVersion = 3; /* the fields this file declares */
  walVfs.pNext = 0;
  walVfs.zName = name;
  walVfs.szOsFile = (int)sizeof(WalFile) + realVfs->szOsFile;
  walVfs.xOpen = wOpen;
  return sqlite3_vfs_register(&walVfs, 0);
}

/* walvfs_counts reports the WAL writes gathered and the writes the file was given. */
void walvfs_counts(sqlite3_int64 *gathered, sqlite3_int64 *written) {
  *gathered = __atomic_load_n(&nGathered, __ATOMIC_RELAXED);
  *written = __atomic_load_n(&nWritten, __ATOMIC_RELAXED);
}

/* walvfs_commit_rule turns rule (1) on or off, for the tests of rule (4). */
void walvfs_commit_rule(int on) { commitRule = on; }
