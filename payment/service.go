package payment

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/smartwalle/alipay/v3"

	"storefront/money"
	"storefront/shanghai"
	"storefront/store"
)

// Errors the handlers map to pages.
var (
	ErrBadSignature = errors.New("alipay signature does not verify")
	ErrNotOurs      = errors.New("signed by Alipay for another app or seller")
	ErrAlreadyPaid  = errors.New("order was paid at Alipay")
	ErrGatewayDown  = errors.New("alipay did not answer")
)

// Alipay trade statuses.
const (
	WaitBuyerPay  = "WAIT_BUYER_PAY"
	TradeSuccess  = "TRADE_SUCCESS"
	TradeFinished = "TRADE_FINISHED"
	TradeClosed   = "TRADE_CLOSED"
)

// Config is what the rules need to know about this merchant.
type Config struct {
	AppID          string
	SellerID       string // "" = not checked
	PublicURL      string // base of notify_url and return_url, no trailing slash
	ReconcileAfter time.Duration
	AutoReceive    time.Duration // a shipped order counts as received after this (default 10 days)
	Verifier       *Verifier     // Alipay's keys, for notifies and returns (required)
}

// Service applies the Alipay rules to the shop's orders.
type Service struct {
	gw   Gateway
	st   *store.Store
	cfg  Config
	now  func() time.Time
	log  *slog.Logger
	wake chan struct{} // work for the workers now (a refund to make)
	// billClient downloads trade bills (the URL Alipay hands out is not the gateway).
	billClient *http.Client
	junkLog    junkLog
}

// junkLog keeps refused messages from filling the log: anyone can send them, so each
// kind (source and reason) gets a line at most once a minute, saying how many more came.
// The counts and samples in the database are the full record.
type junkLog struct {
	mu   sync.Mutex
	last map[string]*junkLogged
}

type junkLogged struct {
	at      time.Time
	skipped int
}

// junkLogEvery is how often one kind of refused message is logged; junkLogKinds bounds
// the kinds remembered (reasons quote what the sender put in a field).
const (
	junkLogEvery = time.Minute
	junkLogKinds = 64
)

// allow says whether a refused message of kind k is logged now, and how many of that
// kind went unlogged before it.
func (j *junkLog) allow(k string, now time.Time) (skipped int, ok bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.last == nil {
		j.last = map[string]*junkLogged{}
	}
	l := j.last[k]
	if l == nil && len(j.last) >= junkLogKinds {
		k = "other"
		l = j.last[k]
	}
	if l == nil {
		l = &junkLogged{}
		j.last[k] = l
	}
	if !l.at.IsZero() && now.Sub(l.at) < junkLogEvery {
		l.skipped++
		return 0, false
	}
	skipped, l.at, l.skipped = l.skipped, now, 0
	return skipped, true
}

// NewService wires the rules; now is the clock (nil = time.Now).
func NewService(gw Gateway, st *store.Store, cfg Config, now func() time.Time, log *slog.Logger) *Service {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	if cfg.ReconcileAfter <= 0 {
		cfg.ReconcileAfter = 5 * time.Minute
	}
	if cfg.AutoReceive <= 0 {
		cfg.AutoReceive = 10 * 24 * time.Hour
	}
	if cfg.Verifier == nil {
		panic(errNoVerifier) // a wiring mistake, caught by the first test that builds one
	}
	svc := &Service{gw: gw, st: st, cfg: cfg, now: now, log: log, wake: make(chan struct{}, 1),
		billClient: &http.Client{Timeout: 60 * time.Second}}
	// The store makes the automatic refund of a late payment itself; the workers send it.
	st.OnRefundDue(func(int64) { svc.kickRefunds() })
	return svc
}

// NewOutTradeNo returns yyyyMMddHHmmss (Beijing) + 12 random digits: sortable by time,
// within Alipay's 64 [0-9A-Za-z_] chars, and not guessable from a neighbour's number.
func NewOutTradeNo(now time.Time) string {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000_000_000))
	if err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return now.In(shanghai.Location()).Format("20060102150405") + fmt.Sprintf("%012d", n.Int64())
}

