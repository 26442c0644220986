package main

import (
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"storefront/payment"
	"storefront/store"
)

// Modes of ALIPAY_MODE.
const (
	modeLocal      = "local"
	modeSandbox    = "sandbox"
	modeProduction = "production"
)

// setting is one environment variable the shop reads: README "Settings", and
// what `go run . help` prints. loadConfig takes its defaults from here.
type setting struct {
	name, def, meaning string
}

var settings = []setting{
	{"ADDR", "127.0.0.1:8080", "address to listen on"},
	{"PUBLIC_URL", "http:// + ADDR", "the shop's address as shoppers and Alipay reach it: base of return_url and notify_url (https, not loopback, in production)"},
	{"DB", "shop.db", "SQLite file, or postgres://user:password@host/db for PostgreSQL (several instances may share one; see docs/operations.md)"},
	{"KEYS_DIR", "keys", "key files: app_private_key.pem, app_public_key.pem, alipay_public_key.pem (see keys/README.md)"},
	{"ALIPAY_MODE", "local", "local (the emulator, in this process) · sandbox (Alipay's sandbox) · production"},
	{"ALIPAY_APP_ID", "2021000000000001 in local mode", "your app id from Alipay's console (required outside local mode)"},
	{"ALIPAY_SELLER_ID", "2088000000000001 in local mode", "your seller id (PID, 2088…): notifies for another seller are refused (required in production)"},
	{"ALIPAY_GATEWAY", "the mode's gateway", "override the gateway URL (local mode: point at a standalone emulator)"},
	{"SESSION_SECRET", "generated into KEYS_DIR/session.key outside production", "signs and encrypts session cookies (required in production: 32+ random characters)"},
	{"ORDER_TTL", "30m", "unpaid orders close after this (time_expire of every pay request)"},
	{"RECONCILE_AFTER", "5m", "ask alipay.trade.query about an order this long after it went to the cashier without a notify (then backing off to 1h)"},
	{"AUTO_RECEIVE", "240h", "a shipped order counts as received (已收货) this long after shipping, if the shopper didn't confirm"},
	{"ALIPAY_CERT_MODE", "unset", "1 in local mode: the emulator issues the three certificates into KEYS_DIR and both sides run in certificate mode (公钥证书); sandbox/production use certificate mode when KEYS_DIR holds appCertPublicKey.crt, alipayRootCert.crt and alipayCertPublicKey_RSA2.crt"},
	{"SANDBOX_REFUND_WINDOW", "2160h", "local emulator only: how long after payment a trade can be refunded before it turns TRADE_FINISHED (divided by SANDBOX_TIME_SCALE)"},
	{"SANDBOX_TIME_SCALE", "1", "local emulator only: divides its notify schedule and relative expiry (3600 = an hour per second)"},
	{"MEDIA_DIR", "media beside DB (./media on PostgreSQL)", "where this instance caches the goods images uploaded in the back office as files (they are kept in the database; served at /media/)"},
	{"TRUSTED_PROXIES", "unset (no proxy)", "comma-separated addresses or CIDRs of the reverse proxies in front of the shop: from them, the client is read from X-Forwarded-For (for the login limits and logs); from anyone else the header is ignored"},
	{"LEASE_TTL", "1m", "how long an instance's claim on due background work lasts: work claimed by an instance that died is taken over after this"},
	{"SANDBOX_DB", "sandbox.db beside DB (./sandbox.db for go run . sandbox or on PostgreSQL)", "the emulator's own SQLite file"},
	{"SANDBOX_ADDR", "127.0.0.1:9090", "go run . sandbox only: the standalone emulator's address"},
	{"PPROF_ADDR", "unset (off)", "serve Go's profiler on this separate address"},
	{"DEV_RELOAD", "unset", "1 (set by go tool task dev): allow templ's live-reload script; ignored in production"},
	{"GOGC", "200", "Go's garbage collector target: the heap may grow this many percent over what is live before a collection (GOMEMLIMIT caps it)"},
	{"GOMEMLIMIT", "64MiB", "Go's soft memory limit"},
	{"OPERATOR_PASSWORD", "unset", "go run . operator add only: the password, when stdin is not a terminal"},
}

// defaultOf returns a setting's default as loadConfig uses it ("" for described ones).
func defaultOf(name string) string {
	for _, s := range settings {
		if s.name == name {
			return s.def
		}
	}
	panic("no setting " + name) // a programming error: every setting is listed
}

