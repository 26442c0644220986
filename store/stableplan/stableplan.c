#include "stableplan.h"

/* stable is the auto-extension: SQLite calls it for every connection it opens, before
** the connection is handed to its opener. */
static int stable(sqlite3 *db, char **errMsg, const void *api) {
  (void)errMsg;
  (void)api;
  return sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_QPSG, 1, (int *)0);
}

/* stableplan_register adds the auto-extension (SQLite adds a given one only once). */
int stableplan_register(void) {
  return sqlite3_auto_extension((void (*)(void))stable);
}

/* stableplan_probe is the tests' look at SQLite itself, without the driver. It opens an
** in-memory database, reports in *onAtOpen whether the connection came with the
** guarantee, sets the guarantee to guarantee, and runs one cached statement three times
** the way the driver's statement cache does (bind, step, reset, clear the bindings);
** *reprepares is how often SQLite prepared it again. */
int stableplan_probe(int guarantee, int *onAtOpen, int *reprepares) {
  sqlite3 *db = 0;
  sqlite3_stmt *st = 0;
  int rc = sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_MEMORY, 0);
  if (rc != SQLITE_OK) goto out;
  *onAtOpen = -1;
  if ((rc = sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_QPSG, -1, onAtOpen)) != SQLITE_OK) goto out;
  if ((rc = sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_QPSG, guarantee, (int *)0)) != SQLITE_OK) goto out;
  rc = sqlite3_exec(db, "CREATE TABLE t (a INTEGER, b INTEGER); CREATE INDEX t_a ON t (a);"
                        "INSERT INTO t VALUES (1, 1), (2, 2), (3, 3)", 0, 0, 0);
  if (rc != SQLITE_OK) goto out;
  /* The shape of most of the shop's reads: an equality on a bound value, a bound LIMIT. */
  rc = sqlite3_prepare_v2(db, "SELECT b FROM t WHERE a = ? AND b = ? ORDER BY a LIMIT ?", -1, &st, 0);
  if (rc != SQLITE_OK) goto out;
  for (int i = 1; i <= 3; i++) {
    sqlite3_bind_int64(st, 1, i);
    sqlite3_bind_int64(st, 2, i);
    sqlite3_bind_int64(st, 3, 10);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    }
    if (rc != SQLITE_DONE) goto out;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
  }
  *reprepares = sqlite3_stmt_status(st, SQLITE_STMTSTATUS_REPREPARE, 0);
  rc = SQLITE_OK;
out:
  if (st) sqlite3_finalize(st);
  if (db) sqlite3_close(db);
  return rc;
}
