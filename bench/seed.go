package main

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"

	"storefront/money"
	"storefront/payment"
	"storefront/shoptest"
	"storefront/store"
)

// Local-mode identities (README "Settings").
const (
	appID    = "2021000000000001"
	sellerID = "2088000000000001"
	// notifyFen is the amount of every order a notify pays.
	notifyFen = 19900
)

const timeLayout = "2006-01-02T15:04:05.000Z" // store's stored time format

// seeded is what the load scenarios need after seeding.
type seeded struct {
	cookie      string // Cookie header of the logged-in shopper (session + _csrf)
	csrf        string
	shopperID   int64
	payerID     int64 // owner of the orders the notifies pay
	notifyNos   []string
	replayNo    string
	goodsForBuy int64
	address     map[string]string // the shopper's default address, as posted
}

// benchAddress is the shopper's default delivery address.
var benchAddress = map[string]string{"name": "压测用户", "phone": "13800138000", "region": "浙江省 杭州市 西湖区",
	"detail": "文三路 90 号 东部软件园 3 号楼 501 室"}

// seed adds goods up to 20, signs a shopper up over HTTP and gives them a default
// address, gives them ordersN orders (one a second up to now: newer than the seeded
// history, so ids keep growing with time), and creates notifyN+1 unpaid orders for
// another user, all in bulk transactions.
func (b *bench) seed(ctx context.Context, ordersN, notifyN int) (*seeded, error) {
	schema, err := os.ReadFile(filepath.Join(b.root, "schema.sql"))
	if err != nil {
		return nil, err
	}
	st, err := store.Open(benchDSN(b.srv.dsn), string(schema), nil)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	gs, err := st.ListGoods(ctx)
	if err != nil {
		return nil, err
	}
	for i := len(gs); i < 20; i++ {
		if _, err := st.AddGoods(ctx, catalogueGoods(i)); err != nil {
			return nil, err
		}
	}
	if gs, err = st.ListGoods(ctx); err != nil {
		return nil, err
	}
	s := &seeded{}
	for _, g := range gs { // unlimited stock, so purchases never run out
		if g.Stock == nil {
			s.goodsForBuy = g.ID
			break
		}
	}
	if len(gs) != 20 || s.goodsForBuy == 0 {
		return nil, fmt.Errorf("expected 20 goods with one of unlimited stock, have %d", len(gs))
	}

	email := fmt.Sprintf("bench-%d@example.com", time.Now().UnixNano())
	if s.cookie, s.csrf, err = b.signup(ctx, email); err != nil {
		return nil, err
	}
	u, err := st.UserByEmail(ctx, email)
	if err != nil {
		return nil, err
	}
	s.shopperID = u.ID
	// Physical goods need a delivery address: without one, POST /purchase/:id answers 303
	// to 确认订单 instead of the cashier.
	if err := b.addAddress(ctx, s.cookie, s.csrf, benchAddress); err != nil {
		return nil, err
	}
	s.address = benchAddress
	payer, err := st.CreateUser(ctx, "bench-payer-"+email, "$2a$10$notaloginnotaloginnotaloginnotaloginnotaloginnotalogi")
	if err != nil {
		return nil, err
	}
	s.payerID = payer.ID

	db, err := b.openDB()
	if err != nil {
		return nil, err
	}
	defer db.Close()
	now := time.Now().UTC()
	statuses := []string{"paid", "unpaid", "closed", "paid", "cancelled"}
	err = bulkOrders(ctx, db, ordersN, func(i int) orderRow {
		st := statuses[i%len(statuses)]
		r := orderRow{no: fmt.Sprintf("B%s%012d", now.Format("20060102150405"), i), user: s.shopperID,
			fen: int64(1000 + i%5000), status: st, goods: gs[i%len(gs)].ID, name: gs[i%len(gs)].Name,
			created: now.Add(-time.Duration(ordersN-i) * time.Second)}
		if st == "paid" {
			r.tradeNo = fmt.Sprintf("2026112222001%015d", i)
		}
		return r
	})
	if err != nil {
		return nil, fmt.Errorf("seeding shopper orders: %w", err)
	}
	s.notifyNos = make([]string, notifyN)
	for i := range s.notifyNos {
		s.notifyNos[i] = fmt.Sprintf("N%s%012d", now.Format("20060102150405"), i)
	}
	s.replayNo = fmt.Sprintf("R%s%012d", now.Format("20060102150405"), 0)
	err = bulkOrders(ctx, db, notifyN+1, func(i int) orderRow {
		no := s.replayNo
		if i < notifyN {
			no = s.notifyNos[i]
		}
		return orderRow{no: no, user: s.payerID, fen: notifyFen, status: "unpaid", goods: gs[0].ID,
			name: gs[0].Name, created: now}
	})
	if err != nil {
		return nil, fmt.Errorf("seeding notify orders: %w", err)
	}
	return s, nil
}