// ReconcileAt is when to first ask Alipay about an order sent to the cashier at now.
func (s *Service) ReconcileAt(now time.Time) time.Time { return now.Add(s.cfg.ReconcileAfter) }

// Products: how the shopper pays at Alipay.
const (
	PagePay = "page" // alipay.trade.page.pay, the computer cashier (FAST_INSTANT_TRADE_PAY)
	WapPay  = "wap"  // alipay.trade.wap.pay, the phone cashier (QUICK_WAP_WAY)
)

// PayAgainURL signs a fresh pay request for an existing unpaid order (same out_trade_no,
// same amount), for the device asking, and restarts its reconciliation schedule.
func (s *Service) PayAgainURL(ctx context.Context, o store.Order, product string) (string, error) {
	now := s.now()
	if err := s.st.MarkSentToCashier(ctx, o.ID, now, s.ReconcileAt(now)); err != nil {
		return "", err
	}
	return s.PayURL(o, product)
}

// PayURL signs a pay request for o, just created (CreateOrder already scheduled its
// reconciliation): page pay for a computer, WAP pay for a phone. Signing is the one RSA
// operation of a purchase.
func (s *Service) PayURL(o store.Order, product string) (string, error) {
	trade := alipay.Trade{
		NotifyURL: s.cfg.PublicURL + "/check_order", ReturnURL: s.cfg.PublicURL + "/show_msg",
		Subject: o.Subject, OutTradeNo: o.OutTradeNo, TotalAmount: o.Total.String(),
	}
	// Alipay's time_expire has second (page) or minute (WAP) precision: round down, so
	// Alipay never accepts a payment after the shop considers the order expired.
	var u *url.URL
	var err error
	if product == WapPay {
		trade.ProductCode = "QUICK_WAP_WAY"
		u, err = s.gw.TradeWapPay(alipay.TradeWapPay{Trade: trade, QuitURL: s.cfg.PublicURL + "/orders/" + o.OutTradeNo,
			TimeExpire: o.ExpiresAt.In(shanghai.Location()).Truncate(time.Minute).Format("2006-01-02 15:04")})
	} else {
		trade.ProductCode = "FAST_INSTANT_TRADE_PAY"
		trade.TimeExpire = shanghai.Format(o.ExpiresAt.Truncate(time.Second))
		u, err = s.gw.TradePagePay(alipay.TradePagePay{Trade: trade})
	}
	if err != nil {
		return "", fmt.Errorf("signing pay request: %w", err)
	}
	return u.String(), nil
}

// HandleNotify applies one notify body by the rules in docs/payments.md ("The notify")
// and returns the recorded event. Answer "success" only if err is nil and ev.Acknowledged().
func (s *Service) HandleNotify(ctx context.Context, body []byte, contentType, requestID string) (store.Event, error) {
	ev := store.Event{Source: store.SourceNotify, RequestID: requestID}
	f, err := ParseForm(body, contentType)
	if err != nil || len(f.Raw) == 0 {
		return s.junk(ctx, ev, "unreadable or empty body", string(body)), nil
	}
	if reason := s.cfg.Verifier.Verify(f.Raw); reason != "" {
		return s.junk(ctx, ev, reason, string(body)), nil
	}
	v := f.Values
	ev.Raw, ev.OutTradeNo, ev.NotifyID, ev.TradeStatus = rawJSON(v), v.Get("out_trade_no"), v.Get("notify_id"), v.Get("trade_status")
	ev.TradeNo = v.Get("trade_no")
	if reason, _ := s.checkOurs(f); reason != "" {
		return s.reject(ctx, ev, reason)
	}
	if ev.NotifyID == "" || ev.TradeStatus == "" {
		// Signed by Alipay but no notify: a return's query string posted here. It sits in
		// the shopper's browser history, so anyone may post it any number of times:
		// counted and sampled like junk, not stored in full each time.
		return s.junk(ctx, ev, "signed, but not a notify (no notify_id or trade_status)", string(body)), nil
	}
	if isRefundNotify(v) || ev.TradeStatus == TradeClosed {
		return s.applyRefundNotify(ctx, ev, v)
	}
	return s.apply(ctx, ev, v.Get("total_amount"), store.Payment{
		TradeNo: v.Get("trade_no"), BuyerID: v.Get("buyer_id"), BuyerLogonID: v.Get("buyer_logon_id"),
		BuyerOpenID: v.Get("buyer_open_id"), PaidAt: s.alipayTime(v.Get("gmt_payment")),
		BuyerPaid: optionalFen(v.Get("buyer_pay_amount")), Receipt: optionalFen(v.Get("receipt_amount")),
	})
}

