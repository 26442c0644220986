// Command storefront is a server-rendered shop that takes payment through Alipay's
// PC-website pay, with a local Alipay gateway emulator for development.
//
//	go run .          the shop (local mode: emulator mounted at /sandbox)
//	go run . sandbox  the emulator alone, on its own address
package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"storefront/handlers"
	"storefront/money"
	"storefront/payment"
	"storefront/sandbox"
	"storefront/store"
)

//go:embed schema.sql
var schemaSQL string

//go:embed static
var staticFiles embed.FS

func main() {
	tuneGC(os.Getenv)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(handlers.NewLogHandler(slog.NewTextHandler(os.Stderr, nil)))
	var err error
	if len(os.Args) > 1 && os.Args[1] == "sandbox" {
		err = runSandbox(ctx, os.Getenv, os.Stdout, log)
	} else if len(os.Args) > 1 {
		err = fmt.Errorf("unknown command %q (use no argument for the shop, or \"sandbox\")", os.Args[1])
	} else {
		err = runShop(ctx, os.Getenv, os.Stdout, log)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

// tuneGC trades memory the shop doesn't need for CPU it does: a page allocates a few
// KiB that die at once, and at Go's default GOGC=100 collection took about a tenth of
// a busy server's CPU. GOGC=200 halves that work; the soft memory limit makes the
// collector work harder again before the heap could reach it. Either can be overridden
// with the usual GOGC / GOMEMLIMIT variables.
func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(200)
	}
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(64 << 20)
	}
}

// Modes of ALIPAY_MODE.
const (
	modeLocal      = "local"
	modeSandbox    = "sandbox"
	modeProduction = "production"
)

// config is DESIGN "Run and configure (contract)".
type config struct {
	Addr, PublicURL, DB, KeysDir, Mode string
	AppID, SellerID, Gateway           string
	SessionSecret                      string
	OrderTTL, ReconcileAfter           time.Duration
	TimeScale                          float64
	SandboxDB                          string
	Pprof                              string // PPROF_ADDR: profiling endpoint, off unless set
	DevReload                          bool   // DEV_RELOAD=1: allow templ's live-reload script
	mountEmulator                      bool
}

func loadConfig(getenv func(string) string) (config, error) {
	env := func(k, def string) string {
		if v := strings.TrimSpace(getenv(k)); v != "" {
			return v
		}
		return def
	}
	c := config{
		Addr: env("ADDR", "127.0.0.1:8080"), DB: env("DB", "shop.db"), KeysDir: env("KEYS_DIR", "keys"),
		Mode: env("ALIPAY_MODE", modeLocal), Gateway: env("ALIPAY_GATEWAY", ""),
		SessionSecret: env("SESSION_SECRET", ""), Pprof: env("PPROF_ADDR", ""),
		DevReload: env("DEV_RELOAD", "") == "1",
	}
	c.PublicURL = strings.TrimRight(env("PUBLIC_URL", "http://"+c.Addr), "/")
	c.SandboxDB = env("SANDBOX_DB", filepath.Join(filepath.Dir(c.DB), "sandbox.db"))
	var problems []string
	durations := []struct {
		key, def string
		dst      *time.Duration
	}{{"ORDER_TTL", "30m", &c.OrderTTL}, {"RECONCILE_AFTER", "5m", &c.ReconcileAfter}}
	for _, d := range durations {
		v, err := time.ParseDuration(env(d.key, d.def))
		if err != nil || v <= 0 {
			problems = append(problems, fmt.Sprintf("%s must be a positive duration such as 30m (got %q)", d.key, getenv(d.key)))
		}
		*d.dst = v
	}
	scale, err := strconv.ParseFloat(env("SANDBOX_TIME_SCALE", "1"), 64)
	if err != nil || scale < 1 {
		problems = append(problems, "SANDBOX_TIME_SCALE must be a number ≥ 1")
	}
	c.TimeScale = scale
	switch c.Mode {
	case modeLocal:
		c.AppID = env("ALIPAY_APP_ID", "2021000000000001")
		c.SellerID = env("ALIPAY_SELLER_ID", "2088000000000001")
		if c.Gateway == "" {
			c.Gateway = c.PublicURL + "/sandbox/gateway.do"
			c.mountEmulator = true
		}
	case modeSandbox, modeProduction:
		c.AppID = env("ALIPAY_APP_ID", "")
		c.SellerID = env("ALIPAY_SELLER_ID", "")
		if c.AppID == "" {
			problems = append(problems, "set ALIPAY_APP_ID to your app id from Alipay's console")
		}
		if c.Mode == modeProduction && c.SessionSecret == "" {
			problems = append(problems, "set SESSION_SECRET (32+ random characters) in production")
		}
		for _, f := range []string{payment.AppPrivateKeyFile, payment.AlipayPublicKeyFile} {
			p := filepath.Join(c.KeysDir, f)
			if _, err := os.Stat(p); err != nil {
				problems = append(problems, fmt.Sprintf("put %s in place (see keys/README.md)", p))
			}
		}
	default:
		problems = append(problems, fmt.Sprintf("ALIPAY_MODE must be local, sandbox or production (got %q)", c.Mode))
	}
	if len(problems) > 0 {
		return c, errors.New("cannot start:\n  - " + strings.Join(problems, "\n  - "))
	}
	return c, nil
}

