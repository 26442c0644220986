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
	"storefront/store/storetest"
)

// Budgets. The build is apart: a cold cgo build of sqlite can take a minute on CI.
const (
	buildTimeout = 5 * time.Minute
	startTimeout = 20 * time.Second
	flowTimeout  = 60 * time.Second // one device's whole browser session
	stepTimeout  = 15 * time.Second // one step: a page or two
	notifyWithin = 10 * time.Second // the emulator's first notify delivery
)

// browserNames are looked up in PATH, in this order.
var browserNames = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}

// shopEnv are the shop's configuration variables: none leaks in from the caller's
// environment, so the shop runs exactly as a new developer's `go run .` does.
var shopEnv = []string{"ADDR", "PUBLIC_URL", "DB", "KEYS_DIR", "ALIPAY_MODE", "ALIPAY_APP_ID",
	"ALIPAY_SELLER_ID", "ALIPAY_GATEWAY", "SESSION_SECRET", "ORDER_TTL", "RECONCILE_AFTER",
	"SANDBOX_TIME_SCALE", "SANDBOX_DB", "SANDBOX_ADDR", "PPROF_ADDR"}

var (
	tradeNoRE    = regexp.MustCompile(`^[0-9]{28}$`)
	outTradeNoRE = regexp.MustCompile(`^[0-9A-Za-z_]{1,64}$`)
)

// device is what the browser pretends to be.
type device struct {
	name          string // screenshot prefix: phone-1-goods.png
	width, height int64
	scale         float64 // device pixels per CSS pixel (of the screenshots too)
	mobile        bool    // mobile viewport (meta viewport honoured), touch, taps instead of clicks
	userAgent     string
	platform      string // navigator.platform
	noScript      bool   // JavaScript disabled in every page (the shop must not need it)
}

var (
	phone = device{name: "phone", width: 390, height: 844, scale: 2, mobile: true, noScript: true,
		userAgent: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 " +
			"(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
		platform: "iPhone"}
	desktop = device{name: "desktop", width: 1366, height: 900, scale: 1,
		userAgent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) " +
			"Chrome/126.0.0.0 Safari/537.36",
		platform: "Win32"}
)

// TestBrowser buys and pays as a new shopper twice, each on a fresh shop: on a phone
// (WAP pay, JavaScript off, every page checked for layout faults) and on a computer
// (page pay), where the dev operator then ships and refunds the shopper's orders in the
// back office, in a browser context of their own. See phone_test.go, desktop_test.go
// and operator_test.go.
func TestBrowser(t *testing.T) {
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
	bin := buildShop(t)
	for _, run := range []struct {
		dev  device
		flow func(*session)
	}{{phone, phoneFlow}, {desktop, func(b *session) {
		paidDay := beijingDay()
		desktopFlow(b)
		operatorFlow(b, paidDay)
	}}} {
		t.Run(run.dev.name, func(t *testing.T) {
			b := newSession(t, browser, bin, run.dev)
			run.flow(b)
			b.reportLayout()
			if !t.Failed() && os.Getenv("UPDATE_SCREENSHOTS") != "" {
				b.shots.publish(filepath.Join(moduleRoot(t), "docs", "screenshots"))
			}
		})
	}
}

// newSession starts a fresh shop and a browser emulating dev, for one shopper.
func newSession(t *testing.T, browser, bin string, dev device) *session {
	base, out := startShop(t, bin)
	shots := newShots(t, dev.name)
	ctx, cancel := context.WithTimeout(context.Background(), flowTimeout)
	t.Cleanup(cancel)
	ctx = startBrowser(t, ctx, browser, dev)
	return &session{t: t, ctx: ctx, base: base, out: out, dev: dev, shots: shots}
}

