package payment

// Fuzzing the notify path (issue 6):
//
//	go test -run=^$ -fuzz=FuzzParseForm -fuzztime=20s ./payment/
//	go test -run=^$ -fuzz=FuzzNotify -fuzztime=20s ./payment/
//
// Without -fuzz both run their seed corpus (and testdata/fuzz) as regression tests.

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"
	"golang.org/x/text/encoding/simplifiedchinese"

	"storefront/money"
	"storefront/store"
)

func FuzzParseForm(f *testing.F) {
	gbk, _ := simplifiedchinese.GBK.NewEncoder().String("subject=小米手环&charset=gbk")
	for _, s := range []struct{ body, ct string }{
		{"a=1&b=2", "application/x-www-form-urlencoded"},
		{"charset=utf-8&subject=%E5%B0%8F%E7%B1%B3", "application/x-www-form-urlencoded; charset=utf-8"},
		{url.Values{"subject": {gbk}}.Encode(), "application/x-www-form-urlencoded; charset=gbk"},
		{"charset=GB2312&x=%C4%E3", ""},
		{"charset=latin1&x=y", ""},
		{"%zz=1", ""},
		{"a=%FF%FE", "text/plain; charset=\"utf-8\""},
		{"", ";;;charset"},
		{"a=1;b=2&&&=&x", "application/x-www-form-urlencoded; charset=gb18030"},
	} {
		f.Add([]byte(s.body), s.ct)
	}
	f.Fuzz(func(t *testing.T, body []byte, ct string) {
		form, err := ParseForm(body, ct)
		if err != nil {
			return
		}
		for k, vs := range form.Values {
			if !utf8.ValidString(k) {
				t.Fatalf("decoded key %q is not UTF-8", k)
			}
			for _, v := range vs {
				if !utf8.ValidString(v) {
					t.Fatalf("decoded value %q is not UTF-8", v)
				}
			}
		}
		// The audit trail must always be storable JSON.
		if raw := rawJSON(form.Values); !json.Valid([]byte(raw)) {
			t.Fatalf("rawJSON is not JSON: %s", raw)
		}
	})
}

// fuzzShop is a Service on a real store with three unpaid orders, shared by every
// iteration of one fuzz worker.
type fuzzShop struct {
	svc    *Service
	st     *store.Store
	db     *sqlx.DB
	alipay *rsa.PrivateKey
	orders []store.Order
	seeds  map[string]bool // signed content of the validly signed seeds
}

var fuzzKeys = sync.OnceValues(func() (*rsa.PrivateKey, *rsa.PrivateKey) {
	app, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	ali, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return app, ali
})

const fuzzAppID, fuzzSeller = "2021000000000001", "2088000000000001"

