package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"storefront/payment"
	"storefront/shoptest"
)

// prodKeys writes a sound production KEYS_DIR: the app's key (0600) and Alipay's public
// key, nothing else. It returns the dir and the app's key.
func prodKeys(t *testing.T) (string, *rsa.PrivateKey) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "keys")
	app, _ := rsa.GenerateKey(rand.Reader, 2048)
	ali, _ := rsa.GenerateKey(rand.Reader, 2048)
	writeKey(t, filepath.Join(dir, payment.AppPrivateKeyFile), payment.EncodePrivateKey(app))
	if err := payment.WriteFile(filepath.Join(dir, payment.AlipayPublicKeyFile), payment.EncodePublicKey(&ali.PublicKey), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, app
}

func prodEnv(t *testing.T, keys string) map[string]string {
	return map[string]string{"ADDR": shoptest.FreeAddr(t), "DB": filepath.Join(t.TempDir(), "shop.db"), "KEYS_DIR": keys,
		"ALIPAY_MODE": "production", "ALIPAY_APP_ID": "2021004100000001", "ALIPAY_SELLER_ID": "2088721000000001",
		"PUBLIC_URL": "https://shop.example.com", "SESSION_SECRET": "3f9c2e71b8a64d05c1e7f2a98b4d6031e5c7a9f1d2b3c4e5f60718293a4b5c6d"}
}