type orderRow struct {
	no, status, tradeNo, name string
	user, fen, goods          int64
	created                   time.Time
}

// bulkOrders inserts n orders (and one item each) in one transaction. The order's id
// comes back from INSERT … RETURNING (pgx has no LastInsertId).
func bulkOrders(ctx context.Context, db *sqlx.DB, n int, row func(int) orderRow) error {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	insO, err := tx.PrepareContext(ctx, tx.Rebind(`INSERT INTO orders (out_trade_no, user_id, subject, total_fen, status,
		trade_no, created_at, expires_at, paid_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`))
	if err != nil {
		return err
	}
	defer insO.Close()
	insI, err := tx.PrepareContext(ctx, tx.Rebind(`INSERT INTO order_items (order_id, goods_id, name, unit_fen, qty)
		VALUES (?, ?, ?, ?, 1)`))
	if err != nil {
		return err
	}
	defer insI.Close()
	for i := range n {
		r := row(i)
		var paidAt any
		if r.status == "paid" {
			paidAt = r.created.Add(time.Minute).Format(timeLayout)
		}
		var id int64
		if err := insO.QueryRowContext(ctx, r.no, r.user, r.name, r.fen, r.status, r.tradeNo,
			r.created.Format(timeLayout), r.created.Add(240*time.Hour).Format(timeLayout), paidAt).Scan(&id); err != nil {
			return err
		}
		if _, err := insI.ExecContext(ctx, id, r.goods, r.name, r.fen); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// signup creates the shopper over HTTP (GET /signup for the CSRF cookie, then POST)
// and returns the Cookie header that carries the session and the CSRF token.
func (b *bench) signup(ctx context.Context, email string) (cookie, csrf string, err error) {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	base, _ := url.Parse(b.srv.base)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.srv.base+"/signup", nil)
	resp, err := c.Do(req)
	if err != nil {
		return "", "", err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	for _, ck := range jar.Cookies(base) {
		if ck.Name == "_csrf" {
			csrf = ck.Value
		}
	}
	if csrf == "" {
		return "", "", fmt.Errorf("GET /signup set no _csrf cookie (status %d)", resp.StatusCode)
	}
	form := url.Values{"email": {email}, "password": {"correct horse battery staple"}, "_csrf": {csrf}}
	req, _ = http.NewRequestWithContext(ctx, http.MethodPost, b.srv.base+"/signup", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err = c.Do(req)
	if err != nil {
		return "", "", err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		return "", "", fmt.Errorf("POST /signup: %d %.200s", resp.StatusCode, body)
	}
	var parts []string
	hasSession := false
	for _, ck := range jar.Cookies(base) {
		parts = append(parts, ck.Name+"="+ck.Value)
		if ck.Name == "shop_session" {
			hasSession = true
		}
		if ck.Name == "_csrf" {
			csrf = ck.Value
		}
	}
	if !hasSession {
		return "", "", fmt.Errorf("POST /signup set no session cookie")
	}
	return strings.Join(parts, "; "), csrf, nil
}

// addAddress gives the shopper a default delivery address over HTTP, as the address
// book's form does.
func (b *bench) addAddress(ctx context.Context, cookie, csrf string, a map[string]string) error {
	form := url.Values{"_csrf": {csrf}, "default": {"1"}}
	for k, v := range a {
		form.Set(k, v)
	}
	u := b.srv.base + "/addresses"
	if err := mustLoopback(u); err != nil {
		return err
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Cookie", cookie)
	c := &http.Client{Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		return fmt.Errorf("POST /addresses: %d %.300s", resp.StatusCode, body)
	}
	return nil
}

// notify builds a TRADE_SUCCESS notify for out_trade_no, unsigned, and the string
// Alipay signs: non-empty params except sign and sign_type, sorted, k=v joined by &.
func notify(no string, i int) (url.Values, string) {
	amount := money.Fen(notifyFen).String()
	v := url.Values{
		"notify_time": {"2026-11-22 10:05:00"}, "notify_type": {"trade_status_sync"}, "notify_id": {"bench" + no},
		"app_id": {appID}, "auth_app_id": {appID}, "charset": {"utf-8"}, "version": {"1.0"}, "sign_type": {"RSA2"},
		"trade_no": {fmt.Sprintf("2026112222001%015d", i)}, "out_trade_no": {no}, "buyer_id": {"2088102177846880"},
		"buyer_logon_id": {"ben***@alipay.test"}, "seller_id": {sellerID}, "trade_status": {"TRADE_SUCCESS"},
		"total_amount": {amount}, "receipt_amount": {amount}, "buyer_pay_amount": {amount},
		"subject": {"bench"}, "gmt_create": {"2026-11-22 10:04:00"}, "gmt_payment": {"2026-11-22 10:04:30"},
	}
	return v, shoptest.SignContent(v)
}

// sandboxKey is the emulator's ("Alipay's") private key, precomputed for signing.
func (b *bench) sandboxKey() (*rsa.PrivateKey, error) {
	pemBytes, err := os.ReadFile(filepath.Join(b.srv.keysDir, payment.SandboxPrivateKeyFile))
	if err != nil {
		return nil, err
	}
	key, err := payment.ParsePrivateKey(pemBytes)
	if err != nil {
		return nil, err
	}
	key.Precompute()
	return key, nil
}

// signCeiling signs with the emulator's key from one goroutine per core for d (whatever
// GOMAXPROCS the generator runs with at the time: with -gen-procs 1 it measured one
// core) and returns the signatures per second: the signing ceiling again, measured beside the
// scenario it is the reference of. This machine's speed drifts by a quarter within a
// minute (the ceiling at the start of one run and beside its purchases differed so):
// a ratio of two figures taken minutes apart measured that drift as much as the shop.
func (b *bench) signCeiling(d time.Duration) (float64, error) {
	key, err := b.sandboxKey()
	if err != nil {
		return 0, err
	}
	cores := runtime.NumCPU()
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(cores))
	var n atomic.Int64
	var firstErr atomic.Value
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for range cores {
		wg.Go(func() {
			for i := 0; time.Now().Before(deadline); i++ {
				_, msg := notify("CEILING", i)
				if _, err := sign(key, msg); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				n.Add(1)
			}
		})
	}
	wg.Wait()
	if e, _ := firstErr.Load().(error); e != nil {
		return 0, e
	}
	return float64(n.Load()) / time.Since(start).Seconds(), nil
}

func sign(key *rsa.PrivateKey, msg string) (string, error) {
	sum := sha256.Sum256([]byte(msg))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// signNotifies signs one form body per order number with the emulator's ("Alipay's")
// key. The first ceilingFor of it, with GOMAXPROCS goroutines, is the signing-ceiling
// measurement (RSA-2048, SHA256 PKCS#1 v1.5): signatures/s over that window. Signing
// stops at budget; the bodies returned are then a prefix of nos.
func (b *bench) signNotifies(nos []string, ceilingFor, budget time.Duration) (bodies [][]byte, perSec float64, err error) {
	key, err := b.sandboxKey()
	if err != nil {
		return nil, 0, err
	}
	if key.N.BitLen() != 2048 {
		logf("note: sandbox key is RSA-%d, not 2048", key.N.BitLen())
	}
	bodies = make([][]byte, len(nos))
	var next, timed atomic.Int64
	var firstErr atomic.Value
	start := time.Now()
	deadline := start.Add(ceilingFor)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				inWindow := time.Now().Before(deadline)
				if time.Since(start) > budget {
					return
				}
				if i >= len(nos) && !inWindow {
					return
				}
				var v url.Values
				var msg string
				if i < len(nos) {
					v, msg = notify(nos[i], i)
				} else {
					_, msg = notify("CEILING", i) // keep measuring past the pool
				}
				sig, err := sign(key, msg)
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				if time.Now().Before(deadline) {
					timed.Add(1)
				}
				if i < len(nos) {
					v.Set("sign", sig)
					bodies[i] = []byte(v.Encode())
				}
			}
		})
	}
	wg.Wait()
	if e, _ := firstErr.Load().(error); e != nil {
		return nil, 0, e
	}
	n := 0
	for n < len(bodies) && bodies[n] != nil {
		n++
	}
	return bodies[:n], float64(timed.Load()) / deadline.Sub(start).Seconds(), nil
}
