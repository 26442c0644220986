// Package walfault makes this process's writes to SQLite WAL files fail on demand, for
// the tests of walvfs: it replaces the pwrite of SQLite's default VFS (through the
// VFS's own xSetSystemCall), so the refusal comes from where a full or failing disk's
// would, beneath walvfs. Tests only; nothing else imports it.
package walfault

/*
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>
#include "../../walvfs.h"

typedef ssize_t (*pwriteFn)(int, const void *, size_t, off_t);
static pwriteFn realPwrite;
static int skip, fail, seen;

static int isWAL(int fd) {
  char link[64], path[4096];
  ssize_t n;
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  n = readlink(link, path, sizeof path - 1);
  return n > 4 && memcmp(path + n - 4, "-wal", 4) == 0;
}

static ssize_t faultyPwrite(int fd, const void *b, size_t n, off_t off) {
  if (isWAL(fd)) {
    seen++;
    if (fail > 0) {
      if (skip > 0) {
        skip--;
      } else {
        fail--;
        errno = EIO;
        return -1;
      }
    }
  }
  return realPwrite(fd, b, n, off);
}

static int walfault_install(void) {
  sqlite3_vfs *dflt = sqlite3_vfs_find("unix");
  if (!dflt || dflt->iVersion < 3) return 1;
  if (realPwrite) return 0;
  realPwrite = (pwriteFn)dflt->xGetSystemCall(dflt, "pwrite");
  if (!realPwrite) return 2;
  return dflt->xSetSystemCall(dflt, "pwrite", (sqlite3_syscall_ptr)faultyPwrite);
}

static void walfault_arm(int s, int f) { skip = s; fail = f; }
static int walfault_seen(void) { return seen; }
*/
import "C"

import (
	"fmt"

	_ "github.com/mattn/go-sqlite3" // the SQLite whose default VFS this hooks
)

// Install replaces the default VFS's pwrite; it is idempotent. Open no connection
// before it: SQLite reads the pointer as it calls it, but a test should know its
// writes all went through the hook.
func Install() error {
	if rc := C.walfault_install(); rc != 0 {
		return fmt.Errorf("walfault: hooking the unix VFS's pwrite: %d", int(rc))
	}
	return nil
}

// Fail lets the next skip writes to WAL files through and then fails count of them
// with EIO; Fail(0, 0) stops failing.
func Fail(skip, count int) { C.walfault_arm(C.int(skip), C.int(count)) }

// Writes is the number of writes to WAL files since Install.
func Writes() int { return int(C.walfault_seen()) }