// optionalFen reads an amount Alipay may leave out (or send empty): only total_amount
// decides anything; these record what the buyer paid and the shop received.
func optionalFen(v string) sql.NullInt64 {
	f, err := money.Parse(v)
	if err != nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: int64(f), Valid: true}
}

// RefuseNotify counts a notify the handler could not even read (too large, cut off):
// junk, like an unsigned one.
func (s *Service) RefuseNotify(ctx context.Context, reason string, partial []byte, requestID string) {
	s.junk(ctx, store.Event{Source: store.SourceNotify, RequestID: requestID}, reason, string(partial))
}

// junk counts a message that failed before its content could count (unreadable, or not
// signed by Alipay) without storing it in full: anyone can send these. The returned
// event is not stored; its verdict makes the notify answer "fail".
func (s *Service) junk(ctx context.Context, ev store.Event, reason, raw string) store.Event {
	s.st.RecordJunk(ctx, store.Junk{Source: ev.Source, Reason: reason, Raw: raw, RequestID: ev.RequestID})
	if skipped, ok := s.junkLog.allow(ev.Source+" "+reason, s.now()); ok {
		s.log.WarnContext(ctx, "payment message refused", "source", ev.Source, "reason", reason, "request_id", ev.RequestID,
			"unlogged_before", skipped)
	}
	ev.Verdict, ev.Reason = store.VerdictRejected, reason
	return ev
}

// checkOurs runs the checks a signed message needs before its content counts: app_id,
// then seller_id. "" means both passed. The reason is for the event log; ErrNotOurs is
// for the shopper's page, which should not call a genuine signature forged.
func (s *Service) checkOurs(f Form) (string, error) {
	if got := f.Values.Get("app_id"); got != s.cfg.AppID {
		return "app_id " + strconv.Quote(got) + " is not ours", ErrNotOurs
	}
	if s.cfg.SellerID != "" && f.Values.Get("seller_id") != s.cfg.SellerID {
		return "seller_id " + strconv.Quote(f.Values.Get("seller_id")) + " is not ours", ErrNotOurs
	}
	return "", nil
}

// apply acts on a verified trade_status for ev.OutTradeNo (notify or query answer).
func (s *Service) apply(ctx context.Context, ev store.Event, amount string, p store.Payment) (store.Event, error) {
	fen, err := money.Parse(amount)
	if err != nil {
		return s.reject(ctx, ev, "bad total_amount "+strconv.Quote(amount))
	}
	if ev.TradeStatus == TradeSuccess || ev.TradeStatus == TradeFinished {
		// The hot path: ApplyPaid checks the order exists and the amount matches inside
		// its own transaction, so no read is needed before it.
		p.Amount = fen
		p.Finished = ev.TradeStatus == TradeFinished
		if p.PaidAt.IsZero() {
			p.PaidAt = s.now()
		}
		ev, err = s.st.ApplyPaid(ctx, ev, p)
		if err == nil {
			s.logEvent(ctx, ev)
		}
		return ev, err
	}
	o, err := s.st.OrderByNo(ctx, ev.OutTradeNo)
	if errors.Is(err, store.ErrNotFound) {
		return s.reject(ctx, ev, "unknown out_trade_no")
	} else if err != nil {
		return ev, err
	}
	if fen != o.Total {
		// Verified but contradicting the order: keep it for the operator, never apply.
		ev.Verdict, ev.Reason = store.VerdictFlagged, "total_amount "+fen.String()+" != order amount "+o.Total.String()
		return s.record(ctx, ev)
	}
	switch ev.TradeStatus {
	case TradeClosed:
		ev, err = s.st.ApplyClosed(ctx, ev, store.StatusClosed)
	case WaitBuyerPay:
		ev.Verdict, ev.Reason = store.VerdictIgnored, "buyer has not paid yet"
		return s.record(ctx, ev)
	default:
		return s.reject(ctx, ev, "unknown trade_status "+strconv.Quote(ev.TradeStatus))
	}
	if err == nil {
		s.logEvent(ctx, ev)
	}
	return ev, err
}