// sessionKeys returns the signing and encryption keys for session cookies, derived from
// SESSION_SECRET or, outside production, from a secret generated once into KEYS_DIR.
func sessionKeys(c config) (hashKey, blockKey []byte, err error) {
	secret := c.SessionSecret
	if secret == "" {
		path := filepath.Join(c.KeysDir, "session.key")
		b, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			raw := make([]byte, 32)
			if _, err := rand.Read(raw); err != nil {
				return nil, nil, err
			}
			b = []byte(hex.EncodeToString(raw))
			if err := payment.WriteFile(path, b, 0o600); err != nil {
				return nil, nil, err
			}
		} else if err != nil {
			return nil, nil, err
		}
		secret = strings.TrimSpace(string(b))
	}
	if len(secret) < 16 {
		return nil, nil, errors.New("SESSION_SECRET is too short: use 32+ random characters")
	}
	h := sha256.Sum256([]byte("session-hash:" + secret))
	b := sha256.Sum256([]byte("session-block:" + secret))
	return h[:], b[:], nil
}

func runShop(ctx context.Context, getenv func(string) string, out io.Writer, log *slog.Logger) error {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	if cfg.Mode == modeLocal {
		wrote, err := payment.EnsureLocalKeys(cfg.KeysDir)
		if err != nil {
			return fmt.Errorf("generating dev keys: %w", err)
		}
		for _, f := range wrote {
			log.Info("generated dev key", "file", f)
		}
	}
	if cfg.SellerID == "" {
		log.Warn("ALIPAY_SELLER_ID is not set: notifies' seller_id is not checked")
	}
	appPriv, err := os.ReadFile(filepath.Join(cfg.KeysDir, payment.AppPrivateKeyFile))
	if err != nil {
		return err
	}
	alipayPub, err := os.ReadFile(filepath.Join(cfg.KeysDir, payment.AlipayPublicKeyFile))
	if err != nil {
		return err
	}
	client, err := payment.NewClient(payment.ClientOptions{AppID: cfg.AppID, AppPrivateKey: appPriv,
		AlipayPublicKey: alipayPub, Production: cfg.Mode == modeProduction, Gateway: cfg.Gateway,
		Timeout: 10 * time.Second})
	if err != nil {
		return err
	}
	hashKey, blockKey, err := sessionKeys(cfg)
	if err != nil {
		return err
	}
	st, err := store.Open(cfg.DB, schemaSQL, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	if n, err := st.SeedGoods(ctx, demoGoods()); err != nil {
		return err
	} else if n > 0 {
		log.Info("seeded demo goods", "count", n)
	}
	pay := payment.NewService(client, st, payment.Config{AppID: cfg.AppID, SellerID: cfg.SellerID,
		PublicURL: cfg.PublicURL, ReconcileAfter: cfg.ReconcileAfter}, nil, log)

	var emu *sandbox.Emulator
	if cfg.Mode == modeLocal && cfg.mountEmulator {
		if emu, err = newEmulator(cfg, log); err != nil {
			return err
		}
		defer emu.Close()
	}
	static, _ := fs.Sub(staticFiles, "static")
	hcfg := handlers.Config{Store: st, Payments: pay, Sessions: handlers.NewSessionStore(hashKey, blockKey,
		strings.HasPrefix(cfg.PublicURL, "https://")), Static: static, Gateway: cfg.Gateway,
		OrderTTL: cfg.OrderTTL, Secure: strings.HasPrefix(cfg.PublicURL, "https://"), Logger: log,
		DevReload: cfg.DevReload && cfg.Mode != modeProduction}
	if emu != nil {
		hcfg.Sandbox = emu
	}
	srv := newServer(cfg.Addr, handlers.New(hcfg))
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	if cfg.Pprof != "" {
		startPprof(cfg.Pprof, log)
	}
	fmt.Fprintf(out, "storefront (%s mode) listening: open %s/\n", cfg.Mode, cfg.PublicURL)
	if emu != nil {
		fmt.Fprintf(out, "local Alipay emulator console: %s/sandbox/\n", cfg.PublicURL)
	}
	return serve(ctx, srv, ln, log, func(wctx context.Context, wg *sync.WaitGroup) {
		wg.Go(func() { pay.RunWorkers(wctx, time.Second) })
		if emu != nil {
			wg.Go(func() { emu.Run(wctx) })
		}
	})
}

// newServer sets every timeout: a slow client can't hold a connection forever.
func newServer(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr: addr, Handler: h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
}

// serve runs srv and the background workers until ctx is cancelled, then drains
// in-flight requests before stopping the workers, so no request is cut off mid-way.
func serve(ctx context.Context, srv *http.Server, ln net.Listener, log *slog.Logger,
	start func(context.Context, *sync.WaitGroup)) error {
	wctx, stopWorkers := context.WithCancel(context.Background())
	defer stopWorkers()
	var wg sync.WaitGroup
	start(wctx, &wg)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		stopWorkers()
		wg.Wait()
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: draining requests")
	sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	stopWorkers()
	wg.Wait()
	log.Info("stopped")
	return err
}

func newEmulator(cfg config, log *slog.Logger) (*sandbox.Emulator, error) {
	appPub, err := os.ReadFile(filepath.Join(cfg.KeysDir, payment.AppPublicKeyFile))
	if err != nil {
		return nil, err
	}
	priv, err := os.ReadFile(filepath.Join(cfg.KeysDir, payment.SandboxPrivateKeyFile))
	if err != nil {
		return nil, err
	}
	return sandbox.New(sandbox.Config{AppID: cfg.AppID, SellerID: cfg.SellerID, AppPublicKeyPEM: appPub,
		PrivateKeyPEM: priv, DBPath: cfg.SandboxDB, TimeScale: cfg.TimeScale, Logger: log})
}

// runSandbox runs the emulator alone (SANDBOX_ADDR, default 127.0.0.1:9090), so its
// notifies keep retrying while the shop is down or restarting.
func runSandbox(ctx context.Context, getenv func(string) string, out io.Writer, log *slog.Logger) error {
	cfg, err := loadConfig(func(k string) string {
		if k == "ALIPAY_MODE" {
			return modeLocal
		}
		if k == "ALIPAY_GATEWAY" {
			return ""
		}
		return getenv(k)
	})
	if err != nil {
		return err
	}
	if v := getenv("SANDBOX_DB"); v == "" {
		cfg.SandboxDB = "sandbox.db"
	}
	addr := getenv("SANDBOX_ADDR")
	if addr == "" {
		addr = "127.0.0.1:9090"
	}
	if _, err := payment.EnsureLocalKeys(cfg.KeysDir); err != nil {
		return err
	}
	emu, err := newEmulator(cfg, log)
	if err != nil {
		return err
	}
	defer emu.Close()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Alipay emulator listening: gateway http://%s/sandbox/gateway.do, console http://%s/sandbox/\n", addr, addr)
	fmt.Fprintf(out, "point the shop at it with ALIPAY_GATEWAY=http://%s/sandbox/gateway.do\n", addr)
	return serve(ctx, newServer(addr, emu), ln, log, func(wctx context.Context, wg *sync.WaitGroup) {
		wg.Go(func() { emu.Run(wctx) })
	})
}

func demoGoods() []store.Goods {
	stock := func(n int64) *int64 { return &n }
	return []store.Goods{
		{Name: "小米手环", Description: "心率、睡眠、运动记录，一次充电续航两周。", Price: money.Fen(19900), Image: "/static/img/band.svg"},
		{Name: "机械键盘", Description: "87 键茶轴，PBT 键帽，有线/蓝牙双模。", Price: money.Fen(39900), Image: "/static/img/keyboard.svg"},
		{Name: "降噪耳机", Description: "主动降噪，30 小时续航，支持快充。", Price: money.Fen(89900), Image: "/static/img/headphones.svg"},
		{Name: "保温杯", Description: "316 不锈钢内胆，保温 12 小时，500ml。", Price: money.Fen(8990), Image: "/static/img/cup.svg"},
		{Name: "帆布包", Description: "加厚帆布，可装 14 寸笔记本。", Price: money.Fen(5900), Image: "/static/img/bag.svg"},
		{Name: "限量版马克杯", Description: "限量发售，售完即止。", Price: money.Fen(4900), Image: "/static/img/mug.svg", Stock: stock(20)},
	}
}
