// Package sandbox is a local emulator of Alipay's gateway for PC website pay
// (alipay.trade.page.pay), phone website pay (alipay.trade.wap.pay) and the server APIs
// a shop needs around them (query, close, refund, refund query, bill download). It plays Alipay
// by Alipay's documented protocol and talks to the shop only over HTTP, so code that
// works against it works against Alipay.
package sandbox

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"math/big"
	"net/http"
	"sync"
	"time"
	_ "time/tzdata" // Asia/Shanghai must resolve on bare machines too

	"github.com/jmoiron/sqlx"
)

// Config configures an Emulator; main.go fills it from the environment.
type Config struct {
	AppID           string           // the only app id accepted (others -> isv.invalid-app-id)
	SellerID        string           // seller_id ("pid") put in notifies, returns and query answers
	MerchantName    string           // shown on the cashier page (default "本地演示商户")
	AppPublicKeyPEM []byte           // verifies the shop's request signatures
	PrivateKeyPEM   []byte           // the emulator's ("Alipay's") signing key
	DBPath          string           // its own SQLite file
	TimeScale       float64          // >=1; divides the notify schedule and relative expiry
	Now             func() time.Time // injected clock; nil = time.Now
	HTTPClient      *http.Client     // for notify deliveries; nil = client with 10s timeout
	Logger          *slog.Logger     // nil = slog.Default()
	// RefundWindow is how long after payment a trade can be refunded; then it becomes
	// TRADE_FINISHED (with a notify). Divided by TimeScale; 0 = 90 days.
	RefundWindow time.Duration
	// Certs switches on certificate mode (公钥证书); nil = public-key mode. In certificate
	// mode the app's key comes from Certs.AppCertPEM (AppPublicKeyPEM, if also set, must
	// be the same key) and Certs.AlipayCertPEM must hold PrivateKeyPEM's public key.
	Certs *CertConfig
}

// DefaultRefundWindow is Alipay's usual refund period for PC and WAP pay.
const DefaultRefundWindow = 90 * 24 * time.Hour

// Emulator is the emulated gateway; it is an http.Handler for paths under /sandbox/.
type Emulator struct {
	cfg     Config
	db      *sqlx.DB
	appKey  *rsa.PublicKey
	key     *rsa.PrivateKey
	log     *slog.Logger
	client  *http.Client
	mux     *http.ServeMux
	tmpl    *template.Template
	static  http.Handler
	wake    chan struct{}
	passMu  sync.Mutex // serialises DeliverDue passes so one notify is never sent twice by us
	forgeMu sync.Mutex
	forgeK  *rsa.PrivateKey
	certs   *certMode // nil in public-key mode
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static/sandbox.css
var staticFS embed.FS

// Fixed identities of the emulated parties; Alipay's user ids start with 2088.
const (
	defaultMerchant = "本地演示商户"
	buyerLogon      = "sandbox_buyer@alipay.test"
	buyerLogonMask  = "san***@alipay.test" // Alipay masks the logon id in notifies and queries
	buyerUserID     = "2088102177846880"
	sellerEmail     = "sandbox_seller@alipay.test"
	defaultTimeout  = 15 * 24 * time.Hour // Alipay closes an unpaid page-pay trade after 15 days
	alipayTime      = "2006-01-02 15:04:05"
)

var shanghai = func() *time.Location {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		return time.FixedZone("CST", 8*3600)
	}
	return loc
}()

// New opens (creating if needed) the emulator's database and parses its keys.
func New(cfg Config) (*Emulator, error) {
	if cfg.AppID == "" {
		return nil, errors.New("sandbox: AppID is required")
	}
	key, err := parsePrivateKey(cfg.PrivateKeyPEM)
	if err != nil {
		return nil, fmt.Errorf("sandbox: emulator %w", err)
	}
	var appKey *rsa.PublicKey
	if cfg.AppPublicKeyPEM != nil || cfg.Certs == nil {
		if appKey, err = parsePublicKey(cfg.AppPublicKeyPEM); err != nil {
			return nil, fmt.Errorf("sandbox: app %w", err)
		}
	}
	var certs *certMode
	if cfg.Certs != nil {
		if certs, err = loadCertMode(cfg.Certs, key); err != nil {
			return nil, fmt.Errorf("sandbox: certificate mode: %w", err)
		}
		if appKey != nil && !appKey.Equal(certs.appKey) {
			return nil, errors.New("sandbox: certificate mode: the app certificate does not hold AppPublicKeyPEM")
		}
		appKey = certs.appKey
	}
	if cfg.RefundWindow <= 0 {
		cfg.RefundWindow = DefaultRefundWindow
	}
	if cfg.MerchantName == "" {
		cfg.MerchantName = defaultMerchant
	}
	if cfg.TimeScale < 1 {
		cfg.TimeScale = 1
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	tmpl, err := template.New("").Funcs(template.FuncMap{
		"yuan":        formatFen,
		"bjtime":      func(ms int64) string { return time.UnixMilli(ms).In(shanghai).Format(alipayTime) },
		"statusLabel": statusLabel,
		"faultLabel":  func(f string) string { return faultLabels[f] },
	}).ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("sandbox: templates: %w", err)
	}
	db, err := openDB(cfg.DBPath)
	if err != nil {
		return nil, err
	}
	sub, _ := fs.Sub(staticFS, "static")
	e := &Emulator{
		cfg:    cfg,
		db:     db,
		appKey: appKey,
		key:    key,
		log:    cfg.Logger.With("component", "sandbox"),
		client: cfg.HTTPClient,
		tmpl:   tmpl,
		static: http.StripPrefix("/sandbox/static/", http.FileServer(http.FS(sub))),
		wake:   make(chan struct{}, 1),
		certs:  certs,
	}
	e.routes()
	return e, nil
}