// otherUser opens a tab in a new browser context of the same browser (its own cookies,
// like another person's browser) emulating dev, on the same shop. Its screenshots are
// numbered with b's; its layout faults are its own (reportLayout).
func (b *session) otherUser(dev device) *session {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	b.t.Cleanup(cancel)
	if err := chromedp.Do(ctx, emulate(dev), chromedp.Navigate("about:blank")); err != nil {
		b.t.Fatalf("new browser context: %v", err)
	}
	return &session{t: b.t, ctx: ctx, base: b.base, out: b.out, dev: dev, shots: b.shots}
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
// /healthz, and returns its address and its stdout so far and to come. It stops the
// shop at the end (SIGTERM to its process group, then SIGKILL) and prints its output
// when the test failed.
func startShop(t *testing.T, bin string) (string, *shoptest.SyncBuffer) {
	t.Helper()
	addr := shoptest.FreeAddr(t)
	dir := t.TempDir()
	cmd := exec.Command(bin)
	cmd.Dir = dir // anything the shop writes by default lands here, not in the repo
	cmd.Env = append(cleanEnv(),
		"ADDR="+addr,
		"DB="+storetest.DSN(t), // an SQLite file, or with TEST_DB=postgres a PostgreSQL schema
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
	return base, &stdout
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
// profile, and returns a tab context emulating dev. The browser ends with the test.
func startBrowser(t *testing.T, ctx context.Context, path string, dev device) context.Context {
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
		chromedp.WindowSize(int(dev.width), int(dev.height)),
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
	// The viewport is exactly the device's (headless chromium takes room off the window
	// for absent browser chrome), and scrollbars are hidden so that a long page's
	// screenshot is as wide as the device. The User-Agent is set in the tab, so the shop
	// sees it in every request (it picks WAP pay for a phone's).
	if err := chromedp.Do(tctx, emulate(dev), chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start %s: %v\n%s", path, err, out.String())
	}
	ua, err := chromedp.Run(tctx, chromedp.Evaluate[string](`navigator.userAgent + " · " + innerWidth + "×" + innerHeight + " · touch points " + navigator.maxTouchPoints`))
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	t.Logf("browser started in %s: %s", time.Since(start).Round(time.Millisecond), ua)
	if dev.noScript {
		// The page's own scripts must not run (DevTools' evaluations still do).
		if err := chromedp.Do(tctx, chromedp.Navigate(`data:text/html,<title>off</title><script>document.title="on"</script>`)); err != nil {
			t.Fatal(err)
		}
		if title, err := chromedp.Run(tctx, chromedp.Title()); err != nil || title != "off" {
			t.Fatalf("JavaScript is not disabled: a page script set the title to %q (%v)", title, err)
		}
		t.Log("JavaScript disabled in the tab")
	}
	return tctx
}

// emulate makes a tab dev: its User-Agent, viewport, touch, hidden scrollbars, and
// JavaScript off if dev has it off.
func emulate(dev device) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		if _, err := cdp.Call(ctx, t, emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{
			UserAgent: dev.userAgent, Platform: dev.platform, AcceptLanguage: "zh-CN,zh"}); err != nil {
			return err
		}
		if _, err := dev.metrics(dev.height)(ctx, t); err != nil {
			return err
		}
		if _, err := cdp.Call(ctx, t, emulation.SetTouchEmulationEnabled, emulation.SetTouchEmulationEnabledParams{
			Enabled: dev.mobile, MaxTouchPoints: 5}); err != nil {
			return err
		}
		if _, err := cdp.Call(ctx, t, emulation.SetScrollbarsHidden, emulation.SetScrollbarsHiddenParams{Hidden: true}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, t, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: dev.noScript})
		return err
	})
}

// metrics sets the viewport to the device's width and the given height.
func (d device) metrics(height int64) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		orientation := emulation.ScreenOrientationTypeLandscapePrimary
		angle := int64(90)
		if d.height > d.width {
			orientation, angle = emulation.ScreenOrientationTypePortraitPrimary, 0
		}
		_, err := cdp.Call(ctx, t, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{
			Width: d.width, Height: height, DeviceScaleFactor: d.scale, Mobile: d.mobile,
			ScreenWidth: d.width, ScreenHeight: d.height,
			ScreenOrientation: &emulation.ScreenOrientation{Type: orientation, Angle: angle}})
		return err
	})
}