func (s *Service) reject(ctx context.Context, ev store.Event, reason string) (store.Event, error) {
	ev.Verdict, ev.Reason = store.VerdictRejected, reason
	return s.record(ctx, ev)
}

func (s *Service) record(ctx context.Context, ev store.Event) (store.Event, error) {
	ev, err := s.st.RecordEvent(ctx, ev)
	if err == nil {
		s.logEvent(ctx, ev)
	}
	return ev, err
}

func (s *Service) logEvent(ctx context.Context, ev store.Event) {
	level := slog.LevelInfo
	if ev.Verdict == store.VerdictRejected || ev.Verdict == store.VerdictFlagged {
		level = slog.LevelWarn
	}
	s.log.Log(ctx, level, "payment event", "source", ev.Source, "out_trade_no", ev.OutTradeNo,
		"trade_status", ev.TradeStatus, "verdict", ev.Verdict, "reason", ev.Reason, "request_id", ev.RequestID)
}

// HandleReturn checks Alipay's browser return (display only: it carries no
// trade_status) and, if the order is still unpaid, confirms with alipay.trade.query.
// It returns the order as it now stands.
func (s *Service) HandleReturn(ctx context.Context, q url.Values, requestID string) (store.Order, error) {
	ev := store.Event{Source: store.SourceReturn, RequestID: requestID}
	f, err := DecodeValues(q, "")
	if err != nil {
		s.junk(ctx, ev, "unreadable return", q.Encode())
		return store.Order{}, ErrBadSignature
	}
	if reason := s.cfg.Verifier.Verify(f.Raw); reason != "" {
		s.junk(ctx, ev, reason, q.Encode())
		return store.Order{}, ErrBadSignature
	}
	ev.Raw, ev.OutTradeNo, ev.TradeNo = rawJSON(f.Values), f.Values.Get("out_trade_no"), f.Values.Get("trade_no")
	if reason, bad := s.checkOurs(f); reason != "" {
		if _, err := s.reject(ctx, ev, reason); err != nil {
			return store.Order{}, err
		}
		return store.Order{}, bad
	}
	o, err := s.st.OrderByNo(ctx, ev.OutTradeNo)
	if err != nil {
		return store.Order{}, err
	}
	// A return means the buyer paid. For an unpaid order the query settles it; for a
	// cancelled or closed one it records what Alipay holds (flagged, never applied), so
	// the page can tell the shopper their money is owed back. Either way only once: a
	// return replayed for an order already settled records nothing and calls nobody.
	switch o.Status {
	case store.StatusUnpaid:
	case store.StatusCancelled, store.StatusClosed:
		if _, known, err := s.st.UnappliedPayment(ctx, o.ID); err != nil || known {
			return o, err
		}
	default:
		return o, nil
	}
	ev.Verdict, ev.Reason = store.VerdictVerified, "return verified; display only"
	if _, err := s.record(ctx, ev); err != nil {
		return store.Order{}, err
	}
	if _, err := s.Reconcile(ctx, o, requestID); err != nil {
		// The page still shows the order; the notify or the worker will settle it.
		s.log.WarnContext(ctx, "query on return failed", "out_trade_no", o.OutTradeNo, "err", err)
	}
	return s.st.OrderByNo(ctx, o.OutTradeNo)
}

