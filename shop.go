package main

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/smartwalle/alipay/v3"

	"storefront/admin"
	"storefront/handlers"
	"storefront/payment"
	"storefront/sandbox"
	"storefront/store"
	"storefront/web"
)

//go:embed schema.sql
var schemaSQL string

//go:embed static
var staticFiles embed.FS

func runShop(ctx context.Context, getenv func(string) string, out io.Writer, log *slog.Logger) error {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	keys, client, err := alipayClient(cfg, log, out)
	if err != nil {
		return err
	}
	secret, err := sessionSecret(cfg)
	if err != nil {
		return err
	}
	st, err := store.Open(cfg.DB, schemaSQL, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	st.SetLeaseTTL(cfg.LeaseTTL)
	st.SetInstance(instanceName(cfg.Addr))
	if st.Engine() == "postgres" {
		// Several instances may share the database: every line says which one wrote it.
		log = log.With("instance", st.Instance())
		log.Info("on PostgreSQL: background work shared with any other instance on this database", "lease_ttl", cfg.LeaseTTL)
	}
	if cfg.Mode != modeProduction { // a production shop starts with the goods its operator adds
		if n, err := st.SeedGoods(ctx, demoGoods()); err != nil {
			return err
		} else if n > 0 {
			log.Info("seeded demo goods", "count", n)
		}
	}
	pay := paymentService(cfg, keys, client, st, log)

	var emu *sandbox.Emulator
	if cfg.Mode == modeLocal && cfg.mountEmulator {
		if emu, err = newEmulator(cfg, log); err != nil {
			return err
		}
		defer emu.Close()
	}
	static, _ := fs.Sub(staticFiles, "static")
	secure := strings.HasPrefix(cfg.PublicURL, "https://")
	shopKey, shopBlock := cookieKeys(secret, "session")
	opKey, opBlock := cookieKeys(secret, "admin")
	hcfg := handlers.Config{Store: st, Payments: pay, Sessions: web.NewSessionStore(shopKey, shopBlock, secure, "/"),
		Static: static, MediaDir: cfg.MediaDir, Gateway: cfg.Gateway, OrderTTL: cfg.OrderTTL, Secure: secure, Logger: log,
		TrustedProxies: cfg.TrustedProxies,
		DevReload:      cfg.DevReload && cfg.Mode != modeProduction,
		Rooms: []func(*web.Server){admin.Mount(admin.Config{Store: st, Payments: pay,
			Sessions: web.NewSessionStore(opKey, opBlock, secure, "/admin"), MediaDir: cfg.MediaDir, Logger: log})}}
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
	mode := "public-key mode"
	if keys.certs != nil {
		mode = "certificate mode"
	}
	fmt.Fprintf(out, "storefront (%s mode, %s) listening: open %s/\n", cfg.Mode, mode, cfg.PublicURL)
	fmt.Fprintf(out, "back office: %s/admin/\n", cfg.PublicURL)
	if cfg.Mode == modeLocal {
		if err := devOperator(ctx, st, out); err != nil {
			return err
		}
	}
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

// instanceName is this process's name among instances sharing a database: its host and
// listening address, the same after a restart (see store.SetInstance).
func instanceName(addr string) string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return host + "/" + addr
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

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return hex.EncodeToString(b)
}

// alipayClient checks the keys (making local mode's when missing) and builds the one
// Alipay client: once per process, since parsing the keys is the expensive part.
func alipayClient(cfg config, log *slog.Logger, out io.Writer) (alipayKeys, *alipay.Client, error) {
	if cfg.Mode == modeLocal {
		if err := localKeys(cfg, log); err != nil {
			return alipayKeys{}, nil, err
		}
	}
	keys, err := checkKeys(cfg)
	if err != nil {
		return keys, nil, err
	}
	for _, w := range sandboxWarnings(cfg) {
		log.Warn("WARNING: " + w)
		fmt.Fprintln(out, "WARNING:", w)
	}
	client, err := payment.NewClient(payment.ClientOptions{AppID: cfg.AppID, AppPrivateKey: keys.appPriv,
		AlipayPublicKey: keys.alipayPub, Certs: keys.certs, Production: cfg.Mode == modeProduction, Gateway: cfg.Gateway,
		Timeout: 10 * time.Second})
	return keys, client, err
}

// paymentService wires the Alipay rules for cfg.
func paymentService(cfg config, keys alipayKeys, client *alipay.Client, st *store.Store, log *slog.Logger) *payment.Service {
	return payment.NewService(client, st, payment.Config{AppID: cfg.AppID, SellerID: cfg.SellerID,
		PublicURL: cfg.PublicURL, ReconcileAfter: cfg.ReconcileAfter, AutoReceive: cfg.AutoReceive,
		Verifier: keys.verifier}, nil, log)
}
