// Package walvfs registers an SQLite VFS that writes a transaction's WAL frames to the
// file in one write when it commits, instead of two writes a frame.
//
// Why: SQLite writes each frame of the WAL as its 24-byte header and then its page, two
// pwrite calls. A purchase's commit is 13 frames, so 26 system calls; on this project's
// machine (2 vCPUs of a virtual machine, ext4) they took 57–60 µs a commit, and one
// pwrite of the same bytes 16–18 µs. That was the largest part of the writer's time per
// purchase outside the signature.
//
// The VFS is SQLite's default one (unix) with the WAL file's writes gathered in memory
// while they append to the log one after another. With synchronous=NORMAL a commit was
// never synced to disk, only handed to the OS; it still is, before COMMIT returns, and
// a write the disk refuses still fails the commit. What keeps other connections (and
// processes) right is that nothing gathered can be pointed to by the wal-index, the
// shared memory through which readers find frames. The rules (walvfs.c marks them):
//
//  1. The write of a commit frame's page (the frame whose header carries the database
//     size) writes out everything gathered, before SQLite publishes the commit in the
//     wal-index, and a failure is the commit's: SQLite rolls it back, and the bytes
//     are dropped, so a commit reported failed never reaches the file later.
//  2. A read of the WAL, its size, a sync, a truncate or a file control on it writes out
//     what was gathered first.
//  3. Only a write that continues the gathered bytes joins them. A write into what
//     SQLite wrote before (a frame overwritten, a commit's checksums rewritten, the
//     frames of a rolled-back transaction written over) goes to the file after them,
//     its error SQLite's to hear; so does anything else out of sequence. The file sees
//     every write in the order SQLite made it.
//  4. The database file's shared-memory locks and barriers, through which every change
//     to the wal-index is ordered, write out what its connection gathered for the WAL.
//     Rule 1 is what makes gathering pay and gives a commit its error; this one is the
//     net if SQLite ever wrote a commit in a way rule 1 doesn't recognise. A barrier
//     can't report an error: what it couldn't write stays gathered for the next call
//     on the WAL to write and report.
//
// Only a WAL whose database file was opened through this VFS gathers; any other file is
// passed through as it is.
package walvfs

/*
#include <stdlib.h>
#include "walvfs.h"
*/
import "C"

import (
	"fmt"
	"sync"

	_ "github.com/mattn/go-sqlite3" // the SQLite this VFS registers with and wraps
)

// Name is the VFS's name, for an SQLite URI's vfs parameter.
const Name = "storefront-wal"

// register registers the VFS once per process: SQLite's list of VFSes is the process's,
// and the VFS keeps its name for as long as the process runs.
var register = sync.OnceValue(func() error {
	if rc := C.walvfs_register(C.CString(Name)); rc != 0 {
		return fmt.Errorf("walvfs: registering the %s VFS: SQLite error %d", Name, int(rc))
	}
	return nil
})

// Register makes the VFS available under Name; calls after the first only report its
// outcome.
func Register() error { return register() }

// Counts reports, since the process started, how many WAL writes SQLite made through
// the VFS that were gathered and how many writes the file was given for them.
func Counts() (gathered, written int64) {
	var g, w C.sqlite3_int64
	C.walvfs_counts(&g, &w)
	return int64(g), int64(w)
}

// setCommitRule turns rule 1 on or off (process-wide), so the tests can try rule 4 alone.
func setCommitRule(on bool) {
	v := C.int(0)
	if on {
		v = 1
	}
	C.walvfs_commit_rule(v)
}
