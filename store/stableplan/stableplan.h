/*
** The part of SQLite's C interface this package uses, declared here because the driver
** (github.com/mattn/go-sqlite3) compiles SQLite into the program without installing its
** header; the functions are resolved against the driver's copy of SQLite when the
** program is linked.
*/
#ifndef STOREFRONT_STABLEPLAN_H
#define STOREFRONT_STABLEPLAN_H

typedef struct sqlite3 sqlite3;
typedef struct sqlite3_stmt sqlite3_stmt;

int sqlite3_auto_extension(void (*xEntryPoint)(void));
int sqlite3_db_config(sqlite3 *, int op, ...);
int sqlite3_open_v2(const char *filename, sqlite3 **ppDb, int flags, const char *zVfs);
int sqlite3_close(sqlite3 *);
int sqlite3_exec(sqlite3 *, const char *sql, int (*callback)(void *, int, char **, char **), void *, char **errmsg);
int sqlite3_prepare_v2(sqlite3 *db, const char *zSql, int nByte, sqlite3_stmt **ppStmt, const char **pzTail);
int sqlite3_bind_int64(sqlite3_stmt *, int, long long);
int sqlite3_step(sqlite3_stmt *);
int sqlite3_reset(sqlite3_stmt *);
int sqlite3_clear_bindings(sqlite3_stmt *);
int sqlite3_finalize(sqlite3_stmt *);
int sqlite3_stmt_status(sqlite3_stmt *, int op, int resetFlg);

#define SQLITE_OK 0
#define SQLITE_ROW 100
#define SQLITE_DONE 101
#define SQLITE_OPEN_READWRITE 0x00000002
#define SQLITE_OPEN_CREATE 0x00000004
#define SQLITE_OPEN_MEMORY 0x00000080
#define SQLITE_DBCONFIG_ENABLE_QPSG 1007
#define SQLITE_STMTSTATUS_REPREPARE 5

int stableplan_register(void);
int stableplan_probe(int guarantee, int *onAtOpen, int *reprepares);

#endif