// config is the shop's settings (README "Settings").
type config struct {
	Addr, PublicURL, DB, KeysDir, Mode string
	AppID, SellerID, Gateway           string
	SessionSecret                      string
	OrderTTL, ReconcileAfter           time.Duration
	TimeScale                          float64
	SandboxDB                          string
	MediaDir                           string
	CertMode                           bool          // ALIPAY_CERT_MODE=1: local mode in certificate mode
	RefundWindow                       time.Duration // SANDBOX_REFUND_WINDOW
	LeaseTTL                           time.Duration // LEASE_TTL
	TrustedProxies                     []*net.IPNet  // TRUSTED_PROXIES
	AutoReceive                        time.Duration // AUTO_RECEIVE: shipped orders count as received after this
	Pprof                              string        // PPROF_ADDR: profiling endpoint, off unless set
	DevReload                          bool          // DEV_RELOAD=1: allow templ's live-reload script
	mountEmulator                      bool
}

// loadConfig reads the settings and refuses values that cannot work; the key files are
// checked later (checkKeys), once local mode has generated any that are missing.
func loadConfig(getenv func(string) string) (config, error) {
	env := func(k, def string) string {
		if v := strings.TrimSpace(getenv(k)); v != "" {
			return v
		}
		return def
	}
	c := config{
		Addr: env("ADDR", defaultOf("ADDR")), DB: env("DB", defaultOf("DB")), KeysDir: env("KEYS_DIR", defaultOf("KEYS_DIR")),
		Mode: env("ALIPAY_MODE", defaultOf("ALIPAY_MODE")), Gateway: env("ALIPAY_GATEWAY", ""),
		SessionSecret: env("SESSION_SECRET", ""), Pprof: env("PPROF_ADDR", ""),
		DevReload: env("DEV_RELOAD", "") == "1", CertMode: env("ALIPAY_CERT_MODE", "") == "1",
	}
	c.PublicURL = strings.TrimRight(env("PUBLIC_URL", "http://"+c.Addr), "/")
	beside := filepath.Dir(c.DB) // files that live beside an SQLite DB; a PostgreSQL URL has no directory
	if store.IsPostgres(c.DB) {
		beside = "."
	}
	c.SandboxDB = env("SANDBOX_DB", filepath.Join(beside, "sandbox.db"))
	c.MediaDir = env("MEDIA_DIR", filepath.Join(beside, "media"))
	var problems []string
	durations := []struct {
		key string
		dst *time.Duration
	}{{"ORDER_TTL", &c.OrderTTL}, {"RECONCILE_AFTER", &c.ReconcileAfter}, {"AUTO_RECEIVE", &c.AutoReceive},
		{"SANDBOX_REFUND_WINDOW", &c.RefundWindow}, {"LEASE_TTL", &c.LeaseTTL}}
	for _, d := range durations {
		v, err := time.ParseDuration(env(d.key, defaultOf(d.key)))
		if err != nil || v <= 0 {
			problems = append(problems, fmt.Sprintf("%s must be a positive duration such as 30m (got %q)", d.key, getenv(d.key)))
		}
		*d.dst = v
	}
	for _, p := range strings.Split(env("TRUSTED_PROXIES", ""), ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if !strings.Contains(p, "/") {
			if ip := net.ParseIP(p); ip != nil && ip.To4() != nil {
				p += "/32"
			} else {
				p += "/128"
			}
		}
		_, n, err := net.ParseCIDR(p)
		if err != nil {
			problems = append(problems, fmt.Sprintf("TRUSTED_PROXIES must list addresses or CIDRs such as 127.0.0.1,10.0.0.0/8 (got %q)", p))
			continue
		}
		c.TrustedProxies = append(c.TrustedProxies, n)
	}
	scale, err := strconv.ParseFloat(env("SANDBOX_TIME_SCALE", defaultOf("SANDBOX_TIME_SCALE")), 64)
	if err != nil || scale < 1 {
		problems = append(problems, "SANDBOX_TIME_SCALE must be a number ≥ 1")
	}
	c.TimeScale = scale
	if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
		problems = append(problems, fmt.Sprintf("PUBLIC_URL must be an http(s) address without a query, such as https://shop.example.com (got %q)", c.PublicURL))
	}
	switch c.Mode {
	case modeLocal:
		c.AppID = env("ALIPAY_APP_ID", "2021000000000001")
		c.SellerID = env("ALIPAY_SELLER_ID", "2088000000000001")
		if c.Gateway == "" {
			c.Gateway = c.PublicURL + "/sandbox/gateway.do"
			c.mountEmulator = true
		}
	case modeSandbox, modeProduction:
		c.AppID = env("ALIPAY_APP_ID", "")
		c.SellerID = env("ALIPAY_SELLER_ID", "")
		if c.AppID == "" {
			problems = append(problems, "set ALIPAY_APP_ID to your app id from Alipay's console")
		}
		alipayFile := payment.AlipayPublicKeyFile
		if exists(filepath.Join(c.KeysDir, payment.AppCertFile)) {
			alipayFile = payment.AlipayCertFile // certificate mode
		}
		for _, f := range []string{payment.AppPrivateKeyFile, alipayFile} {
			if p := filepath.Join(c.KeysDir, f); !exists(p) {
				problems = append(problems, fmt.Sprintf("put %s in place (see keys/README.md)", p))
			}
		}
		if c.Mode == modeProduction {
			problems = append(problems, productionProblems(c)...)
		}
	default:
		problems = append(problems, fmt.Sprintf("ALIPAY_MODE must be local, sandbox or production (got %q)", c.Mode))
	}
	if len(problems) > 0 {
		return c, refuse(problems)
	}
	return c, nil
}