func newFuzzShop(tb testing.TB) *fuzzShop {
	tb.Helper()
	app, ali := fuzzKeys()
	client, err := NewClient(ClientOptions{AppID: fuzzAppID, AppPrivateKey: EncodePrivateKey(app),
		AlipayPublicKey: EncodePublicKey(&ali.PublicKey), Gateway: "http://127.0.0.1:1/gateway.do", Timeout: time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	schema, err := os.ReadFile(filepath.Join("..", "schema.sql"))
	if err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(tb.TempDir(), "shop.db")
	st, err := store.Open(path, string(schema), nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	db, err := sqlx.Open("sqlite3", store.DSN(path))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	ctx := context.Background()
	u, err := st.CreateUser(ctx, "fuzz@example.com", "x")
	if err != nil {
		tb.Fatal(err)
	}
	g, err := st.AddGoods(ctx, store.Goods{Name: "小米手环", Price: money.Fen(19900), Virtual: true})
	if err != nil {
		tb.Fatal(err)
	}
	fs := &fuzzShop{st: st, db: db, alipay: ali, seeds: map[string]bool{}}
	for i := range 3 {
		o, _, err := st.CreateOrder(ctx, store.NewOrder{OutTradeNo: "2026112210000000000000000" + string(rune('1'+i)),
			UserID: u.ID, Lines: []store.Line{{GoodsID: g.ID, Qty: int64(i + 1)}}, TTL: time.Hour})
		if err != nil {
			tb.Fatal(err)
		}
		fs.orders = append(fs.orders, o)
	}
	ver, err := NewKeyVerifier(EncodePublicKey(&ali.PublicKey))
	if err != nil {
		tb.Fatal(err)
	}
	fs.svc = NewService(client, st, Config{AppID: fuzzAppID, SellerID: fuzzSeller, PublicURL: "http://shop.test",
		Verifier: ver}, nil, discardLogger())
	return fs
}

// notifyContent is Alipay's notify rule: non-empty params except sign and sign_type, sorted.
func notifyContent(v url.Values) string {
	keys := make([]string, 0, len(v))
	for k := range v {
		if k == "sign" || k == "sign_type" || v.Get(k) == "" {
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + v.Get(k)
	}
	return strings.Join(parts, "&")
}

func (fs *fuzzShop) notify(o store.Order, mod func(url.Values)) url.Values {
	v := url.Values{"notify_time": {"2026-11-22 10:05:00"}, "notify_type": {"trade_status_sync"},
		"notify_id": {"n" + o.OutTradeNo}, "app_id": {fuzzAppID}, "charset": {"utf-8"}, "version": {"1.0"},
		"sign_type": {"RSA2"}, "trade_no": {"2026112222001400000000000001"}, "out_trade_no": {o.OutTradeNo},
		"seller_id": {fuzzSeller}, "trade_status": {"TRADE_SUCCESS"}, "total_amount": {o.Total.String()},
		"gmt_payment": {"2026-11-22 10:04:30"}}
	if mod != nil {
		mod(v)
	}
	sum := sha256.Sum256([]byte(notifyContent(v)))
	sig, err := rsa.SignPKCS1v15(rand.Reader, fs.alipay, crypto.SHA256, sum[:])
	if err != nil {
		panic(err)
	}
	v.Set("sign", base64.StdEncoding.EncodeToString(sig))
	return v
}

func FuzzNotify(f *testing.F) {
	fs := newFuzzShop(f)
	o1, o2, o3 := fs.orders[0], fs.orders[1], fs.orders[2]
	valid := []url.Values{
		fs.notify(o1, nil), // the only seed that may pay an order (and does)
		fs.notify(o2, func(v url.Values) { v.Set("total_amount", "0.01") }),                // signed, wrong amount: flagged
		fs.notify(o3, func(v url.Values) { v.Set("trade_status", "TRADE_CLOSED") }),        // closes o3
		fs.notify(o2, func(v url.Values) { v.Set("app_id", "2021999999999999") }),          // another app
		fs.notify(o2, func(v url.Values) { v.Set("seller_id", "2088999999999999") }),       // another seller
		fs.notify(o2, func(v url.Values) { v.Set("out_trade_no", "nope") }),                // unknown order
		fs.notify(o1, func(v url.Values) { v.Set("total_amount", o1.Total.String()+"0") }), // loose amount
		fs.notify(o2, func(v url.Values) { v.Set("trade_status", "WAIT_BUYER_PAY") }),
	}
	for _, v := range valid {
		content := notifyContent(v)
		// Only payable content counts as a "validly signed seed" for the paid check.
		fs.seeds[content] = true
		f.Add([]byte(v.Encode()), "application/x-www-form-urlencoded; charset=utf-8")
	}
	tampered := fs.notify(o2, nil)
	tampered.Set("total_amount", "0.01")
	f.Add([]byte(tampered.Encode()), "application/x-www-form-urlencoded")
	f.Add([]byte("sign=&out_trade_no="+o1.OutTradeNo+"&trade_status=TRADE_SUCCESS"), "")
	f.Add([]byte("charset=gbk&out_trade_no=%C4%E3&sign=AAAA"), "application/x-www-form-urlencoded; charset=gbk")
	f.Add([]byte(strings.Repeat("a=b&", 1000)), "")
	f.Add([]byte{0xff, 0xfe, '=', 0}, "text/plain")

	ctx := context.Background()
	f.Fuzz(func(t *testing.T, body []byte, ct string) {
		ev, err := fs.svc.HandleNotify(ctx, body, ct, "fuzz")
		if err != nil {
			t.Fatalf("HandleNotify returned an error (not a verdict): %v", err)
		}
		form, perr := ParseForm(body, ct)
		fromSeed := perr == nil && form.Raw.Get("sign") != "" && fs.seeds[notifyContent(form.Raw)]
		if !fromSeed && ev.Verdict != store.VerdictRejected {
			t.Fatalf("a body that is no validly signed seed got verdict %s (%s)", ev.Verdict, ev.Reason)
		}
		var paid []string
		if err := fs.db.Select(&paid, `SELECT out_trade_no FROM orders WHERE status <> 'unpaid'`); err != nil {
			t.Fatal(err)
		}
		for _, no := range paid {
			if !fromSeed {
				t.Fatalf("order %s changed state from a fuzzed body", no)
			}
			if no == o2.OutTradeNo {
				var status string
				_ = fs.db.Get(&status, `SELECT status FROM orders WHERE out_trade_no = ?`, no)
				if status == store.StatusPaid {
					t.Fatalf("order %s paid by a notify whose amount differs", no)
				}
			}
		}
		// Reset so the next iteration starts from three unpaid orders.
		if len(paid) > 0 {
			if _, err := fs.db.Exec(`UPDATE orders SET status = 'unpaid', trade_no = '', paid_at = NULL, closed_at = NULL`); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestFuzzNotifyControl proves FuzzNotify's harness can see a payment: the valid seed
// pays its order, the wrong-amount seed is flagged and pays nothing.
func TestFuzzNotifyControl(t *testing.T) {
	fs := newFuzzShop(t)
	ctx := context.Background()
	ev, err := fs.svc.HandleNotify(ctx, []byte(fs.notify(fs.orders[0], nil).Encode()), "", "control")
	if err != nil || ev.Verdict != store.VerdictApplied {
		t.Fatalf("valid notify: %v %s %s", err, ev.Verdict, ev.Reason)
	}
	ev, err = fs.svc.HandleNotify(ctx, []byte(fs.notify(fs.orders[1], func(v url.Values) { v.Set("total_amount", "0.01") }).Encode()), "", "control")
	if err != nil || ev.Verdict != store.VerdictFlagged {
		t.Fatalf("wrong amount: %v %s %s", err, ev.Verdict, ev.Reason)
	}
	var paid int
	_ = fs.db.Get(&paid, `SELECT COUNT(*) FROM orders WHERE status = 'paid'`)
	if paid != 1 {
		t.Fatalf("%d orders paid, want 1", paid)
	}
}