// Reconcile asks alipay.trade.query about o and applies the answer by the notify rules.
func (s *Service) Reconcile(ctx context.Context, o store.Order, requestID string) (store.Event, error) {
	rsp, err := s.gw.TradeQuery(ctx, alipay.TradeQuery{OutTradeNo: o.OutTradeNo})
	var rspErr alipay.Error
	if rsp != nil {
		rspErr = rsp.Error
	}
	code, err := subCode(rspErr, err)
	if err != nil {
		return store.Event{}, fmt.Errorf("%w: %v", ErrGatewayDown, err)
	}
	ev := store.Event{Source: store.SourceQuery, RequestID: requestID, OutTradeNo: o.OutTradeNo}
	raw, _ := json.Marshal(rsp)
	ev.Raw = string(raw)
	if code == "ACQ.TRADE_NOT_EXIST" {
		ev.Verdict, ev.Reason = store.VerdictIgnored, "trade not created at Alipay (cashier never opened)"
		return s.record(ctx, ev)
	}
	if code != "" {
		return s.reject(ctx, ev, "trade.query answered "+code)
	}
	if rsp.OutTradeNo != "" && rsp.OutTradeNo != o.OutTradeNo {
		return s.reject(ctx, ev, "trade.query answered about "+rsp.OutTradeNo)
	}
	ev.TradeStatus, ev.TradeNo = string(rsp.TradeStatus), rsp.TradeNo
	return s.apply(ctx, ev, rsp.TotalAmount, store.Payment{
		TradeNo: rsp.TradeNo, BuyerID: rsp.BuyerUserId, BuyerLogonID: rsp.BuyerLogonId, BuyerOpenID: rsp.BuyerOpenId,
		PaidAt: s.alipayTime(rsp.SendPayDate), BuyerPaid: optionalFen(rsp.BuyerPayAmount), Receipt: optionalFen(rsp.ReceiptAmount),
	})
}

// Cancel closes an unpaid order at the shopper's request: alipay.trade.close first,
// so Alipay stops accepting payment. If Alipay says the trade is already paid, the
// order becomes paid instead and ErrAlreadyPaid is returned.
func (s *Service) Cancel(ctx context.Context, o store.Order, requestID string) error {
	return s.close(ctx, o, store.StatusCancelled, requestID, store.System)
}

// CancelBy is Cancel by an operator, logged with the cancel itself.
func (s *Service) CancelBy(ctx context.Context, o store.Order, by store.Actor, requestID string) error {
	return s.close(ctx, o, store.StatusCancelled, requestID, by)
}

// Expire closes an unpaid order past its time_expire, by the same rule as Cancel.
func (s *Service) Expire(ctx context.Context, o store.Order, requestID string) error {
	return s.close(ctx, o, store.StatusClosed, requestID, store.System)
}

func (s *Service) close(ctx context.Context, o store.Order, status, requestID string, by store.Actor) error {
	if o.Status != store.StatusUnpaid {
		return store.ErrNotUnpaid
	}
	rsp, err := s.gw.TradeClose(ctx, alipay.TradeClose{OutTradeNo: o.OutTradeNo})
	var rspErr alipay.Error
	if rsp != nil {
		rspErr = rsp.Error
	}
	code, err := subCode(rspErr, err)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrGatewayDown, err)
	}
	switch code {
	case "", "ACQ.TRADE_NOT_EXIST":
		// Closed at Alipay, or never opened there: nobody can pay it any more.
	case "ACQ.TRADE_STATUS_ERROR":
		// Paid (or already closed) at Alipay: the query decides which.
		ev, err := s.Reconcile(ctx, o, requestID)
		if err != nil {
			return err
		}
		if ev.TradeStatus == TradeSuccess || ev.TradeStatus == TradeFinished {
			return ErrAlreadyPaid
		}
		if ev.TradeStatus != TradeClosed {
			return fmt.Errorf("%w: trade.close refused and trade is %s", ErrGatewayDown, ev.TradeStatus)
		}
		if ev.Verdict == store.VerdictApplied {
			// Alipay had already closed it (its own expiry): the query just closed the order.
			return nil
		}
	default:
		return fmt.Errorf("%w: trade.close answered %s", ErrGatewayDown, code)
	}
	raw, _ := json.Marshal(rsp)
	ev := store.Event{Source: store.SourceClose, RequestID: requestID, OutTradeNo: o.OutTradeNo, Raw: string(raw),
		TradeStatus: TradeClosed}
	ev, err = s.st.ApplyClosedBy(ctx, ev, status, by)
	if err != nil {
		return err
	}
	s.logEvent(ctx, ev)
	if ev.Verdict != store.VerdictApplied {
		return store.ErrNotUnpaid
	}
	return nil
}

func (s *Service) alipayTime(v string) time.Time {
	t, err := shanghai.Parse(v)
	if err != nil {
		return time.Time{}
	}
	return t
}
