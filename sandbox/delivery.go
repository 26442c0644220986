package sandbox

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/simplifiedchinese"
)

// retryIntervals are Alipay's waits before attempts 2…8 (attempt 1 is immediate):
// 4m, 10m, 10m, 1h, 2h, 6h, 15h — eight notifications within about 25 hours.
var retryIntervals = []time.Duration{
	4 * time.Minute, 10 * time.Minute, 10 * time.Minute,
	time.Hour, 2 * time.Hour, 6 * time.Hour, 15 * time.Hour,
}

const maxAttempts = 8

const maxRecordedBody = 1024

// DeliverDue attempts every notification due at Now() once and returns how many it
// attempted. Passes are serialised so a notification is never in flight twice.
func (e *Emulator) DeliverDue(ctx context.Context) (int, error) {
	e.passMu.Lock()
	defer e.passMu.Unlock()
	now := e.nowMs()
	var due []notificationRow
	if err := e.db.SelectContext(ctx, &due, `SELECT * FROM notifications WHERE status=? AND next_at <= ?
		ORDER BY next_at, id LIMIT 200`, deliveryPending, now); err != nil {
		return 0, err
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	errs := make(chan error, len(due))
	for _, n := range due {
		wg.Add(1)
		sem <- struct{}{}
		go func(n notificationRow) {
			defer wg.Done()
			defer func() { <-sem }()
			if err := e.deliverOne(ctx, n); err != nil {
				errs <- err
			}
		}(n)
	}
	wg.Wait()
	close(errs)
	return len(due), errors.Join(collect(errs)...)
}

func collect(ch chan error) []error {
	var out []error
	for err := range ch {
		out = append(out, err)
	}
	return out
}

// attemptResult is one HTTP exchange (or its absence) with the shop.
type attemptResult struct {
	status int
	body   string
	err    string
	ok     bool // body exactly "success" with HTTP 200
}

func (e *Emulator) deliverOne(ctx context.Context, n notificationRow) error {
	faults, err := e.takeDeliveryFaults(ctx, n.OutTradeNo)
	if err != nil {
		return err
	}
	fault := faultNames(faults)
	now := e.nowMs()
	if contains(faults, faultDelay) {
		// Held back: not sent now, sent at the next step of the schedule; not counted.
		next := now + e.scaled(retryIntervals[min(n.Attempts, len(retryIntervals)-1)]).Milliseconds()
		if err := e.recordAttempt(ctx, n, now, attemptResult{err: "故障注入：延后到下一档，本次未发送"}, fault); err != nil {
			return err
		}
		_, err := e.db.ExecContext(ctx, `UPDATE notifications SET next_at=? WHERE id=?`, next, n.ID)
		return err
	}
	values, err := url.ParseQuery(n.Params)
	if err != nil {
		return fmt.Errorf("notification %d: stored params: %w", n.ID, err)
	}
	msg, err := e.buildNotify(n, values, faults, now)
	if err != nil {
		return err
	}

	var results []attemptResult
	switch {
	case contains(faults, faultDrop):
		results = []attemptResult{{err: "故障注入：已丢弃，本次未发送"}}
	case contains(faults, faultDuplicate):
		results = make([]attemptResult, 2)
		var wg sync.WaitGroup
		for i := range results {
			wg.Add(1)
			go func(i int) { defer wg.Done(); results[i] = e.post(ctx, n.NotifyURL, msg) }(i)
		}
		wg.Wait()
	default:
		results = []attemptResult{e.post(ctx, n.NotifyURL, msg)}
	}
	if ctx.Err() != nil {
		// Shutting down mid-flight: leave it due so it is sent after a restart.
		return nil
	}
	delivered := false
	for _, r := range results {
		if err := e.recordAttempt(ctx, n, now, r, fault); err != nil {
			return err
		}
		delivered = delivered || r.ok
	}
	if delivered && (contains(faults, faultForge) || contains(faults, faultWrongAmount)) {
		e.log.Warn("sandbox: the shop answered success to a bad notify; it must answer fail",
			"out_trade_no", n.OutTradeNo, "fault", fault)
		delivered = false // the genuine notify has still not been received
	}
	attempts := n.Attempts + 1
	switch {
	case delivered:
		_, err = e.db.ExecContext(ctx, `UPDATE notifications SET attempts=?, status=? WHERE id=?`, attempts, deliveryDelivered, n.ID)
	case attempts >= maxAttempts:
		e.log.Warn("sandbox: notify given up after 8 attempts", "out_trade_no", n.OutTradeNo, "notify_id", n.NotifyID)
		_, err = e.db.ExecContext(ctx, `UPDATE notifications SET attempts=?, status=? WHERE id=?`, attempts, deliveryGaveUp, n.ID)
	default:
		next := now + e.scaled(retryIntervals[attempts-1]).Milliseconds()
		_, err = e.db.ExecContext(ctx, `UPDATE notifications SET attempts=?, next_at=? WHERE id=?`, attempts, next, n.ID)
	}
	return err
}

// notifyMessage is one notify as sent: its form body and Content-Type.
type notifyMessage struct {
	body        string
	contentType string
}

// Alipay's notify transport: this exact Content-Type (its "text/html" is not a valid
// media-type parameter, so a strict parser reports an error and loses the charset) and
// User-Agent.
const (
	notifyContentType = "application/x-www-form-urlencoded; text/html; charset=UTF-8"
	notifyContentGBK  = "application/x-www-form-urlencoded; text/html; charset=gbk"
	notifyUserAgent   = "Mozilla/4.0"
)

// buildNotify turns a stored notification into the request of one attempt, applying the
// attempt's content faults, then signing: wrong_amount and empty_param change the
// fields, gbk the encoding (the signature covers the GBK bytes), v2_sign the signing
// rule, forge the key. In certificate mode alipay_cert_sn rides along (outside the
// signed content under the usual rule, inside it under the V2 rule).
func (e *Emulator) buildNotify(n notificationRow, values url.Values, faults []string, now int64) (notifyMessage, error) {
	values.Set("notify_id", n.NotifyID)
	values.Set("notify_time", time.UnixMilli(now).In(shanghai).Format(alipayTime))
	if e.certs != nil {
		values.Set("alipay_cert_sn", e.certs.alipaySN)
	}
	if contains(faults, faultWrongAmount) {
		if fen, err := parseAmount(values.Get("total_amount")); err == nil {
			values.Set("total_amount", formatFen(fen+1))
		}
	}
	if contains(faults, faultEmptyParam) {
		for _, k := range []string{"body", "passback_params", "gmt_close", "out_biz_no"} {
			if values.Get(k) == "" {
				values.Set(k, "") // sent as "k=", left out of the signature by Alipay's rule
				break
			}
		}
	}
	msg := notifyMessage{contentType: notifyContentType}
	if contains(faults, faultGBK) {
		values.Set("charset", "gbk")
		enc := encoding.ReplaceUnsupported(simplifiedchinese.GBK.NewEncoder())
		for k, vs := range values {
			for i, v := range vs {
				b, err := enc.String(v)
				if err != nil {
					return msg, err
				}
				vs[i] = b
			}
			values[k] = vs
		}
		msg.contentType = notifyContentGBK
	}
	key := e.key
	if contains(faults, faultForge) {
		var err error
		if key, err = e.forgeKey(); err != nil {
			return msg, err
		}
	}
	var err error
	if contains(faults, faultV2Sign) {
		err = signV2Values(key, values)
	} else {
		err = signNotifyValues(key, values)
	}
	msg.body = values.Encode()
	return msg, err
}

// post sends one notify. Redirects are not followed: Alipay wants the body "success"
// from notify_url itself.
func (e *Emulator) post(ctx context.Context, target string, msg notifyMessage) attemptResult {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(msg.body))
	if err != nil {
		return attemptResult{err: err.Error()}
	}
	req.Header.Set("Content-Type", msg.contentType)
	req.Header.Set("User-Agent", notifyUserAgent)
	c := *e.client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Do(req)
	if err != nil {
		return attemptResult{err: "网络错误：" + err.Error()}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxRecordedBody+1))
	res := attemptResult{status: resp.StatusCode, body: string(b)}
	if err != nil {
		res.err = err.Error()
	}
	res.ok = err == nil && resp.StatusCode == http.StatusOK && res.body == "success"
	if len(res.body) > maxRecordedBody {
		res.body = res.body[:maxRecordedBody]
	}
	return res
}

