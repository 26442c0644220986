// Package stableplan gives every SQLite connection the program opens the query planner
// stability guarantee (SQLITE_DBCONFIG_ENABLE_QPSG): a statement's plan never depends on
// the values bound to it.
//
// Why: the driver keeps each connection's prepared statements (the store's DSN sets
// _stmt_cache_size), yet SQLite prepared most of them again on every use. For nearly
// every statement with a bound value the planner notes that the value might give a
// better plan (an "x = ?" whose selectivity it judges from the value, a bound LIMIT).
// Such a statement expires when its bindings are cleared, which the driver does each
// time it takes a statement back (one with a bound LIMIT, also whenever another value is
// bound), and its next step prepares it again from the SQL text, dropping the driver's
// column metadata with it.
// A shopper's page of orders spent half of SQLite's time parsing and planning the same
// query. Measured on a 1,000,000-order file: the store's ListOrders 84 → 58 µs a call,
// one row by an index 12 → 5.5 µs.
//
// What it costs: a condition that matched a partial index only through its bound value
// (x = ? bound to the index's own constant) no longer does. The store's queries write
// those conditions into the SQL (status = 'unpaid', trade_no <> ”) already.
//
// SQLite gives the guarantee through an auto-extension, which it runs on every
// connection opened in the process after Register, whoever opens it (the emulator's
// too).
package stableplan

/*
#include "stableplan.h"
*/
import "C"

import (
	"fmt"
	"sync"

	_ "github.com/mattn/go-sqlite3" // the SQLite whose connections this configures
)

// register adds the auto-extension once per process: SQLite's list of them is the
// process's.
var register = sync.OnceValue(func() error {
	if rc := C.stableplan_register(); rc != 0 {
		return fmt.Errorf("stableplan: registering the auto-extension: SQLite error %d", int(rc))
	}
	return nil
})

// Register gives every SQLite connection opened after it the stability guarantee.
func Register() error { return register() }

// probe opens a connection of its own in SQLite and reports whether it came with the
// guarantee, and how often a statement used three times as the driver's cache uses it
// was prepared again with the guarantee on (guarantee) or off.
func probe(guarantee bool) (onAtOpen bool, reprepares int, err error) {
	var on, n C.int
	g := C.int(0)
	if guarantee {
		g = 1
	}
	if rc := C.stableplan_probe(g, &on, &n); rc != 0 {
		return false, 0, fmt.Errorf("stableplan: probe: SQLite error %d", int(rc))
	}
	return on == 1, int(n), nil
}
