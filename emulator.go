package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"

	"storefront/payment"
	"storefront/sandbox"
)

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