// session is one shopper's tab, with helpers that fail the test with the page's
// address and text, and a screenshot of it, when an expectation is not met in time.
type session struct {
	t      *testing.T
	ctx    context.Context // the whole flow
	base   string
	out    *shoptest.SyncBuffer // the shop's stdout
	dev    device
	shots  *shots
	name   string          // current step
	sctx   context.Context // current step's deadline
	layout []string        // layout faults found so far, one per line
	pages  int             // pages checked
	widths map[int64]int   // pages checked at each screen width
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
	b.t.Logf("step %-15s ok in %s", name, time.Since(start).Round(time.Millisecond))
}

func (b *session) fatalf(format string, args ...any) {
	b.t.Helper()
	msg := fmt.Sprintf(format, args...)
	// A fresh context: the step's may be what ran out.
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	if png, err := b.capture(ctx); err == nil {
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

// eval evaluates js, which must give a string.
func (b *session) eval(js string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.sctx, chromedp.Evaluate[string](js))
	if err != nil {
		b.fatalf("evaluate: %v\n%s", err, js)
	}
	return s
}

// navigate opens path (of the shop) as if typed in the address bar, and checks the
// page's layout.
func (b *session) navigate(path string) {
	b.t.Helper()
	b.do(chromedp.Navigate(b.base + path))
	b.checkLayout()
}

// press scrolls the element to the middle of the screen, checks that nothing covers
// it there (the fixed tab bar, say), and taps it on a phone or clicks it on a computer.
func (b *session) press(sel string) {
	b.t.Helper()
	b.poll("visible "+sel, fmt.Sprintf(`(() => {
		const e = document.querySelector(%q);
		return e && e.checkVisibility() ? "yes" : "";
	})()`, sel))
	hit := b.eval(fmt.Sprintf(`(() => {
		const e = document.querySelector(%q);
		e.scrollIntoView({block: "center", inline: "center"});
		const r = e.getBoundingClientRect();
		const at = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
		if (!at) return "nothing at its centre (off screen?)";
		if (e === at || e.contains(at) || at.contains(e) && at.tagName === "LABEL") return "";
		return "covered by <" + at.tagName.toLowerCase() + (at.className ? "." + String(at.className).split(" ").join(".") : "") + "> " + JSON.stringify(at.innerText.slice(0, 40));
	})()`, sel))
	if hit != "" {
		b.fatalf("cannot press %s: %s", sel, hit)
	}
	if b.dev.mobile {
		b.do(chromedp.Tap(chromedp.CSS(sel)))
	} else {
		b.do(chromedp.Click(chromedp.CSS(sel)))
	}
}

// follow presses sel and waits for the new page it leads to (whatever its address:
// a form may come back to the same path), then checks its layout.
func (b *session) follow(sel string) {
	b.t.Helper()
	before := b.eval(`String(performance.timeOrigin)`)
	b.press(sel)
	b.poll("a new page after pressing "+sel, fmt.Sprintf(
		`String(performance.timeOrigin) !== %q && document.readyState === "complete" ? "yes" : ""`, before))
	b.checkLayout()
}

// fill types v into an empty text field (a phone's keyboard, key by key).
func (b *session) fill(sel, v string) {
	b.t.Helper()
	b.do(chromedp.SendKeys(chromedp.CSS(sel), v))
}

// setValue replaces a field's value (a number box holding "1").
func (b *session) setValue(sel, v string) {
	b.t.Helper()
	b.do(chromedp.SetValue(chromedp.CSS(sel), v))
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

// attr is an attribute of the first element matching sel ("" if none).
func (b *session) attr(sel, name string) string {
	b.t.Helper()
	return b.eval(fmt.Sprintf(`(() => { const e = document.querySelector(%q); return e ? e.getAttribute(%q) || "" : ""; })()`, sel, name))
}

// link is a selector for the visible link inside scope whose text is text.
func (b *session) link(scope, text string) string {
	b.t.Helper()
	href := b.poll(fmt.Sprintf("link %q in %s", text, scope), fmt.Sprintf(`(() => {
		const a = [...document.querySelectorAll(%q)].find(a => a.checkVisibility() && a.innerText.trim() === %q);
		return a ? a.getAttribute("href") : "";
	})()`, scope+" a", text))
	return fmt.Sprintf(`%s a[href=%q]`, scope, href)
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

// query is the page's query parameter name.
func (b *session) query(name string) string {
	b.t.Helper()
	return b.eval(fmt.Sprintf(`new URLSearchParams(location.search).get(%q) || ""`, name))
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

// contains fails unless got holds every one of wants.
func (b *session) contains(what, got string, wants ...string) {
	b.t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			b.fatalf("%s %q lacks %q", what, got, w)
		}
	}
}

// waitNotified reloads the emulator's console until the trade outTradeNo shows a
// notify delivery the shop answered exactly "success", and returns the trade's card.
func (b *session) waitNotified(outTradeNo string) string {
	b.t.Helper()
	deadline := time.Now().Add(notifyWithin)
	var last string
	for {
		b.do(chromedp.Navigate(b.base + "/sandbox/"))
		b.waitText("main h1", "沙箱控制台")
		got, err := chromedp.Run(b.sctx, chromedp.Evaluate[string](fmt.Sprintf(`(() => {
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
	b.checkLayout()
	return b.waitRow("article.trade", outTradeNo)
}

// capture is a PNG of the whole page. On a phone the viewport is stretched to the
// page's height for the picture, so the fixed tab bar sits at the bottom of the page
// as on the phone's screen (a capture beyond the viewport would paint it mid-page).
func (b *session) capture(ctx context.Context) ([]byte, error) {
	if !b.dev.mobile {
		return chromedp.Run(ctx, chromedp.FullScreenshot(100))
	}
	h, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`Math.ceil(document.documentElement.scrollHeight)`))
	if err != nil {
		return nil, err
	}
	if err := chromedp.Do(ctx, b.dev.metrics(max(int64(h), b.dev.height))); err != nil {
		return nil, err
	}
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if rerr := chromedp.Do(ctx, b.dev.metrics(b.dev.height)); err == nil {
		err = rerr
	}
	return png, err
}

// shot saves a PNG of the current page.
func (b *session) shot(name string) {
	b.t.Helper()
	png, err := b.capture(b.sctx)
	if err != nil {
		b.fatalf("screenshot: %v", err)
	}
	b.shots.save(name, png)
}

// shots numbers and writes one device's screenshots into e2e/screenshots.
type shots struct {
	t      *testing.T
	dir    string
	prefix string
	n      int
	names  []string
}

func newShots(t *testing.T, prefix string) *shots {
	dir := filepath.Join(moduleRoot(t), "e2e", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Only this run's pictures: a stale FAILED-*.png would mislead.
	for _, pattern := range []string{prefix + "-*.png", "FAILED-" + prefix + "-*.png"} {
		old, _ := filepath.Glob(filepath.Join(dir, pattern))
		for _, f := range old {
			_ = os.Remove(f)
		}
	}
	return &shots{t: t, dir: dir, prefix: prefix}
}

func (s *shots) save(name string, png []byte) {
	if failed, ok := strings.CutPrefix(name, "FAILED-"); ok {
		name = "FAILED-" + s.prefix + "-" + failed
	} else {
		s.n++
		name = fmt.Sprintf("%s-%d-%s", s.prefix, s.n, name)
	}
	file := name + ".png"
	if err := os.WriteFile(filepath.Join(s.dir, file), png, 0o644); err != nil {
		s.t.Errorf("screenshot %s: %v", file, err)
		return
	}
	if !strings.HasPrefix(file, "FAILED-") {
		s.names = append(s.names, file)
	}
	s.t.Logf("screenshot e2e/screenshots/%s (%d KiB)", file, len(png)/1024)
}

// publish copies this run's screenshots to dir (docs/screenshots, for the README),
// replacing the device's earlier ones.
func (s *shots) publish(dir string) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		s.t.Error(err)
		return
	}
	old, _ := filepath.Glob(filepath.Join(dir, s.prefix+"-*.png"))
	for _, f := range old {
		_ = os.Remove(f)
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
