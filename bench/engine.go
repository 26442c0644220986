package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver
	"github.com/jmoiron/sqlx"

	"storefront/store"
)

// The engines the bench runs the shop on.
const (
	engineSQLite   = "sqlite"
	enginePostgres = "postgres"
)

func engineLabel(engine string) string {
	if engine == enginePostgres {
		return "PostgreSQL"
	}
	return "SQLite"
}

// benchAppName is the application_name of the bench's own connections to PostgreSQL
// (seeding, checks, the schema's creation and removal): not the shop's, so they are not
// billed to it.
const benchAppName = "storefront-bench"

// pgLoopback refuses a PostgreSQL URL whose server is not on this machine's loopback:
// the bench loads only 127.0.0.1, and bills the server's CPU by its processes here.
func pgLoopback(raw string) error {
	if !store.IsPostgres(raw) {
		return fmt.Errorf("not a postgres:// URL")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	hosts := []string{u.Hostname()}
	if h := u.Query().Get("host"); h != "" {
		hosts = append(hosts, strings.Split(h, ",")...)
	}
	for _, h := range hosts {
		if h == "localhost" || strings.HasPrefix(h, "/") { // a Unix socket's directory is local too
			continue
		}
		if ip := net.ParseIP(h); ip == nil || !ip.IsLoopback() {
			return fmt.Errorf("the server %q is not on loopback: the bench runs against 127.0.0.1 only", h)
		}
	}
	return nil
}

// withParams returns the postgres:// URL raw with the query parameters set (pgx sends
// those it does not know itself, such as search_path and application_name, to the
// server as the connection's settings).
func withParams(raw string, kv ...string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	q := u.Query()
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// benchDSN is the shop's DSN as the bench itself connects with: the same database,
// under the bench's application_name on PostgreSQL.
func benchDSN(dsn string) string {
	if !store.IsPostgres(dsn) {
		return dsn
	}
	d, err := withParams(dsn, "application_name", benchAppName)
	if err != nil {
		return dsn // store.Open or sqlx.Open reports the bad URL
	}
	return d
}

// redactURL hides the password of a database URL for printing.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// pgTarget is the fresh schema one PostgreSQL run uses, on the server at
// TEST_POSTGRES_URL: the shop connects with search_path set to it (as the store's tests
// do, see store/storetest) and an application_name of its own, by which its server
// processes are found.
type pgTarget struct {
	admin   *sqlx.DB // the bench's connection: the schema, the server's processes
	schema  string
	shopDSN string
	appName string
	server  string // version and the settings that decide what a commit costs
}

func newPGTarget(ctx context.Context, base string) (*pgTarget, error) {
	adminDSN, err := withParams(base, "application_name", benchAppName)
	if err != nil {
		return nil, err
	}
	admin, err := sqlx.Open("pgx", adminDSN)
	if err != nil {
		return nil, err
	}
	admin.SetMaxOpenConns(1)
	t := &pgTarget{admin: admin, schema: fmt.Sprintf("bench_%d_%d", os.Getpid(), time.Now().Unix())}
	t.appName = "storefront-bench-shop-" + t.schema
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(cctx, `CREATE SCHEMA `+t.schema); err != nil {
		admin.Close()
		return nil, fmt.Errorf("creating schema %s on %s: %w", t.schema, redactURL(base), err)
	}
	if t.shopDSN, err = withParams(base, "search_path", t.schema, "application_name", t.appName); err != nil {
		t.drop()
		return nil, err
	}
	var set struct {
		Version string `db:"version"`
		Fsync   string `db:"fsync"`
		Sync    string `db:"sync"`
	}
	if err := admin.GetContext(cctx, &set, `SELECT current_setting('server_version') AS version,
		current_setting('fsync') AS fsync, current_setting('synchronous_commit') AS sync`); err == nil {
		t.server = fmt.Sprintf("PostgreSQL %s at %s, fsync=%s, synchronous_commit=%s", set.Version, redactURL(base),
			set.Fsync, set.Sync)
	}
	return t, nil
}

// drop removes the schema and everything in it, and closes the connection.
func (t *pgTarget) drop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, err := t.admin.ExecContext(ctx, `DROP SCHEMA `+t.schema+` CASCADE`)
	return errors.Join(err, t.admin.Close())
}

func (t *pgTarget) close() { t.admin.Close() }

// sizeMB is the size of the schema's tables with their indexes and TOAST.
func (t *pgTarget) sizeMB(ctx context.Context) (float64, error) {
	var n int64
	err := t.admin.GetContext(ctx, &n, `SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'r'`, t.schema)
	return float64(n) / (1 << 20), err
}

// backendCPU is the CPU time so far of each server process serving the shop's
// connections, by pid: PostgreSQL runs a process per connection, and the shop's pool
// keeps its connections open, so the difference of two samples is what the server
// spent for the shop in between (a connection closed in between is not counted). ok is
// false when the processes cannot be read here (a server in another pid namespace).
func (t *pgTarget) backendCPU(ctx context.Context) (cpu map[int]time.Duration, ok bool) {
	var pids []int
	if err := t.admin.SelectContext(ctx, &pids, `SELECT pid FROM pg_stat_activity WHERE application_name = $1`,
		t.appName); err != nil {
		return nil, false
	}
	cpu = make(map[int]time.Duration, len(pids))
	for _, pid := range pids {
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err != nil || strings.TrimSpace(string(comm)) != "postgres" {
			return nil, false
		}
		d, err := procCPU(pid)
		if err != nil {
			return nil, false
		}
		cpu[pid] = d
	}
	return cpu, true
}

// migrateFigure is what the shop's migrate-to took to copy the preseeded SQLite file
// into the fresh schema.
type migrateFigure struct {
	Rows int64 `json:"rows"`
	// Seconds is the command's wall time: the process, the schema's creation, the COPY of
	// every table, the counts checked and the commit.
	Seconds    float64 `json:"seconds"`
	RowsPerSec float64 `json:"rows_per_sec"`
	Said       string  `json:"said"` // migrate-to's own summary line
	DBMB       float64 `json:"schema_mb"`
	log        string  // where its output was saved, in the temp dir
}

var migrateDone = regexp.MustCompile(`(?m)^done: (\d+) rows in .*$`)

// migrateTo runs the built shop's `migrate-to dsn` with DB=sqlitePath, as an operator
// would, and times it. ADDR is a free port, so the check for a running shop looks where
// none is (the bench's shop starts after it).
func migrateTo(ctx context.Context, bin, dir, sqlitePath, dsn string) (*migrateFigure, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin, "migrate-to", dsn)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "DB="+sqlitePath, "ADDR=127.0.0.1:"+strconv.Itoa(port))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err = cmd.Run()
	took := time.Since(start)
	m := &migrateFigure{Seconds: took.Seconds(), log: filepath.Join(dir, "migrate-to.log")}
	if werr := os.WriteFile(m.log, out.Bytes(), 0o644); werr != nil {
		logf("writing %s: %v", m.log, werr)
	}
	if err != nil {
		return nil, fmt.Errorf("migrate-to: %w: %s", err, strings.TrimSpace(out.String()))
	}
	line := migrateDone.FindStringSubmatch(out.String())
	if line == nil {
		return nil, fmt.Errorf("migrate-to said no \"done: N rows\" line: %s", strings.TrimSpace(out.String()))
	}
	m.Said = line[0]
	m.Rows, _ = strconv.ParseInt(line[1], 10, 64)
	m.RowsPerSec = float64(m.Rows) / took.Seconds()
	return m, nil
}
