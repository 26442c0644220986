package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"storefront/shoptest"
)

// Budgets. The build is apart: a cold cgo build of sqlite can take a minute on CI.
const (
	buildTimeout = 5 * time.Minute
	startTimeout = 20 * time.Second
	flowTimeout  = 60 * time.Second // the whole browser session
	stepTimeout  = 15 * time.Second // one page
	notifyWithin = 10 * time.Second // the emulator's first notify delivery
)

// browserNames are looked up in PATH, in this order.
var browserNames = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}

// shopEnv are the shop's configuration variables: none leaks in from the caller's
// environment, so the shop runs exactly as a new developer's `go run .` does.
var shopEnv = []string{"ADDR", "PUBLIC_URL", "DB", "KEYS_DIR", "ALIPAY_MODE", "ALIPAY_APP_ID",
	"ALIPAY_SELLER_ID", "ALIPAY_GATEWAY", "SESSION_SECRET", "ORDER_TTL", "RECONCILE_AFTER",
	"SANDBOX_TIME_SCALE", "SANDBOX_DB", "SANDBOX_ADDR", "PPROF_ADDR"}

var tradeNoRE = regexp.MustCompile(`^[0-9]{28}$`)

func TestBrowserBuyAndPay(t *testing.T) {
	browser := findBrowser()
	if browser == "" {
		msg := fmt.Sprintf("no browser found in PATH (looked for %s): install one with "+
			"`apt-get install -y chromium fonts-noto-cjk`", strings.Join(browserNames, ", "))
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " — a missing browser in CI is a failure")
		}
		t.Skip(msg)
	}
	t.Logf("browser: %s", browser)
	if !hasCJKFont() {
		msg := "no Chinese font installed (`apt-get install -y fonts-noto-cjk`): the screenshots show boxes for Chinese text"
		if os.Getenv("UPDATE_SCREENSHOTS") != "" {
			t.Fatal(msg + "; not refreshing docs/screenshots with them")
		}
		t.Log("warning: " + msg)
	}

	base := startShop(t, buildShop(t))
	shots := newShots(t)

	ctx, cancel := context.WithTimeout(context.Background(), flowTimeout)
	defer cancel()
	ctx = startBrowser(t, ctx, browser)
	b := &session{t: t, ctx: ctx, base: base, shots: shots}

	// 1. The goods list, logged out.
	b.step("goods", func() {
		b.navigate("/")
		b.waitText("main", "全部商品")
		first := b.text("ul.grid > li.goods:first-child")
		for _, want := range []string{"小米手环", "¥199.00", "购买"} {
			if !strings.Contains(first, want) {
				b.fatalf("first goods card %q lacks %q", first, want)
			}
		}
		b.waitText("header nav", "注册")
		b.shot("goods")
	})

	// 2. Sign up through the nav link; the form logs in and goes home.
	email := "shopper@example.com" // every run has its own database
	b.step("signup", func() {
		b.click(`header nav a[href="/signup"]`)
		b.waitPath("/signup")
		b.waitText("main h1", "注册")
		b.waitText("main form", "邮箱")
		b.do(chromedp.SendKeys(chromedp.CSS(`main input[name="email"]`), email),
			chromedp.SendKeys(chromedp.CSS(`main input[name="password"]`), "correct horse battery"))
		b.shot("signup")
		b.click(`main form button[type="submit"]`)
		b.waitPath("/")
		b.waitText("header nav .who", email)
		b.waitText("header nav", "我的订单")
	})

	// 3. Back on the goods list, logged in: buy the first goods. The form POSTs, the
	// shop answers 303 to the signed gateway URL, the emulator shows its cashier.
	var outTradeNo string
	b.step("cashier", func() {
		b.waitText("main", "全部商品")
		b.waitText("ul.grid > li.goods:first-child h2", "小米手环")
		b.click(`ul.grid > li.goods:first-child form button[type="submit"]`)
		b.waitPath("/sandbox/gateway.do")
		b.waitText("main", "确认付款")
		b.waitText("main h1", "收银台")
		b.waitText("main dd.amount", "¥199.00")
		b.waitText("main dl.order", "小米手环")
		outTradeNo = strings.TrimSpace(b.text("main dl.order dd.mono"))
		if !regexp.MustCompile(`^[0-9A-Za-z_]{1,64}$`).MatchString(outTradeNo) {
			b.fatalf("cashier shows order number %q: not an out_trade_no", outTradeNo)
		}
		t.Logf("out_trade_no %s", outTradeNo)
		b.shot("cashier")
	})

	// 4. Pay: the emulator redirects to the shop's return_url, /show_msg.
	var tradeNo string
	b.step("result", func() {
		b.click(`main button.primary`)
		b.waitPath("/show_msg")
		b.waitText("main h1", "支付成功")
		if got := strings.TrimSpace(b.text("#out-trade-no")); got != outTradeNo {
			b.fatalf("result page order number %q, cashier showed %q", got, outTradeNo)
		}
		tradeNo = strings.TrimSpace(b.text("#trade-no"))
		if !tradeNoRE.MatchString(tradeNo) {
			b.fatalf("result page trade number %q: want 28 digits", tradeNo)
		}
		b.waitText("main", "¥199.00")
		b.waitText("main", "已支付")
		t.Logf("trade_no %s", tradeNo)
		b.shot("result")
	})

	// 5. 我的订单 shows the order as paid.
	b.step("orders", func() {
		b.click(`header nav a[href="/orders"]`)
		b.waitPath("/orders")
		b.waitText("main h1", "我的订单")
		row := b.waitRow("table.orders tbody tr", outTradeNo)
		for _, want := range []string{"已支付", "¥199.00", "小米手环"} {
			if !strings.Contains(row, want) {
				b.fatalf("orders row %q lacks %q", row, want)
			}
		}
		b.shot("orders")
	})

	// 6. The emulator's console: the notify was delivered in the background and the shop
	// answered exactly "success".
	b.step("console", func() {
		deadline := time.Now().Add(notifyWithin)
		var last string
		for {
			b.navigate("/sandbox/")
			b.waitText("main h1", "沙箱控制台")
			got, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](fmt.Sprintf(`(() => {
				const a = [...document.querySelectorAll("article.trade")].find(a => a.innerText.includes(%q));
				if (!a) return "no trade";
				const bodies = [...a.querySelectorAll("table.deliveries tbody tr td.mono")].map(td => td.textContent.trim());
				return bodies.includes("success") ? "ok" : "deliveries: " + JSON.stringify(bodies);
			})()`, outTradeNo)))
			if err == nil && got == "ok" {
				break
			}
			last = fmt.Sprint(got, err)
			if time.Now().After(deadline) {
				b.fatalf("no notify delivery answered success within %s (%s)", notifyWithin, last)
			}
			time.Sleep(300 * time.Millisecond)
		}
		card := b.waitRow("article.trade", outTradeNo)
		for _, want := range []string{tradeNo, "TRADE_SUCCESS", "¥199.00", "200", "success"} {
			if !strings.Contains(card, want) {
				b.fatalf("console trade card %q lacks %q", card, want)
			}
		}
		b.shot("console")
	})

	// 7. A cart of two goods checks out as one order: the cart page's form (with the
	// total it showed) goes to the cashier for the sum, titled "first 等3件".
	b.step("cart", func() {
		for _, g := range []struct{ id, qty string }{{"2", "1"}, {"4", "2"}} {
			b.navigate("/goods/" + g.id)
			b.do(chromedp.SetValue(chromedp.CSS(`form[action="/cart/items"] input[name="qty"]`), g.qty))
			b.click(`form[action="/cart/items"] button[type="submit"]`)
			b.waitPath("/cart")
		}
		b.waitText("main", "机械键盘")
		b.waitText("main", "保温杯")
		b.waitText("main p.total", "¥578.80") // 399.00 + 2 × 89.90
		b.click(`form[action="/checkout"] button[type="submit"]`)
		b.waitPath("/sandbox/gateway.do")
		b.waitText("main dd.amount", "¥578.80")
		b.waitText("main dl.order", "机械键盘 等3件")
		b.navigate("/cart")
		b.waitText("main", "购物车是空的")
	})

	if !t.Failed() && os.Getenv("UPDATE_SCREENSHOTS") != "" {
		shots.publish(filepath.Join(moduleRoot(t), "docs", "screenshots"))
	}
}