func (e *Emulator) recordAttempt(ctx context.Context, n notificationRow, at int64, r attemptResult, fault string) error {
	_, err := e.db.ExecContext(ctx, `INSERT INTO attempts (notification_id, out_trade_no, at, http_status, body, error, fault)
		VALUES (?,?,?,?,?,?,?)`, n.ID, n.OutTradeNo, at, r.status, r.body, r.err, fault)
	return err
}

// forgeKey is a throwaway key, made once, for forged notifies.
func (e *Emulator) forgeKey() (*rsa.PrivateKey, error) {
	e.forgeMu.Lock()
	defer e.forgeMu.Unlock()
	if e.forgeK == nil {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, err
		}
		e.forgeK = k
	}
	return e.forgeK, nil
}

// resend re-arms a trade's latest notification for immediate delivery, or creates the
// TRADE_SUCCESS notification of a paid trade that never had one (paid with notify=off).
func (e *Emulator) resend(ctx context.Context, outTradeNo string) error {
	now := e.nowMs()
	tx, err := e.db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	t, err := getTrade(ctx, tx, outTradeNo)
	if errors.Is(err, errNotFound) {
		if _, cerr := getCashier(ctx, tx, outTradeNo); cerr == nil {
			return errNothingToNotify // a cashier is open, but no trade exists yet
		}
	}
	if err != nil {
		return err
	}
	var id int64
	err = tx.GetContext(ctx, &id, `SELECT COALESCE(MAX(id), 0) FROM notifications WHERE out_trade_no=?`, outTradeNo)
	if err != nil {
		return err
	}
	switch {
	case id != 0:
		_, err = tx.ExecContext(ctx, `UPDATE notifications SET status=?, next_at=? WHERE id=?`, deliveryPending, now, id)
	case !t.paid():
		return errNothingToNotify
	case t.NotifyURL == "":
		return errNoNotifyURL
	default:
		pt := *t
		if pt.Status == statusClosed {
			pt.Status = statusSuccess // the payment's notify, as it would have been
		}
		err = insertNotification(ctx, tx, t.OutTradeNo, t.NotifyURL, e.notifyParams(&pt, nil), now)
	}
	if err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	e.kick()
	return nil
}

var (
	errNothingToNotify = errors.New("交易尚未支付，没有可发送的通知")
	errNoNotifyURL     = errors.New("该交易没有 notify_url")
)
