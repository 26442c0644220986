// Command bench builds the shop, runs it as a separate process on a loopback port,
// seeds it, and drives fixed-worker load at it (loadgen.go), one scenario at a time,
// printing a table against the performance targets and writing a JSON report.
//
//	go run ./bench                     full run (5s per scenario, 1,000,000 orders in the back office)
//	go run ./bench -smoke              CI: ~1s per scenario, 20,000 orders; fails only on errors
//	go run ./bench -pprof              also save a CPU profile of the shop per scenario
//	go run ./bench -db both            SQLite, then PostgreSQL (the default when TEST_POSTGRES_URL is set)
//
// On PostgreSQL (TEST_POSTGRES_URL, a server on loopback where the user may create a
// schema) the shop runs in a fresh schema, filled from a preseeded SQLite file by the
// shop's own migrate-to, and the schema is dropped at the end (unless -keep). The
// engines run one after the other, each with its own shop process and temp files.
//
// It never talks to anything but 127.0.0.1.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

type options struct {
	duration time.Duration
	workers  uint64
	smoke    bool
	jsonPath string
	pprof    bool
	keep     bool
	genProcs int
	// adminOrders is the size of the order history seeded before the shop starts.
	adminOrders  int
	adminWorkers uint64
	// engines are the engines to run, in order; pgURL is TEST_POSTGRES_URL, and
	// pgSkipped why PostgreSQL does not run when it does not.
	engines   []string
	pgURL     string
	pgSkipped string
}

func main() {
	var o options
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "load duration per scenario")
	flag.Uint64Var(&o.workers, "workers", 32, "fixed number of concurrent workers, one connection each")
	flag.BoolVar(&o.smoke, "smoke", false, "CI mode: ~1s per scenario, few orders; exit non-zero only on errors")
	flag.StringVar(&o.jsonPath, "json", "bench-results.json", "path of the JSON report")
	flag.BoolVar(&o.pprof, "pprof", false, "enable the shop's PPROF_ADDR and save a CPU profile per scenario (keeps the temp dir)")
	flag.BoolVar(&o.keep, "keep", false, "keep the temp dir (shop binary, databases, log)")
	flag.IntVar(&o.genProcs, "gen-procs", 0, "GOMAXPROCS of the load generator while it attacks; 0 = 1 for the purchase scenario, all cores for the others")
	flag.IntVar(&o.adminOrders, "admin-orders", 0, "orders seeded into the database before the shop starts, for the back office; 0 = 1,000,000 (smoke: 20,000)")
	flag.Uint64Var(&o.adminWorkers, "admin-workers", 4, "fixed number of workers (operators) for the back-office pages")
	o.pgURL = strings.TrimSpace(os.Getenv("TEST_POSTGRES_URL"))
	dbDefault := "sqlite"
	if o.pgURL != "" {
		dbDefault = "both"
	}
	db := flag.String("db", dbDefault, "engines to run: sqlite, postgres (at TEST_POSTGRES_URL) or both, one after the other")
	flag.Parse()
	switch *db {
	case "sqlite":
		o.engines = []string{engineSQLite}
		if o.pgURL == "" {
			o.pgSkipped = "TEST_POSTGRES_URL is not set (a postgres:// URL of a server on loopback where the user " +
				"may CREATE SCHEMA; bash .ci/postgres start makes one)"
		} else {
			o.pgSkipped = "-db sqlite was given"
		}
	case "postgres":
		o.engines = []string{enginePostgres}
	case "both":
		o.engines = []string{engineSQLite, enginePostgres}
	default:
		fmt.Fprintf(os.Stderr, "bench: -db is sqlite, postgres or both, not %q\n", *db)
		os.Exit(2)
	}
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "db" })
	if o.pgURL != "" && !explicit {
		if err := pgLoopback(o.pgURL); err != nil { // the default: skipped, not refused
			o.engines, o.pgSkipped, *db = []string{engineSQLite}, "TEST_POSTGRES_URL: "+err.Error(), "sqlite"
		}
	}
	if *db != "sqlite" {
		if o.pgURL == "" {
			fmt.Fprintf(os.Stderr, "bench: -db %s needs TEST_POSTGRES_URL (postgres://user@127.0.0.1:port/db, a user who may CREATE SCHEMA)\n", *db)
			os.Exit(2)
		}
		if err := pgLoopback(o.pgURL); err != nil {
			fmt.Fprintln(os.Stderr, "bench: TEST_POSTGRES_URL:", err)
			os.Exit(2)
		}
	}
	if o.smoke {
		o.duration = time.Second
	}
	if o.adminOrders == 0 {
		o.adminOrders = 1_000_000
		if o.smoke {
			o.adminOrders = 20_000
		}
	}
	if o.workers == 0 || o.adminWorkers == 0 || o.duration <= 0 || o.genProcs < 0 || o.adminOrders < 2000 {
		fmt.Fprintln(os.Stderr, "bench: -workers, -admin-workers and -duration must be positive, -gen-procs not negative, -admin-orders at least 2000")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, o)
	stop()
	os.Exit(code)
}