// findBrowser returns the path of the first browser in PATH, or "".
func findBrowser() string {
	for _, name := range browserNames {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// hasCJKFont reports whether fontconfig knows a font for Chinese. Without fc-list it
// can't tell, and says yes.
func hasCJKFont() bool {
	out, err := exec.Command("fc-list", ":lang=zh", "family").Output()
	return err != nil || strings.TrimSpace(string(out)) != ""
}

// moduleRoot is the directory above this file: the module root.
func moduleRoot(t *testing.T) string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("runtime.Caller: no file")
	}
	root := filepath.Dir(filepath.Dir(file))
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root %s: %v", root, err)
	}
	return root
}

// buildShop builds the shop binary (with -race when the test runs with it).
func buildShop(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "shop")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", append(args, ".")...)
	cmd.Dir = moduleRoot(t)
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("built the shop in %s (race=%v)", time.Since(start).Round(time.Millisecond), raceEnabled)
	return bin
}

// startShop runs the binary with zero configuration on a free port and waits for
// /healthz. It stops the shop at the end (SIGTERM to its process group, then SIGKILL)
// and prints its output when the test failed.
func startShop(t *testing.T, bin string) string {
	t.Helper()
	addr := shoptest.FreeAddr(t)
	dir := t.TempDir()
	cmd := exec.Command(bin)
	cmd.Dir = dir // anything the shop writes by default lands here, not in the repo
	cmd.Env = append(cleanEnv(),
		"ADDR="+addr,
		"DB="+filepath.Join(dir, "shop.db"),
		"KEYS_DIR="+filepath.Join(dir, "keys"),
		"SANDBOX_DB="+filepath.Join(dir, "sandbox.db"),
	)
	var stdout, stderr shoptest.SyncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start shop: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	t.Cleanup(func() {
		pgid := cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("shop exited with %v after SIGTERM", err)
			}
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-exited
			t.Errorf("shop did not stop within 10s of SIGTERM; killed")
		}
		if strings.Contains(stderr.String(), "WARNING: DATA RACE") {
			t.Errorf("the race detector found a data race in the shop (its stderr is below)")
		}
		if t.Failed() || os.Getenv("E2E_LOGS") != "" {
			t.Logf("shop stdout:\n%s", stdout.String())
			t.Logf("shop stderr:\n%s", stderr.String())
		}
	})

	base := "http://" + addr
	deadline := time.Now().Add(startTimeout)
	client := &http.Client{Timeout: time.Second}
	for {
		select {
		case err := <-exited:
			exited <- err // for the cleanup
			t.Fatalf("shop exited before it was healthy: %v", err)
		default:
		}
		if resp, err := client.Get(base + "/healthz"); err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.TrimSpace(string(body)) == "ok" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("shop not healthy at %s/healthz within %s", base, startTimeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("shop up at %s: %s", base, strings.TrimSpace(stdout.String()))
	return base
}

// cleanEnv is the caller's environment without the shop's configuration variables.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		drop := false
		for _, s := range shopEnv {
			if k == s {
				drop = true
				break
			}
		}
		if !drop {
			env = append(env, kv)
		}
	}
	return env
}