// Close releases the database; call it after Run has returned.
func (e *Emulator) Close() error { return e.db.Close() }

func (e *Emulator) routes() {
	m := http.NewServeMux()
	m.HandleFunc("/sandbox/gateway.do", e.handleGateway)
	m.Handle("GET /sandbox/static/", e.static)
	m.HandleFunc("GET /sandbox/{$}", e.handleConsole)
	m.Handle("GET /sandbox", http.RedirectHandler("/sandbox/", http.StatusMovedPermanently))
	m.HandleFunc("POST /sandbox/cashier/{no}/pay", e.handleCashierPay)
	m.HandleFunc("POST /sandbox/cashier/{no}/cancel", e.handleCashierCancel)
	m.HandleFunc("POST /sandbox/api/trades/{no}/pay", e.handleAPIPay)
	m.HandleFunc("POST /sandbox/api/trades/{no}/faults", e.handleAPIFault)
	m.HandleFunc("POST /sandbox/api/trades/{no}/notify", e.handleAPINotify)
	m.HandleFunc("POST /sandbox/api/trades/{no}/scan", e.handleAPIScan)
	m.HandleFunc("POST /sandbox/api/trades/{no}/refund", e.handleAPIRefund)
	m.HandleFunc("POST /sandbox/api/trades/{no}/refund-notify", e.handleAPIRefundNotify)
	m.HandleFunc("GET /sandbox/api/trades/{no}", e.handleAPITrade)
	m.HandleFunc("GET /sandbox/bills/{token}", e.handleBillDownload)
	e.mux = m
}

// ServeHTTP serves the full paths under /sandbox/ and never lets a panic escape as a 500 page.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if p := recover(); p != nil {
			e.log.Error("sandbox: panic", "panic", p, "path", r.URL.Path)
			http.Error(w, "sandbox internal error", http.StatusInternalServerError)
		}
	}()
	w.Header().Set("X-Content-Type-Options", "nosniff")
	e.mux.ServeHTTP(w, r)
}

// Run delivers due notifies, expires unpaid trades and finishes trades past their
// refund window until ctx is done.
func (e *Emulator) Run(ctx context.Context) error {
	for {
		if _, err := e.ExpireDue(ctx); err != nil && ctx.Err() == nil {
			e.log.Error("sandbox: expire", "err", err)
		}
		if _, err := e.FinishDue(ctx); err != nil && ctx.Err() == nil {
			e.log.Error("sandbox: finish", "err", err)
		}
		if _, err := e.DeliverDue(ctx); err != nil && ctx.Err() == nil {
			e.log.Error("sandbox: deliver", "err", err)
		}
		wait := e.nextWakeIn(ctx)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-e.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// nextWakeIn sleeps until the earliest due delivery, expiry or finish, capped at one second so
// an injected clock that jumps is still noticed quickly.
func (e *Emulator) nextWakeIn(ctx context.Context) time.Duration {
	const maxWait = time.Second
	now := e.nowMs()
	var next int64
	err := e.db.GetContext(ctx, &next, `SELECT MIN(x) FROM (
		SELECT MIN(next_at) AS x FROM notifications WHERE status = ?
		UNION ALL SELECT MIN(expires_at) FROM trades WHERE status = ?
		UNION ALL SELECT MIN(finish_at) FROM trades WHERE status = ?) WHERE x IS NOT NULL`,
		deliveryPending, statusWait, statusSuccess)
	if err != nil || next == 0 {
		return maxWait
	}
	d := time.Duration(next-now) * time.Millisecond
	switch {
	case d < 5*time.Millisecond:
		return 5 * time.Millisecond
	case d > maxWait:
		return maxWait
	}
	return d
}

// kick wakes Run without blocking: pay and resend must never wait for a delivery.
func (e *Emulator) kick() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

func (e *Emulator) now() time.Time { return e.cfg.Now() }
func (e *Emulator) nowMs() int64   { return e.cfg.Now().UnixMilli() }

// scaled divides a relative Alipay duration by TimeScale.
func (e *Emulator) scaled(d time.Duration) time.Duration {
	return time.Duration(float64(d) / e.cfg.TimeScale)
}

func bjFormat(ms int64) string { return time.UnixMilli(ms).In(shanghai).Format(alipayTime) }

// newTradeNo makes a 28-digit number like Alipay's: yyyyMMdd (Beijing) + "2200" + 16 random digits.
func newTradeNo(now time.Time) string {
	n, err := rand.Int(rand.Reader, big.NewInt(1e16))
	if err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return fmt.Sprintf("%s2200%016d", now.In(shanghai).Format("20060102"), n.Int64())
}

// newNotifyID is opaque and unique per notification (reused across its resends).
func newNotifyID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