func refuse(problems []string) error {
	return errors.New("cannot start:\n  - " + strings.Join(problems, "\n  - "))
}

// productionProblems are the settings that would quietly weaken a production shop.
func productionProblems(c config) []string {
	var ps []string
	if u, err := url.Parse(c.PublicURL); err == nil {
		if u.Scheme != "https" {
			ps = append(ps, fmt.Sprintf("PUBLIC_URL must be https in production (got %s): without it session cookies are not Secure and Alipay's callbacks travel in the clear; put the shop behind an HTTPS reverse proxy (docs/operations.md)", c.PublicURL))
		}
		if isLoopback(u.Hostname()) {
			ps = append(ps, fmt.Sprintf("PUBLIC_URL %s is a loopback address: Alipay can never deliver a notify there, and shoppers can't reach it; set it to the shop's public https address", c.PublicURL))
		}
	}
	switch {
	case c.SessionSecret == "":
		ps = append(ps, "set SESSION_SECRET to 32+ random characters (e.g. the output of `openssl rand -hex 32`)")
	default:
		if why := weakSecret(c.SessionSecret); why != "" {
			ps = append(ps, "SESSION_SECRET is "+why+": anyone who guesses it can forge sessions; use `openssl rand -hex 32`")
		}
	}
	if c.SellerID == "" {
		ps = append(ps, "set ALIPAY_SELLER_ID to your seller id (PID, 2088…, in Alipay's console): without it a notify signed for another merchant's trade would be accepted")
	} else if !validSellerID(c.SellerID) {
		ps = append(ps, fmt.Sprintf("ALIPAY_SELLER_ID %q is not a seller id: Alipay's are 16 digits starting 2088 (PID, in Alipay's console); with it every genuine notify would be refused", c.SellerID))
	}
	return ps
}