// startBrowser starts chromium headless with exactly the flags below and a fresh
// profile, and returns a tab context. The browser ends with the test.
func startBrowser(t *testing.T, ctx context.Context, path string) context.Context {
	t.Helper()
	var out shoptest.SyncBuffer
	actx, acancel := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		chromedp.CombinedOutput(&out),
	)
	tctx, tcancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		tcancel()
		acancel()
		if t.Failed() {
			t.Logf("browser output:\n%s", out.String())
		}
	})
	start := time.Now()
	// The viewport is exactly 1280x900 (headless chromium takes room off the window for
	// absent browser chrome), and scrollbars are hidden so that a long page's full-page
	// screenshot is 1280 wide too.
	if err := chromedp.Do(tctx, chromedp.EmulateViewport(1280, 900),
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := cdp.Call(ctx, t, emulation.SetScrollbarsHidden, emulation.SetScrollbarsHiddenParams{Hidden: true})
			return err
		}),
		chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start %s: %v\n%s", path, err, out.String())
	}
	v, err := chromedp.Run(tctx, chromedp.Evaluate[string](`navigator.userAgent`))
	if err == nil {
		t.Logf("browser started in %s: %s", time.Since(start).Round(time.Millisecond), v)
	}
	return tctx
}

// session is one shopper's tab, with helpers that fail the test with the page's
// address and text, and a screenshot of it, when an expectation is not met in time.
type session struct {
	t     *testing.T
	ctx   context.Context // the whole flow
	base  string
	shots *shots
	name  string          // current step
	sctx  context.Context // current step's deadline
}

// step runs f with its own deadline; a failure inside stops the test.
func (b *session) step(name string, f func()) {
	b.t.Helper()
	if b.t.Failed() {
		b.t.FailNow()
	}
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	b.name, b.sctx = name, ctx
	start := time.Now()
	f()
	b.t.Logf("step %-8s ok in %s", name, time.Since(start).Round(time.Millisecond))
}

