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

// localKeys makes what local mode runs on when it is missing: the app's and the
// emulator's key pairs and, with ALIPAY_CERT_MODE=1, the three certificates the emulator
// issues from its own root (as Alipay's console would hand them out).
func localKeys(cfg config, log *slog.Logger) error {
	wrote, err := payment.EnsureLocalKeys(cfg.KeysDir)
	if err != nil {
		return fmt.Errorf("generating dev keys: %w", err)
	}
	for _, f := range wrote {
		log.Info("generated dev key", "file", f)
	}
	if !cfg.CertMode {
		return nil
	}
	appPub, err := os.ReadFile(filepath.Join(cfg.KeysDir, payment.AppPublicKeyFile))
	if err != nil {
		return err
	}
	priv, err := os.ReadFile(filepath.Join(cfg.KeysDir, payment.SandboxPrivateKeyFile))
	if err != nil {
		return err
	}
	if err := sandbox.IssueCerts(cfg.KeysDir, appPub, priv); err != nil {
		return fmt.Errorf("issuing dev certificates: %w", err)
	}
	return nil
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
	ec := sandbox.Config{AppID: cfg.AppID, SellerID: cfg.SellerID, AppPublicKeyPEM: appPub,
		PrivateKeyPEM: priv, DBPath: cfg.SandboxDB, TimeScale: cfg.TimeScale, RefundWindow: cfg.RefundWindow, Logger: log}
	if cfg.CertMode {
		if ec.Certs, err = sandbox.LoadCertConfig(cfg.KeysDir); err != nil {
			return nil, err
		}
	}
	return sandbox.New(ec)
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
	if err := localKeys(cfg, log); err != nil {
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
