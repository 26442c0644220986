package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"storefront/shoptest"
)

// runFor runs the shop with env until it serves, returns its output, and stops it.
func runFor(t *testing.T, env map[string]string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- runShop(ctx, func(k string) string { return env[k] }, &out, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	for i := 0; ; i++ {
		if resp, err := http.Get("http://" + env["ADDR"] + "/healthz"); err == nil {
			resp.Body.Close()
			break
		}
		if i > 200 {
			t.Fatal("shop did not start")
		}
		time.Sleep(30 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// The first local start makes a dev operator and prints its login once; it logs in to
// the back office; `go run . operator add` makes another (password from a pipe).
func TestDevOperatorAndOperatorAdd(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"ADDR": shoptest.FreeAddr(t), "DB": filepath.Join(dir, "shop.db"), "KEYS_DIR": filepath.Join(dir, "keys")}
	first := runFor(t, env)
	m := regexp.MustCompile(`dev operator for the back office: (\S+) / (\S+)`).FindStringSubmatch(first)
	if m == nil || !strings.Contains(first, "/admin/") {
		t.Fatalf("first start printed no dev operator:\n%s", first)
	}
	if again := runFor(t, env); strings.Contains(again, m[2]) {
		t.Fatal("the dev operator's password was printed again")
	}

	r, w, _ := os.Pipe()
	w.WriteString("another password 123\n")
	w.Close()
	var out bytes.Buffer
	getenv := func(k string) string { return env[k] }
	if err := runOperator(context.Background(), []string{"add", "Boss@Example.com"}, getenv, r, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "boss@example.com created") {
		t.Fatalf("operator add said %q", out.String())
	}
	env2 := map[string]string{"OPERATOR_PASSWORD": "short"}
	r2, _, _ := os.Pipe()
	if err := runOperator(context.Background(), []string{"add", "x@example.com"}, func(k string) string {
		if v, ok := env2[k]; ok {
			return v
		}
		return env[k]
	}, r2, io.Discard); err == nil {
		t.Fatal("a 5-character operator password was accepted")
	}
	if err := runOperator(context.Background(), []string{"add", "not-an-email"}, getenv, r2, io.Discard); err == nil {
		t.Fatal("a bad e-mail was accepted")
	}

	// Both log in to the back office of the running shop.
	env["ADDR"] = shoptest.FreeAddr(t)
	base := startShop(t, env)
	for _, who := range [][2]string{{m[1], m[2]}, {"boss@example.com", "another password 123"}} {
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := c.Get(base + "/admin/login")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		var tok string
		u, _ := url.Parse(base)
		for _, ck := range jar.Cookies(u) {
			if ck.Name == "_csrf" {
				tok = ck.Value
			}
		}
		resp, err = c.PostForm(base+"/admin/login", url.Values{"_csrf": {tok}, "email": {who[0]}, "password": {who[1]}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin/" {
			t.Fatalf("%s logging in: %d %q", who[0], resp.StatusCode, resp.Header.Get("Location"))
		}
		resp, _ = c.Get(base + "/admin/")
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), "今日概览") {
			t.Fatalf("%s's dashboard: %d", who[0], resp.StatusCode)
		}
	}
}
