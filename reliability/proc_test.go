package reliability

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"storefront/shoptest"
	"storefront/store"
	"storefront/store/storetest"
)

// moduleRoot is the directory holding go.mod.
func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..")
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// shopBinary builds the real binary once per test run (go build -o tmp/shop-reliability .
// from the module root; its own name so a binary others are running is never replaced).
//
// SHOP_BIN=/path/to/binary runs the suite against another build instead (an earlier
// release, to see a test fail on the code it guards against).
func shopBinary(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("SHOP_BIN"); bin != "" {
		return bin
	}
	buildOnce.Do(func() {
		root := moduleRoot()
		binPath = filepath.Join(root, "tmp", "shop-reliability")
		cmd := exec.Command("go", "build", "-o", binPath, ".")
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// proc is one run of the binary.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // valid after done
}

func startProc(t *testing.T, bin string, args []string, env []string, logPath string) *proc {
	t.Helper()
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	t.Cleanup(func() { p.kill() })
	return p
}

// kill SIGKILLs the process (if still running) and waits for it.
func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// waitHTTP polls url until it answers 200 or the deadline passes.
func waitHTTP(t *testing.T, p *proc, u string, within time.Duration) {
	t.Helper()
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			t.Fatalf("process exited while starting: %v", p.err)
		default:
		}
		resp, err := c.Get(u)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s not up within %v", u, within)
}

// shopper is one browser against the real shop.
type shopper struct {
	base   string
	email  string
	client *http.Client
}

func newShopper(base, email string) *shopper {
	jar, _ := cookiejar.New(nil)
	c := newClient(10 * time.Second)
	c.Jar = jar
	return &shopper{base: base, email: email, client: c}
}

func (s *shopper) csrf() (string, error) {
	u, _ := url.Parse(s.base)
	for _, c := range s.client.Jar.Cookies(u) {
		if c.Name == "_csrf" {
			return c.Value, nil
		}
	}
	resp, err := s.client.Get(s.base + "/login") // a page with a form mints the token
	if err != nil {
		return "", err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	for _, c := range s.client.Jar.Cookies(u) {
		if c.Name == "_csrf" {
			return c.Value, nil
		}
	}
	return "", fmt.Errorf("no _csrf cookie (GET /login answered %d)", resp.StatusCode)
}

// post submits a form with the CSRF token and returns status and Location.
func (s *shopper) post(path string, form url.Values) (int, string, error) {
	tok, err := s.csrf()
	if err != nil {
		return 0, "", err
	}
	if form == nil {
		form = url.Values{}
	}
	form.Set("_csrf", tok)
	resp, err := s.client.Post(s.base+path, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		return 0, "", err
	}
	_, rerr := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Location"), rerr
}

// login signs up (or, if a lost response already created the account, logs in).
func (s *shopper) login(ctx context.Context) error {
	for ctx.Err() == nil {
		code, _, err := s.post("/signup", url.Values{"email": {s.email}, "password": {"correct horse battery"}})
		if err == nil && code == http.StatusConflict {
			code, _, err = s.post("/login", url.Values{"email": {s.email}, "password": {"correct horse battery"}})
		}
		if err == nil && code == http.StatusSeeOther {
			// A delivery address, so purchases go straight to the cashier (a lost answer
			// may have saved one already: a second is harmless).
			code, _, err = s.post("/addresses", url.Values{"name": {"张三"}, "phone": {"13800138000"},
				"region": {"浙江省 杭州市"}, "detail": {"文三路 100 号"}})
			if err == nil && code == http.StatusSeeOther {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return ctx.Err()
}

// outTradeNo reads out_trade_no from a signed gateway URL's biz_content.
func outTradeNo(gateway string) (string, error) {
	u, err := url.Parse(gateway)
	if err != nil {
		return "", err
	}
	var biz struct {
		OutTradeNo string `json:"out_trade_no"`
	}
	if err := json.Unmarshal([]byte(u.Query().Get("biz_content")), &biz); err != nil || biz.OutTradeNo == "" {
		return "", fmt.Errorf("no out_trade_no in %s", gateway)
	}
	return biz.OutTradeNo, nil
}

// shopDB opens the shop's database for reading alongside the running shop.
func shopDB(t *testing.T, dsn string) *storetest.Raw {
	t.Helper()
	return storetest.Open(t, dsn)
}

// orderState is one order as the shop's database has it.
type orderState struct {
	Status  string
	Applied int // applied "paid" events
}

func orderStates(db *storetest.Raw) (map[string]orderState, error) {
	rows := []struct {
		No      string `db:"out_trade_no"`
		Status  string `db:"status"`
		Applied int    `db:"applied"`
	}{}
	err := db.Select(&rows, `SELECT o.out_trade_no, o.status,
		(SELECT COUNT(*) FROM payment_events e WHERE e.order_id = o.id AND e.verdict = 'applied'
		   AND e.trade_status IN ('TRADE_SUCCESS', 'TRADE_FINISHED')) AS applied
		FROM orders o`)
	if err != nil {
		return nil, err
	}
	m := make(map[string]orderState, len(rows))
	for _, r := range rows {
		m[r.No] = orderState{Status: r.Status, Applied: r.Applied}
	}
	return m, nil
}

func appliedBySource(db *storetest.Raw) map[string]int {
	rows := []struct {
		Source string `db:"source"`
		N      int    `db:"n"`
	}{}
	_ = db.Select(&rows, `SELECT source, COUNT(*) AS n FROM payment_events WHERE verdict = 'applied'
		AND trade_status IN ('TRADE_SUCCESS', 'TRADE_FINISHED') GROUP BY source`)
	m := map[string]int{}
	for _, r := range rows {
		m[r.Source] = r.N
	}
	return m
}

// integrity is the engine's consistency check of the shop's database ("ok" if sound).
func integrity(t *testing.T, dsn string) string {
	t.Helper()
	st, err := store.Open(dsn, schemaText(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	res, err := st.IntegrityCheck(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func schemaText(t *testing.T) string {
	b, err := os.ReadFile(shoptest.SchemaPath())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