// validSellerID: Alipay's seller ids (PIDs) are 2088 and twelve more digits.
func validSellerID(s string) bool {
	if len(s) != 16 || !strings.HasPrefix(s, "2088") {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// sandboxWarnings are settings that work but that the shop warns about loudly.
func sandboxWarnings(c config) []string {
	var ws []string
	if c.Mode == modeSandbox {
		if u, err := url.Parse(c.PublicURL); err == nil && isLoopback(u.Hostname()) {
			ws = append(ws, fmt.Sprintf("PUBLIC_URL %s is a loopback address: Alipay's sandbox cannot deliver notifies to it. "+
				"Payments still settle through the return page and reconciliation, but set PUBLIC_URL to an address Alipay can reach to test notifies", c.PublicURL))
		}
	}
	if c.Mode != modeProduction && c.SellerID == "" {
		ws = append(ws, "ALIPAY_SELLER_ID is not set: notifies' seller_id is not checked")
	}
	return ws
}

// isLoopback reports whether host names this machine only.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && (ip.IsLoopback() || ip.IsUnspecified())
}

// weakSecret says why s is no good as a session secret, or "". It is a heuristic: long
// enough, and enough entropy by character frequency (at least 100 bits) that a
// repeated or patterned string fails; the output of `openssl rand -hex 32` passes.
func weakSecret(s string) string {
	n := len([]rune(s))
	if n < 32 {
		return fmt.Sprintf("too short (%d characters)", n)
	}
	freq := map[rune]int{}
	for _, r := range s {
		freq[r]++
	}
	var bits float64
	for _, k := range freq {
		p := float64(k) / float64(n)
		bits -= float64(k) * math.Log2(p)
	}
	if len(freq) < 10 || bits < 100 {
		return fmt.Sprintf("not random enough (%d different characters, about %.0f bits)", len(freq), bits)
	}
	// Many different characters can still be a pattern: a short run repeated
	// ("0123456789" five times), or a counting sequence ("abcdefghijklmnopqrstuvwxyz0123").
	rs := []rune(s)
	for p := 1; p <= n/2; p++ {
		repeats := true
		for i := p; i < n && repeats; i++ {
			repeats = rs[i] == rs[i-p]
		}
		if repeats {
			return fmt.Sprintf("not random enough (%d characters repeated)", p)
		}
	}
	steps := 0
	for i := 1; i < n; i++ {
		if d := rs[i] - rs[i-1]; d == 1 || d == -1 {
			steps++
		}
	}
	if steps > n/2 {
		return fmt.Sprintf("not random enough (%d of %d characters follow on from the one before)", steps, n-1)
	}
	return ""
}

// alipayKeys are the keys the shop runs on, read and checked once at start.
type alipayKeys struct {
	appPriv   []byte
	alipayPub []byte         // public-key mode: alipay_public_key.pem
	certs     *payment.Certs // certificate mode
	verifier  *payment.Verifier
}

// checkKeys reads and checks the key files and refuses those that would fail later or
// weaken the shop: a private key others can read, Alipay's key that is really the app's
// own public key (the most common integration mistake), the local emulator's key left in
// a sandbox or production KEYS_DIR, in local mode pairs that don't belong together, and
// in certificate mode an app certificate for another key or an Alipay certificate not
// issued under the roots. Certificate mode is on when KEYS_DIR holds its three files
// (in local mode: when ALIPAY_CERT_MODE=1, which has the emulator issue them).
func checkKeys(c config) (alipayKeys, error) {
	path := func(f string) string { return filepath.Join(c.KeysDir, f) }
	var k alipayKeys
	var ps []string
	appPriv, err := readKey(path(payment.AppPrivateKeyFile))
	if err != nil {
		return k, refuse([]string{err.Error()})
	}
	k.appPriv = appPriv
	app, err := payment.ParsePrivateKey(appPriv)
	if err != nil {
		return k, refuse([]string{fmt.Sprintf("%s is not an RSA private key (PKCS#1 or PKCS#8 PEM): %v", path(payment.AppPrivateKeyFile), err)})
	}
	var alipay *rsa.PublicKey
	certs, certMode, err := payment.LoadCerts(c.KeysDir)
	if c.Mode == modeLocal && !c.CertMode {
		certs, certMode, err = nil, false, nil // leftovers of a certificate-mode run
	}
	switch {
	case err != nil:
		return k, refuse([]string{err.Error()})
	case certMode:
		k.certs = certs
		if ak, err := certs.AppPublicKey(); err != nil || !sameKey(ak, &app.PublicKey) {
			ps = append(ps, fmt.Sprintf("%s does not certify the key of %s: download the app certificate made for this key from Alipay's console",
				path(payment.AppCertFile), path(payment.AppPrivateKeyFile)))
		}
		if k.verifier, err = certs.Verifier(); err != nil {
			return k, refuse(append(ps, err.Error()))
		}
		alipay = k.verifier.Current()
	default:
		alipayPEM, err := os.ReadFile(path(payment.AlipayPublicKeyFile))
		if err != nil {
			return k, refuse([]string{fmt.Sprintf("put Alipay's public key (支付宝公钥) in %s (see keys/README.md), or certificate mode's three files", path(payment.AlipayPublicKeyFile))})
		}
		if alipay, err = payment.ParsePublicKey(alipayPEM); err != nil {
			return k, refuse([]string{fmt.Sprintf("%s is not an RSA public key (PEM, BEGIN PUBLIC KEY): %v", path(payment.AlipayPublicKeyFile), err)})
		}
		k.alipayPub = alipayPEM
		if k.verifier, err = payment.NewKeyVerifier(alipayPEM); err != nil {
			return k, refuse([]string{err.Error()})
		}
	}
	what := path(payment.AlipayPublicKeyFile)
	if certMode {
		what = path(payment.AlipayCertFile)
	}
	if sameKey(&app.PublicKey, alipay) {
		ps = append(ps, fmt.Sprintf("%s holds your app's own public key, not Alipay's: every notify would be refused. "+
			"Copy 支付宝公钥 from Alipay's console (shown after you upload the app public key) into it", what))
	}
	if pub, err := os.ReadFile(path(payment.AppPublicKeyFile)); err == nil {
		if k, err := payment.ParsePublicKey(pub); err != nil || !sameKey(k, &app.PublicKey) {
			ps = append(ps, fmt.Sprintf("%s is not the public half of %s: Alipay would refuse every request signed with it. "+
				"Derive it again (openssl rsa -in %s -pubout) and upload that one", path(payment.AppPublicKeyFile), path(payment.AppPrivateKeyFile), path(payment.AppPrivateKeyFile)))
		}
	}
	emuPriv, emuErr := os.ReadFile(path(payment.SandboxPrivateKeyFile))
	switch c.Mode {
	case modeLocal:
		emu, err := payment.ParsePrivateKey(emuPriv)
		if emuErr != nil || err != nil || !sameKey(&emu.PublicKey, alipay) {
			ps = append(ps, fmt.Sprintf("%s is not the public half of the emulator's key %s: the shop would refuse every payment as forged. "+
				"Delete %s and start again to generate a matching set", what, path(payment.SandboxPrivateKeyFile), c.KeysDir))
		}
	default:
		if emuErr == nil {
			msg := "the local emulator's private key is in " + path(payment.SandboxPrivateKeyFile)
			if emu, err := payment.ParsePrivateKey(emuPriv); err == nil && sameKey(&emu.PublicKey, alipay) {
				msg = what + " is the local emulator's key, left by a local run, not Alipay's"
			}
			ps = append(ps, msg+": give "+c.Mode+" mode a KEYS_DIR of its own with your app's key and Alipay's public key only")
		}
	}
	for _, f := range []string{payment.AppPrivateKeyFile, payment.SandboxPrivateKeyFile, "session.key", "sandbox/alipay_root_key.pem"} {
		if st, err := os.Stat(path(f)); err == nil && st.Mode().Perm()&0o077 != 0 {
			ps = append(ps, fmt.Sprintf("%s can be read by others (mode %04o): run chmod 600 %s", path(f), st.Mode().Perm(), path(f)))
		}
	}
	if len(ps) > 0 {
		return k, refuse(ps)
	}
	return k, nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func readKey(p string) ([]byte, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("put your app's private key in %s (see keys/README.md)", p)
	}
	return b, nil
}

func sameKey(a, b *rsa.PublicKey) bool { return a.Equal(b) }

// sessionSecret is SESSION_SECRET or, outside production, a secret generated once
// into KEYS_DIR/session.key.
func sessionSecret(c config) (string, error) {
	secret := c.SessionSecret
	if secret == "" {
		path := filepath.Join(c.KeysDir, "session.key")
		b, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			// Instances starting together on one KEYS_DIR must end with one secret.
			if _, err := payment.CreateFile(path, []byte(randomHex(32)), 0o600); err != nil {
				return "", err
			}
			b, err = os.ReadFile(path)
		}
		if err != nil {
			return "", err
		}
		secret = strings.TrimSpace(string(b))
	}
	if len(secret) < 16 {
		return "", errors.New("SESSION_SECRET is too short: use 32+ random characters")
	}
	return secret, nil
}

// cookieKeys derives the signing and encryption keys of one cookie from the secret:
// the shoppers' and the operators' cookies get different keys, so neither can be read
// as the other.
func cookieKeys(secret, purpose string) (hashKey, blockKey []byte) {
	h := sha256.Sum256([]byte(purpose + "-hash:" + secret))
	b := sha256.Sum256([]byte(purpose + "-block:" + secret))
	return h[:], b[:]
}