// startErr runs the shop with env and returns why it refused to start ("" if it started).
func startErr(t *testing.T, env map[string]string) (string, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out bytes.Buffer
	errc := make(chan error, 1)
	go func() {
		errc <- runShop(ctx, func(k string) string { return env[k] }, &out, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	defer cancel()
	for range 100 {
		select {
		case err := <-errc:
			if err == nil {
				return "", out.String()
			}
			return err.Error(), out.String()
		default:
		}
		if resp, err := http.Get("http://" + env["ADDR"] + "/healthz"); err == nil {
			resp.Body.Close()
			cancel()
			<-errc
			return "", out.String()
		}
		time.Sleep(30 * time.Millisecond)
	}
	t.Fatal("the shop neither started nor refused")
	return "", ""
}

// Each unsafe setting README "Modes" lists stops a production start-up with a message that says
// what to do; a sound configuration starts, and seeds no demo goods.
func TestProductionRefusesUnsafeSettings(t *testing.T) {
	cases := []struct {
		name string
		mod  func(t *testing.T, env map[string]string, app *rsa.PrivateKey)
		want string
	}{
		{"http PUBLIC_URL", func(_ *testing.T, e map[string]string, _ *rsa.PrivateKey) {
			e["PUBLIC_URL"] = "http://shop.example.com"
		}, "must be https"},
		{"loopback PUBLIC_URL", func(_ *testing.T, e map[string]string, _ *rsa.PrivateKey) { e["PUBLIC_URL"] = "https://127.0.0.1:8443" }, "loopback"},
		{"localhost PUBLIC_URL", func(_ *testing.T, e map[string]string, _ *rsa.PrivateKey) { e["PUBLIC_URL"] = "https://localhost" }, "loopback"},
		{"no SESSION_SECRET", func(_ *testing.T, e map[string]string, _ *rsa.PrivateKey) { delete(e, "SESSION_SECRET") }, "set SESSION_SECRET"},
		{"sixteen a's", func(_ *testing.T, e map[string]string, _ *rsa.PrivateKey) {
			e["SESSION_SECRET"] = strings.Repeat("a", 16)
		}, "too short"},
		{"long but patterned", func(_ *testing.T, e map[string]string, _ *rsa.PrivateKey) {
			e["SESSION_SECRET"] = strings.Repeat("abc123", 8)
		}, "not random enough"},
		{"ten characters repeated", func(_ *testing.T, e map[string]string, _ *rsa.PrivateKey) {
			e["SESSION_SECRET"] = strings.Repeat("0123456789", 5)
		}, "not random enough"},
		{"a counting sequence", func(_ *testing.T, e map[string]string, _ *rsa.PrivateKey) {
			e["SESSION_SECRET"] = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH"
		}, "not random enough"},
		{"no seller id", func(_ *testing.T, e map[string]string, _ *rsa.PrivateKey) { delete(e, "ALIPAY_SELLER_ID") }, "ALIPAY_SELLER_ID"},
		{"a seller id cut short", func(_ *testing.T, e map[string]string, _ *rsa.PrivateKey) { e["ALIPAY_SELLER_ID"] = "2088123" }, "16 digits"},
		{"world-readable private key", func(t *testing.T, e map[string]string, _ *rsa.PrivateKey) {
			os.Chmod(filepath.Join(e["KEYS_DIR"], payment.AppPrivateKeyFile), 0o644)
		}, "chmod 600"},
		{"app's own key as Alipay's", func(t *testing.T, e map[string]string, app *rsa.PrivateKey) {
			payment.WriteFile(filepath.Join(e["KEYS_DIR"], payment.AlipayPublicKeyFile), payment.EncodePublicKey(&app.PublicKey), 0o644)
		}, "your app's own public key"},
		{"emulator key left behind", func(t *testing.T, e map[string]string, _ *rsa.PrivateKey) {
			if _, err := payment.EnsureLocalKeys(t.TempDir()); err != nil {
				t.Fatal(err)
			}
			emu, _ := rsa.GenerateKey(rand.Reader, 2048)
			writeKey(t, filepath.Join(e["KEYS_DIR"], payment.SandboxPrivateKeyFile), payment.EncodePrivateKey(emu))
			payment.WriteFile(filepath.Join(e["KEYS_DIR"], payment.AlipayPublicKeyFile), payment.EncodePublicKey(&emu.PublicKey), 0o644)
		}, "local emulator's key"},
		{"app public key of another pair", func(t *testing.T, e map[string]string, _ *rsa.PrivateKey) {
			other, _ := rsa.GenerateKey(rand.Reader, 2048)
			payment.WriteFile(filepath.Join(e["KEYS_DIR"], payment.AppPublicKeyFile), payment.EncodePublicKey(&other.PublicKey), 0o644)
		}, "not the public half"},
		{"no app id", func(_ *testing.T, e map[string]string, _ *rsa.PrivateKey) { delete(e, "ALIPAY_APP_ID") }, "ALIPAY_APP_ID"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			keys, app := prodKeys(t)
			env := prodEnv(t, keys)
			c.mod(t, env, app)
			why, _ := startErr(t, env)
			if why == "" {
				t.Fatalf("production started with %s", c.name)
			}
			if !strings.Contains(why, c.want) {
				t.Fatalf("refused, but the message doesn't say %q:\n%s", c.want, why)
			}
		})
	}
	t.Run("sound configuration", func(t *testing.T) {
		keys, _ := prodKeys(t)
		env := prodEnv(t, keys)
		base := startShop(t, env)
		resp, err := http.Get(base + "/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || strings.Contains(string(b), "小米手环") {
			t.Fatalf("production home page: %d, demo goods seeded: %v", resp.StatusCode, strings.Contains(string(b), "小米手环"))
		}
	})
}

// Sandbox mode refuses the emulator's key left in KEYS_DIR, and starts on a loopback
// PUBLIC_URL with a loud warning (the return page and reconciliation still settle).
func TestSandboxModeChecks(t *testing.T) {
	keys, _ := prodKeys(t)
	env := prodEnv(t, keys)
	env["ALIPAY_MODE"] = "sandbox"
	delete(env, "SESSION_SECRET")
	env["PUBLIC_URL"] = "http://" + env["ADDR"]
	why, out := startErr(t, env)
	if why != "" {
		t.Fatalf("sandbox mode refused a loopback PUBLIC_URL: %s", why)
	}
	if !strings.Contains(out, "WARNING") || !strings.Contains(out, "loopback") {
		t.Fatalf("no loud warning about the loopback PUBLIC_URL:\n%s", out)
	}
	if _, err := payment.EnsureLocalKeys(keys); err != nil { // a local run's keys, over the real ones
		t.Fatal(err)
	}
	env["ADDR"] = shoptest.FreeAddr(t)
	if why, _ := startErr(t, env); !strings.Contains(why, "emulator") {
		t.Fatalf("sandbox mode on the emulator's key: %q", why)
	}
}

// Local mode refuses a KEYS_DIR whose pairs don't belong together (it would reject every
// payment as forged) and says how to regenerate.
func TestLocalModeRefusesMismatchedKeys(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	if _, err := payment.EnsureLocalKeys(keys); err != nil {
		t.Fatal(err)
	}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	payment.WriteFile(filepath.Join(keys, payment.AlipayPublicKeyFile), payment.EncodePublicKey(&other.PublicKey), 0o644)
	env := map[string]string{"ADDR": shoptest.FreeAddr(t), "DB": filepath.Join(dir, "shop.db"), "KEYS_DIR": keys}
	if why, _ := startErr(t, env); !strings.Contains(why, "Delete") || !strings.Contains(why, "forged") {
		t.Fatalf("local mode with mismatched keys: %q", why)
	}
}

// `help` lists every setting the shop reads, with a default and a meaning.
func TestHelpListsEverySetting(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"--help"}, os.Getenv, nil); err != nil {
		t.Fatal(err)
	}
	if err := runHelp(&out); err != nil {
		t.Fatal(err)
	}
	read := map[string]bool{}
	record := func(k string) string { read[k] = true; return "" }
	for _, mode := range []string{"local", "sandbox", "production"} {
		loadConfig(func(k string) string {
			record(k)
			if k == "ALIPAY_MODE" {
				return mode
			}
			return ""
		})
	}
	tuneGC(record)
	for k := range read {
		if !strings.Contains(out.String(), "\n  "+k+" ") {
			t.Errorf("help doesn't list %s, which the shop reads", k)
		}
	}
	for _, s := range settings {
		if s.def == "" || s.meaning == "" {
			t.Errorf("setting %s lacks a default or a meaning", s.name)
		}
	}
	for _, cmd := range []string{"go run . backup FILE", "go run . sandbox"} {
		if !strings.Contains(out.String(), cmd) {
			t.Errorf("help doesn't list %q", cmd)
		}
	}
}

// TRUSTED_PROXIES takes addresses and CIDRs and refuses anything else by name.
func TestTrustedProxies(t *testing.T) {
	cfg, err := loadConfig(func(k string) string {
		if k == "TRUSTED_PROXIES" {
			return "127.0.0.1, 10.0.0.0/8 ,::1"
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range cfg.TrustedProxies {
		got = append(got, n.String())
	}
	if strings.Join(got, " ") != "127.0.0.1/32 10.0.0.0/8 ::1/128" {
		t.Fatalf("TRUSTED_PROXIES parsed as %v", got)
	}
	_, err = loadConfig(func(k string) string {
		if k == "TRUSTED_PROXIES" {
			return "10.0.0.0/8,proxy.example.com"
		}
		return ""
	})
	if err == nil || !strings.Contains(err.Error(), `TRUSTED_PROXIES`) || !strings.Contains(err.Error(), "proxy.example.com") {
		t.Fatalf("a host name in TRUSTED_PROXIES: %v", err)
	}
}