// run returns the exit code; every resource it starts (the shop processes and the
// PostgreSQL schema above all) is released before it returns, whatever happens.
func run(ctx context.Context, o options) int {
	start := time.Now()
	loadStart := loadAvg() // before the build and the seeding add their own load
	root, err := moduleRoot()
	if err != nil {
		return fail(err)
	}
	tmp, err := os.MkdirTemp("", "storefront-bench-")
	if err != nil {
		return fail(err)
	}
	keep := o.keep || o.pprof // also set on failure, so the shop's log can be read
	defer func() {
		if keep {
			fmt.Printf("temp dir kept: %s\n", tmp)
			return
		}
		os.RemoveAll(tmp)
	}()

	logf("building the shop (%s)", root)
	bin := filepath.Join(tmp, "shop")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	build.Dir, build.Stdout, build.Stderr = root, os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fail(fmt.Errorf("go build: %w", err))
	}

	full := &fullReport{Machine: machine(), Duration: o.duration.String(), Workers: o.workers, Smoke: o.smoke,
		PostgresSkipped: o.pgSkipped, LoadAvgStart: loadStart}
	var runErr error
	var failedLog string
	for _, engine := range o.engines {
		dir := filepath.Join(tmp, engine)
		if err := os.Mkdir(dir, 0o755); err != nil {
			return fail(err)
		}
		logf("=== %s ===", engineLabel(engine))
		rep, logPath, err := runEngine(ctx, o, engine, root, bin, dir, full.engine(engineSQLite))
		if rep != nil {
			full.Engines = append(full.Engines, rep)
			full.TotalErrors += rep.TotalErrors
		}
		if err != nil {
			runErr, failedLog = fmt.Errorf("%s: %w", engineLabel(engine), err), logPath
			break
		}
		if rep.TotalErrors > 0 && failedLog == "" {
			failedLog = logPath
		}
	}
	full.compare()
	full.LoadAvgEnd = loadAvg()
	if len(full.Engines) > 0 {
		full.WallSeconds = time.Since(start).Seconds()
		printTable(os.Stdout, full)
		if werr := writeJSON(o.jsonPath, full); werr != nil {
			fmt.Fprintln(os.Stderr, "bench: writing JSON:", werr)
		} else {
			fmt.Printf("wrote %s (wall %.1fs)\n", o.jsonPath, full.WallSeconds)
		}
	}
	if runErr != nil {
		keep = true
		if failedLog != "" {
			fmt.Fprintf(os.Stderr, "bench: %v (shop log: %s)\n", runErr, failedLog)
		} else {
			fmt.Fprintf(os.Stderr, "bench: %v\n", runErr)
		}
		return 1
	}
	if full.TotalErrors > 0 {
		keep = true
		fmt.Fprintf(os.Stderr, "bench: %d errors (shop log: %s)\n", full.TotalErrors, failedLog)
		return 1
	}
	if misses := full.missed(); len(misses) > 0 {
		fmt.Printf("targets missed (reported, not fatal): %s\n", strings.Join(misses, ", "))
	}
	return 0
}