func (b *session) fatalf(format string, args ...any) {
	b.t.Helper()
	msg := fmt.Sprintf(format, args...)
	// A fresh context: the step's may be what ran out.
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
		b.shots.save("FAILED-"+b.name, png)
	}
	b.t.Fatalf("step %s: %s\n  at %s\n  page text:\n%s", b.name, msg, loc, indent(text))
}

func (b *session) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.sctx, actions...); err != nil {
		b.fatalf("%v", err)
	}
}

func (b *session) navigate(path string) {
	b.t.Helper()
	b.do(chromedp.Navigate(b.base + path))
}

func (b *session) click(sel string) {
	b.t.Helper()
	b.do(chromedp.Click(chromedp.CSS(sel)))
}

// text is the visible text (innerText) of the first element matching sel, once visible.
func (b *session) text(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.sctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.fatalf("text of %s: %v", sel, err)
	}
	return s
}

// poll evaluates js until it returns a non-empty string, tolerating the errors of a
// page that is navigating.
func (b *session) poll(what, js string) string {
	b.t.Helper()
	var last string
	for {
		got, err := chromedp.Run(b.sctx, chromedp.Evaluate[string](js))
		if err == nil && got != "" {
			return got
		}
		if err != nil {
			last = err.Error()
		}
		select {
		case <-b.sctx.Done():
			b.fatalf("waiting for %s: %v (last error: %s)", what, b.sctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitPath waits until the tab's path is path and its document is loaded.
func (b *session) waitPath(path string) {
	b.t.Helper()
	b.poll("path "+path, fmt.Sprintf(
		`location.pathname === %q && document.readyState === "complete" ? "yes" : ""`, path))
}

// waitText waits until the first element matching sel is visible and its visible
// text contains want.
func (b *session) waitText(sel, want string) {
	b.t.Helper()
	b.poll(fmt.Sprintf("%q in %s", want, sel), fmt.Sprintf(`(() => {
		const e = document.querySelector(%q);
		return e && e.checkVisibility() && e.innerText.includes(%q) ? "yes" : "";
	})()`, sel, want))
}

// waitRow waits for a visible element matching sel whose text contains key, and
// returns its visible text.
func (b *session) waitRow(sel, key string) string {
	b.t.Helper()
	return b.poll(fmt.Sprintf("%s with %q", sel, key), fmt.Sprintf(`(() => {
		const e = [...document.querySelectorAll(%q)].find(e => e.checkVisibility() && e.innerText.includes(%q));
		return e ? e.innerText : "";
	})()`, sel, key))
}

// shot saves a full-page PNG of the current page.
func (b *session) shot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.sctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.fatalf("screenshot: %v", err)
	}
	b.shots.save(name, png)
}

// shots numbers and writes the screenshots into e2e/screenshots.
type shots struct {
	t     *testing.T
	dir   string
	n     int
	names []string
}

func newShots(t *testing.T) *shots {
	dir := filepath.Join(moduleRoot(t), "e2e", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Only this run's pictures: a stale FAILED-*.png would mislead.
	old, _ := filepath.Glob(filepath.Join(dir, "*.png"))
	for _, f := range old {
		_ = os.Remove(f)
	}
	return &shots{t: t, dir: dir}
}

func (s *shots) save(name string, png []byte) {
	if !strings.HasPrefix(name, "FAILED-") {
		s.n++
		name = fmt.Sprintf("%d-%s", s.n, name)
	}
	file := name + ".png"
	if err := os.WriteFile(filepath.Join(s.dir, file), png, 0o644); err != nil {
		s.t.Errorf("screenshot %s: %v", file, err)
		return
	}
	s.names = append(s.names, file)
	s.t.Logf("screenshot e2e/screenshots/%s (%d KiB)", file, len(png)/1024)
}

// publish copies this run's screenshots to dir (docs/screenshots, for the README).
func (s *shots) publish(dir string) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		s.t.Error(err)
		return
	}
	for _, f := range s.names {
		b, err := os.ReadFile(filepath.Join(s.dir, f))
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, f), b, 0o644)
		}
		if err != nil {
			s.t.Error(err)
		}
	}
	s.t.Logf("copied %d screenshots to %s", len(s.names), dir)
}

func indent(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 3000 {
		s = s[:3000] + "…"
	}
	return "    " + strings.ReplaceAll(s, "\n", "\n    ")
}