// runEngine runs every scenario on one engine in dir: it preseeds the SQLite file there,
// on PostgreSQL moves it into a fresh schema with the shop's migrate-to (timed), starts
// the shop on the engine's database, runs the scenarios and stops the shop (and drops
// the schema, unless -keep). It returns the engine's report (possibly partial) and the
// shop's log.
func runEngine(ctx context.Context, o options, engine, root, bin, dir string, reference *report) (*report, string, error) {
	loadStart := loadAvg()
	// The back office's history goes straight into the file before the shop opens it.
	logf("seeding %d orders into %s", o.adminOrders, dbFile(dir))
	bulk, err := preseed(ctx, root, dbFile(dir), o.adminOrders, time.Now())
	if err != nil {
		return nil, "", err
	}
	logf("seeded %d users, %d orders, %d refunds (%.1fs, database %.0f MB)", bulk.Users, bulk.Orders, bulk.Refunds,
		bulk.SeedSeconds, bulk.DBMB)

	dsn := dbFile(dir)
	var pg *pgTarget
	var mig *migrateFigure
	if engine == enginePostgres {
		if pg, err = newPGTarget(ctx, o.pgURL); err != nil {
			return nil, "", err
		}
		defer func() {
			if o.keep {
				fmt.Printf("PostgreSQL schema kept: %s\n", pg.schema)
				pg.close()
				return
			}
			if err := pg.drop(); err != nil {
				logf("dropping schema %s: %v", pg.schema, err)
			}
		}()
		logf("PostgreSQL schema %s at %s", pg.schema, redactURL(o.pgURL))
		dsn = pg.shopDSN
		if mig, err = migrateTo(ctx, bin, dir, dbFile(dir), dsn); err != nil {
			return nil, "", err
		}
		if mb, err := pg.sizeMB(ctx); err == nil {
			mig.DBMB = mb
		}
		logf("migrate-to: %d rows in %.2fs (%.0f rows/s), schema %.0f MB", mig.Rows, mig.Seconds, mig.RowsPerSec, mig.DBMB)
	}

	// The seeding left hundreds of MB in the page cache for the kernel to write back,
	// on the cores the scenarios measure: the first ones of a 1,000,000-order run saw a
	// third of a core busy elsewhere. Written out now, before any load.
	t0 := time.Now()
	syscall.Sync()
	logf("synced the seeded files to disk (%.1fs)", time.Since(t0).Seconds())

	srv, err := startShop(ctx, bin, dir, dsn, o.pprof)
	if err != nil {
		return nil, filepath.Join(dir, "shop.log"), err
	}
	defer srv.stop()
	logf("shop pid %d on %s (%s)", srv.cmd.Process.Pid, srv.base, engineLabel(engine))

	b := &bench{o: o, srv: srv, root: root, tmp: dir, bulk: bulk, engine: engine, pg: pg, migrated: mig}
	if engine == enginePostgres {
		b.reference = reference
	}
	rep, err := b.runAll(ctx, loadStart)
	return rep, srv.logPath, err
}

func fail(err error) int {
	fmt.Fprintln(os.Stderr, "bench:", err)
	return 1
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside a Go module: run from the storefront module")
	}
	return filepath.Dir(gomod), nil
}

// freePort asks the kernel for an unused loopback port.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// dbFile is the shop's database in the temp dir.
func dbFile(tmp string) string { return filepath.Join(tmp, "shop.db") }

// shop is the server process under test.
type shop struct {
	cmd       *exec.Cmd
	base      string // http://127.0.0.1:port
	pprofBase string // "" unless -pprof
	dsn       string // the shop's DB: the SQLite file's path, or a postgres:// URL
	keysDir   string
	logPath   string
	logFile   *os.File
	exited    chan struct{}
	once      sync.Once
}

// startShop starts the shop in tmp on the database dsn (an SQLite path or a postgres://
// URL) and waits until it answers.
func startShop(ctx context.Context, bin, tmp, dsn string, pprof bool) (*shop, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	s := &shop{base: "http://" + addr, dsn: dsn, keysDir: filepath.Join(tmp, "keys"),
		logPath: filepath.Join(tmp, "shop.log"), exited: make(chan struct{})}
	env := append(os.Environ(),
		"ADDR="+addr, "PUBLIC_URL=http://"+addr, "DB="+s.dsn, "KEYS_DIR="+s.keysDir,
		"SANDBOX_DB="+filepath.Join(tmp, "sandbox.db"), "ALIPAY_MODE=local",
		"ALIPAY_GATEWAY=", "ALIPAY_APP_ID=", "ALIPAY_SELLER_ID=", "SESSION_SECRET=",
		"ORDER_TTL=240h", "RECONCILE_AFTER=240h", "SANDBOX_TIME_SCALE=1")
	if pprof {
		pp, err := freePort()
		if err != nil {
			return nil, err
		}
		s.pprofBase = "http://127.0.0.1:" + strconv.Itoa(pp)
		env = append(env, "PPROF_ADDR=127.0.0.1:"+strconv.Itoa(pp))
	} else {
		env = append(env, "PPROF_ADDR=")
	}
	if s.logFile, err = os.Create(s.logPath); err != nil {
		return nil, err
	}
	s.cmd = exec.Command(bin)
	s.cmd.Dir, s.cmd.Env, s.cmd.Stdout, s.cmd.Stderr = tmp, env, s.logFile, s.logFile
	// If the bench dies hard, the kernel kills the shop too.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		s.logFile.Close()
		return nil, err
	}
	go func() { s.cmd.Wait(); close(s.exited) }()
	if err := s.waitHealthy(ctx, 60*time.Second); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

func (s *shop) waitHealthy(ctx context.Context, limit time.Duration) error {
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return fmt.Errorf("shop exited during start-up: see %s", s.logPath)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		resp, err := c.Get(s.base + "/healthz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && strings.TrimSpace(string(body)) == "ok" {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("shop not healthy after %s: see %s", limit, s.logPath)
}

// alive reports whether the process is still running.
func (s *shop) alive() bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM (the shop drains and exits), then SIGKILL if it lingers.
func (s *shop) stop() {
	s.once.Do(func() {
		if s.alive() {
			s.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-s.exited:
			case <-time.After(10 * time.Second):
				s.cmd.Process.Kill()
				<-s.exited
			}
		}
		s.logFile.Close()
	})
}

// peakRSS reads VmHWM (peak resident set) of the shop process, in bytes.
func (s *shop) peakRSS() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) != 2 || f[1] != "kB" {
				return 0, fmt.Errorf("unexpected VmHWM line %q", line)
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			return kb * 1024, err
		}
	}
	return 0, errors.New("no VmHWM in /proc status")
}

// vmRSS reads the resident set (VmRSS) of process pid, in bytes.
func vmRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) != 2 || f[1] != "kB" {
				return 0, fmt.Errorf("unexpected VmRSS line %q", line)
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			return kb * 1024, err
		}
	}
	return 0, errors.New("no VmRSS in /proc status")
}

// mustLoopback refuses any URL that is not on 127.0.0.1.
func mustLoopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	ip := net.ParseIP(u.Hostname())
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("refusing non-loopback address %q", raw)
	}
	return nil
}

func writeJSON(path string, rep *fullReport) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func machine() map[string]any {
	return map[string]any{"nproc": runtime.NumCPU(), "gomaxprocs": runtime.GOMAXPROCS(0),
		"goos": runtime.GOOS, "goarch": runtime.GOARCH, "go": runtime.Version()}
}
