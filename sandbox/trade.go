package sandbox

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

var (
	errTradeClosed    = errors.New("trade closed")
	errTradePaid      = errors.New("trade already paid")
	errCashierExpired = errors.New("cashier past its deadline")
)

// payInput is a page-pay or WAP-pay request after every field rule has passed.
type payInput struct {
	Method                                          string // methodPage or methodWap
	OutTradeNo, Subject, Body, NotifyURL, ReturnURL string
	QuitURL, PassbackParams                         string
	TimeExpire, TimeoutExpress                      string
	TotalFen                                        int64
}

// wapTime is alipay.trade.wap.pay's own time_expire format (minutes, no seconds).
const wapTime = "2006-01-02 15:04"

// validatePay applies Alipay's field rules to a page-pay or WAP-pay request; the
// first failure names the error code.
func validatePay(req *gatewayRequest) (*payInput, *gwError) {
	b := req.Biz
	in := &payInput{
		Method:     methodPage,
		OutTradeNo: b["out_trade_no"], Subject: b["subject"], Body: b["body"],
		NotifyURL: req.Params.Get("notify_url"), ReturnURL: req.Params.Get("return_url"),
		PassbackParams: b["passback_params"], TimeExpire: b["time_expire"], TimeoutExpress: b["timeout_express"],
	}
	productCode := "FAST_INSTANT_TRADE_PAY"
	if req.Method == wapPayMethod {
		in.Method, in.QuitURL, productCode = methodWap, b["quit_url"], "QUICK_WAP_WAY"
	}
	if !validOutTradeNo(in.OutTradeNo) {
		return nil, pageError("invalid-out-trade-no", "商户订单号 out_trade_no 必填，64 个字符以内，只能包含字母、数字、下划线")
	}
	fen, err := parseAmount(b["total_amount"])
	if err != nil {
		return nil, pageError("invalid-total-amount", err.Error())
	}
	in.TotalFen = fen
	if !validSubject(in.Subject) {
		return nil, pageError("invalid-subject", "订单标题 subject 必填，256 个字符以内")
	}
	if b["product_code"] != productCode {
		return nil, pageError("invalid-product-code", "product_code 必须为 "+productCode)
	}
	if in.TimeExpire != "" {
		if _, err := parseTimeExpire(in.Method, in.TimeExpire); err != nil {
			format := "yyyy-MM-dd HH:mm:ss"
			if in.Method == methodWap {
				format = "yyyy-MM-dd HH:mm"
			}
			return nil, pageError("invalid-time-expire", "time_expire 格式必须为 "+format)
		}
	}
	if in.TimeoutExpress != "" {
		if _, _, err := parseTimeoutExpress(in.TimeoutExpress); err != nil {
			return nil, pageError("invalid-timeout-express", err.Error())
		}
	}
	if in.NotifyURL != "" {
		if err := validCallbackURL(in.NotifyURL); err != nil {
			return nil, pageError("invalid-notify-url", "notify_url "+err.Error())
		}
	}
	if in.ReturnURL != "" {
		if err := validCallbackURL(in.ReturnURL); err != nil {
			return nil, pageError("invalid-return-url", "return_url "+err.Error())
		}
	}
	if in.QuitURL != "" {
		if err := validQuitURL(in.QuitURL); err != nil {
			return nil, pageError("invalid-quit-url", "quit_url "+err.Error())
		}
	}
	return in, nil
}

// parseTimeExpire reads time_expire in the format of the method: seconds for page pay,
// minutes for WAP pay (a seconds value is an error there, as at Alipay).
func parseTimeExpire(method, s string) (time.Time, error) {
	if method == methodWap {
		return time.ParseInLocation(wapTime, s, shanghai)
	}
	return parseAlipayTime(s)
}

// expiresAt: time_expire (absolute, the merchant's own wall-clock deadline, never scaled)
// wins; otherwise timeout_express or the 15-day default, both relative and scaled.
func (e *Emulator) expiresAt(method string, created time.Time, timeExpire, timeoutExpress string) time.Time {
	if timeExpire != "" {
		if t, err := parseTimeExpire(method, timeExpire); err == nil {
			return t
		}
	}
	if timeoutExpress != "" {
		if d, midnight, err := parseTimeoutExpress(timeoutExpress); err == nil {
			if midnight {
				c := created.In(shanghai)
				return time.Date(c.Year(), c.Month(), c.Day()+1, 0, 0, 0, 0, shanghai)
			}
			return created.Add(e.scaled(d))
		}
	}
	return created.Add(e.scaled(defaultTimeout))
}

// payPage handles page pay and WAP pay: the request is stored as a pending cashier (no
// trade exists yet, as at Alipay) and the cashier page is shown.
func (e *Emulator) payPage(w http.ResponseWriter, r *http.Request, req *gatewayRequest) {
	in, gerr := validatePay(req)
	if gerr != nil {
		e.renderError(w, gerr, requestBackURL(req))
		return
	}
	c, gerr := e.openCashier(r.Context(), in)
	if gerr != nil {
		e.renderError(w, gerr, backURLOf(in.Method, in.ReturnURL, in.QuitURL, in.NotifyURL))
		return
	}
	e.renderCashier(w, c)
}

// openCashier stores (or, on "pay again", refreshes) the cashier of in. A trade that
// already exists keeps its rules: the amount never changes, a paid or closed trade can't
// be paid again, and a waiting one takes the new callbacks and deadline.
func (e *Emulator) openCashier(ctx context.Context, in *payInput) (*cashierRow, *gwError) {
	now := e.now()
	tx, err := e.db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, pageError("SYSTEM_ERROR", "系统繁忙")
	}
	defer tx.Rollback()
	created := now
	t, err := getTrade(ctx, tx, in.OutTradeNo)
	switch {
	case errors.Is(err, errNotFound):
		c, err := getCashier(ctx, tx, in.OutTradeNo)
		switch {
		case errors.Is(err, errNotFound):
		case err != nil:
			return nil, pageError("SYSTEM_ERROR", "系统繁忙")
		case c.TotalFen != in.TotalFen:
			return nil, inconsistent(in.OutTradeNo, c.TotalFen, in.TotalFen)
		default:
			created = time.UnixMilli(c.CreatedAt)
		}
	case err != nil:
		return nil, pageError("SYSTEM_ERROR", "系统繁忙")
	case t.TotalFen != in.TotalFen:
		return nil, inconsistent(t.OutTradeNo, t.TotalFen, in.TotalFen)
	case t.Status == statusSuccess || t.Status == statusFinished:
		return nil, pageError("ACQ.TRADE_HAS_SUCCESS", "交易已支付成功，请勿重复支付")
	case t.Status == statusClosed:
		return nil, pageError("ACQ.TRADE_HAS_CLOSE", "交易已关闭")
	case t.ExpiresAt <= now.UnixMilli():
		if err := e.closeIfExpired(ctx, tx, t); err == nil {
			_ = tx.Commit()
		}
		return nil, pageError("ACQ.TRADE_HAS_CLOSE", "交易已超时关闭")
	default:
		created = time.UnixMilli(t.CreatedAt)
	}
	exp := e.expiresAt(in.Method, created, in.TimeExpire, in.TimeoutExpress)
	if exp.UnixMilli() <= now.UnixMilli() {
		// A deadline already past: no cashier, and no trade to query or close.
		return nil, pageError("ACQ.TRADE_HAS_CLOSE", "交易已超过支付截止时间（time_expire），无法付款")
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO cashiers (out_trade_no, method, app_id, subject, body, total_fen,
		notify_url, return_url, quit_url, passback_params, time_expire, timeout_express, expires_at, created_at, opened_at)
		VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT (out_trade_no) DO UPDATE SET method=excluded.method, notify_url=excluded.notify_url,
		return_url=excluded.return_url, quit_url=excluded.quit_url, passback_params=excluded.passback_params,
		time_expire=excluded.time_expire, timeout_express=excluded.timeout_express,
		expires_at=excluded.expires_at, opened_at=excluded.opened_at`,
		in.OutTradeNo, in.Method, e.cfg.AppID, in.Subject, in.Body, in.TotalFen, in.NotifyURL, in.ReturnURL,
		in.QuitURL, in.PassbackParams, in.TimeExpire, in.TimeoutExpress, exp.UnixMilli(), created.UnixMilli(), now.UnixMilli())
	if err != nil {
		e.log.Error("sandbox: store cashier", "err", err)
		return nil, pageError("SYSTEM_ERROR", "系统繁忙")
	}
	if t != nil {
		// "Pay again" on a waiting trade: the callbacks and the deadline may change, the amount may not.
		_, err = tx.ExecContext(ctx, `UPDATE trades SET notify_url=?, return_url=?, quit_url=?, method=?,
			time_expire=?, timeout_express=?, expires_at=?, passback_params=? WHERE out_trade_no=? AND status=?`,
			in.NotifyURL, in.ReturnURL, in.QuitURL, in.Method, in.TimeExpire, in.TimeoutExpress, exp.UnixMilli(),
			in.PassbackParams, t.OutTradeNo, statusWait)
		if err != nil {
			return nil, pageError("SYSTEM_ERROR", "系统繁忙")
		}
	}
	c, err := getCashier(ctx, tx, in.OutTradeNo)
	if err != nil || tx.Commit() != nil {
		return nil, pageError("SYSTEM_ERROR", "系统繁忙")
	}
	return c, nil
}

func inconsistent(no string, had, asked int64) *gwError {
	return pageError("ACQ.CONTEXT_INCONSISTENT", fmt.Sprintf(
		"交易信息被篡改：订单 %s 已以金额 %s 提交，本次请求金额 %s", no, formatFen(had), formatFen(asked)))
}

// ensureTrade returns the trade of outTradeNo, creating it (WAIT_BUYER_PAY) from its
// pending cashier when the buyer first acts on it. A cashier past its deadline can no
// longer create a trade (errCashierExpired); no cashier and no trade is errNotFound.
func (e *Emulator) ensureTrade(ctx context.Context, q queryer, outTradeNo string) (*tradeRow, bool, error) {
	t, err := getTrade(ctx, q, outTradeNo)
	if !errors.Is(err, errNotFound) {
		return t, false, err
	}
	c, err := getCashier(ctx, q, outTradeNo)
	if err != nil {
		return nil, false, err
	}
	now := e.now()
	if c.ExpiresAt <= now.UnixMilli() {
		return nil, false, errCashierExpired
	}
	var tradeNo string
	for i := 0; ; i++ {
		tradeNo = newTradeNo(now)
		var n int
		if err := q.GetContext(ctx, &n, `SELECT COUNT(*) FROM trades WHERE trade_no = ?`, tradeNo); err != nil || n == 0 || i > 5 {
			break
		}
	}
	_, err = q.ExecContext(ctx, `INSERT INTO trades (out_trade_no, trade_no, app_id, subject, body,
		total_fen, status, notify_url, return_url, passback_params, time_expire, timeout_express,
		expires_at, created_at, method, quit_url) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		c.OutTradeNo, tradeNo, c.AppID, c.Subject, c.Body, c.TotalFen, statusWait,
		c.NotifyURL, c.ReturnURL, c.PassbackParams, c.TimeExpire, c.TimeoutExpress,
		c.ExpiresAt, now.UnixMilli(), c.Method, c.QuitURL)
	if err != nil {
		return nil, false, err
	}
	t, err = getTrade(ctx, q, outTradeNo)
	return t, true, err
}

// scan is the buyer scanning the QR code or logging in on the cashier: the trade exists
// from now on (WAIT_BUYER_PAY), unpaid. Idempotent.
func (e *Emulator) scan(ctx context.Context, outTradeNo string) (*tradeRow, error) {
	tx, err := e.db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	t, created, err := e.ensureTrade(ctx, tx, outTradeNo)
	if err != nil {
		return nil, err
	}
	if err := e.closeIfExpired(ctx, tx, t); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	if created {
		e.log.Info("sandbox: trade created", "out_trade_no", t.OutTradeNo, "trade_no", t.TradeNo)
	}
	return t, nil
}

// pay marks a trade paid by the sandbox buyer (creating it from its cashier first if the
// buyer had not acted yet) and queues its notify, unless notify is false: a lost notify.
// Paying a paid trade is idempotent; a closed or expired one fails. The payment consumes
// the trade's pending discount and open_id faults; a pending v2_sign marks the return URL.
func (e *Emulator) pay(ctx context.Context, outTradeNo string, notify bool) (*tradeRow, error) {
	now := e.nowMs()
	tx, err := e.db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	t, _, err := e.ensureTrade(ctx, tx, outTradeNo)
	if errors.Is(err, errCashierExpired) {
		return nil, errTradeClosed
	}
	if err != nil {
		return nil, err
	}
	switch {
	case t.Status == statusSuccess || t.Status == statusFinished:
		return t, nil
	case t.Status == statusClosed && t.paid():
		return t, errTradePaid // paid, then fully refunded
	case t.Status == statusClosed:
		return t, errTradeClosed
	case t.ExpiresAt <= now:
		if err := e.closeIfExpired(ctx, tx, t); err != nil {
			return nil, err
		}
		if err := tx.Commit(); err != nil {
			return nil, err
		}
		return t, errTradeClosed
	}
	took, err := takeFaults(ctx, tx, outTradeNo, faultDiscount, faultOpenID)
	if err != nil {
		return nil, err
	}
	pending, err := pendingFaults(ctx, tx, outTradeNo)
	if err != nil {
		return nil, err
	}
	t.Status, t.PaidAt = statusSuccess, sql.NullInt64{Int64: now, Valid: true}
	t.FinishAt = sql.NullInt64{Int64: now + e.scaled(e.cfg.RefundWindow).Milliseconds(), Valid: true}
	if contains(took, faultDiscount) {
		t.DiscountFen = min(500, t.TotalFen-1) // a ¥5.00 coupon, or all but 0.01 of a smaller total
	}
	if contains(took, faultOpenID) {
		t.BuyerOpenID = e.buyerOpenID()
	}
	t.ReturnV2 = hasFault(pending, faultV2Sign)
	res, err := tx.ExecContext(ctx, `UPDATE trades SET status=?, paid_at=?, finish_at=?, discount_fen=?,
		buyer_open_id=?, return_v2=? WHERE out_trade_no=? AND status=?`,
		statusSuccess, now, t.FinishAt, t.DiscountFen, t.BuyerOpenID, t.ReturnV2, outTradeNo, statusWait)
	if err != nil {
		return nil, err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return nil, errors.New("trade changed concurrently")
	}
	if notify && t.NotifyURL != "" {
		if err := insertNotification(ctx, tx, t.OutTradeNo, t.NotifyURL, e.notifyParams(t, nil), now); err != nil {
			return nil, err
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	e.log.Info("sandbox: trade paid", "out_trade_no", t.OutTradeNo, "trade_no", t.TradeNo, "notify", notify, "faults", faultNames(took))
	if notify {
		e.kick()
	}
	return t, nil
}

// buyerOpenID is the sandbox buyer's open id for this app: apps made since 2023 see
// buyer_open_id instead of the 2088… user id. Stable per app, like Alipay's.
func (e *Emulator) buyerOpenID() string {
	h := sha256.Sum256([]byte("open_id:" + e.cfg.AppID + ":" + buyerUserID))
	return "074a" + hex.EncodeToString(h[:])[:30]
}

// voucherID is the id of the coupon a discounted trade used.
func voucherID(t *tradeRow) string { return t.TradeNo[:8] + "000730" + t.TradeNo[14:] }

const voucherName = "沙箱满减券"

// refundInfo adds the refund fields to a notify.
type refundInfo struct {
	OutBizNo   string
	RefundFen  int64 // cumulative
	RefundedAt int64
}

// notifyParams is a trade's notification without notify_time, notify_id and sign, which
// are set per attempt. Empty fields are left out: Alipay's verification rule drops them
// while smartwalle's does not, so sending one would break verification. A refund notify
// carries refund_fee, gmt_refund, out_biz_no (and gmt_close when it closed the trade)
// but not the payment's amount fields.
func (e *Emulator) notifyParams(t *tradeRow, ref *refundInfo) url.Values {
	v := url.Values{}
	set := func(k, val string) {
		if val != "" {
			v.Set(k, val)
		}
	}
	set("notify_type", "trade_status_sync")
	set("app_id", t.AppID)
	set("auth_app_id", t.AppID)
	set("charset", "utf-8")
	set("version", "1.0")
	set("trade_no", t.TradeNo)
	set("out_trade_no", t.OutTradeNo)
	if t.BuyerOpenID != "" {
		set("buyer_open_id", t.BuyerOpenID)
	} else {
		set("buyer_id", buyerUserID)
	}
	set("buyer_logon_id", buyerLogonMask)
	set("seller_id", e.cfg.SellerID)
	set("seller_email", sellerEmail)
	set("trade_status", t.Status)
	set("total_amount", formatFen(t.TotalFen))
	if ref == nil {
		paid := formatFen(t.receiptFen())
		set("receipt_amount", paid)
		set("invoice_amount", paid)
		set("buyer_pay_amount", paid)
		set("point_amount", "0.00")
		set("fund_bill_list", notifyFundBills(t))
		if t.DiscountFen > 0 {
			set("voucher_detail_list", fmt.Sprintf(`[{"amount":"%s","merchantContribute":"%s","name":"%s","otherContribute":"0.00","type":"ALIPAY_FIX_VOUCHER","voucherId":"%s"}]`,
				formatFen(t.DiscountFen), formatFen(t.DiscountFen), voucherName, voucherID(t)))
		}
		if t.RefundedFen > 0 {
			set("refund_fee", formatFen(t.RefundedFen))
		}
	}
	set("subject", t.Subject)
	set("body", t.Body)
	set("gmt_create", bjFormat(t.CreatedAt))
	if t.PaidAt.Valid {
		set("gmt_payment", bjFormat(t.PaidAt.Int64))
	}
	set("passback_params", t.PassbackParams)
	if ref != nil {
		set("out_biz_no", ref.OutBizNo)
		set("refund_fee", formatFen(ref.RefundFen))
		// Alipay gives gmt_refund with milliseconds.
		set("gmt_refund", time.UnixMilli(ref.RefundedAt).In(shanghai).Format("2006-01-02 15:04:05.000"))
		if t.Status == statusClosed {
			set("gmt_close", bjFormat(ref.RefundedAt))
		}
	}
	return v
}

// notifyFundBills is fund_bill_list as the notify spells it (camelCase, a JSON string).
func notifyFundBills(t *tradeRow) string {
	s := `[{"amount":"` + formatFen(t.receiptFen()) + `","fundChannel":"ALIPAYACCOUNT"}`
	if t.DiscountFen > 0 {
		s += `,{"amount":"` + formatFen(t.DiscountFen) + `","fundChannel":"DISCOUNT"}`
	}
	return s + "]"
}

// returnURL is the signed browser redirect after paying. It carries no trade_status:
// Alipay's return is display-only.
func (e *Emulator) returnURL(t *tradeRow) (string, error) {
	if t.ReturnURL == "" {
		return "", nil
	}
	method := "alipay.trade.page.pay.return"
	if t.Method == methodWap {
		method = "alipay.trade.wap.pay.return"
	}
	v := url.Values{}
	for k, val := range map[string]string{
		"method": method, "out_trade_no": t.OutTradeNo, "trade_no": t.TradeNo,
		"total_amount": formatFen(t.TotalFen), "seller_id": e.cfg.SellerID, "app_id": t.AppID,
		"auth_app_id": t.AppID, "charset": "utf-8", "version": "1.0", "timestamp": e.now().In(shanghai).Format(alipayTime),
	} {
		if val != "" {
			v.Set(k, val)
		}
	}
	var err error
	if t.ReturnV2 {
		err = signV2Values(e.key, v)
	} else {
		err = signNotifyValues(e.key, v)
	}
	if err != nil {
		return "", err
	}
	sep := "?"
	if strings.Contains(t.ReturnURL, "?") {
		sep = "&"
	}
	return t.ReturnURL + sep + v.Encode(), nil
}

// ExpireDue closes every WAIT_BUYER_PAY trade whose deadline has passed. Alipay sends no
// notify for a timeout close of a page-pay trade, so neither does this. A cashier whose
// trade was never created needs nothing: past its deadline it simply can't be paid.
func (e *Emulator) ExpireDue(ctx context.Context) (int, error) {
	now := e.nowMs()
	res, err := e.db.ExecContext(ctx, `UPDATE trades SET status=?, closed_at=? WHERE status=? AND expires_at <= ?`,
		statusClosed, now, statusWait, now)
	if err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	if n > 0 {
		e.log.Info("sandbox: trades expired", "count", n)
	}
	return int(n), nil
}

// FinishDue moves every paid trade whose refund window (Config.RefundWindow since
// payment) has passed to TRADE_FINISHED and queues its TRADE_FINISHED notify. A fully
// refunded trade is already closed and never finishes.
func (e *Emulator) FinishDue(ctx context.Context) (int, error) {
	now := e.nowMs()
	var due []string
	if err := e.db.SelectContext(ctx, &due, `SELECT out_trade_no FROM trades WHERE status=? AND finish_at IS NOT NULL
		AND finish_at <= ? ORDER BY finish_at LIMIT 500`, statusSuccess, now); err != nil {
		return 0, err
	}
	n := 0
	for _, no := range due {
		ok, err := e.finishOne(ctx, no, now)
		if err != nil {
			return n, err
		}
		if ok {
			n++
		}
	}
	if n > 0 {
		e.log.Info("sandbox: trades finished", "count", n)
		e.kick()
	}
	return n, nil
}

func (e *Emulator) finishOne(ctx context.Context, outTradeNo string, now int64) (bool, error) {
	tx, err := e.db.BeginTxx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE trades SET status=?, finished_at=? WHERE out_trade_no=? AND status=?
		AND finish_at IS NOT NULL AND finish_at <= ?`, statusFinished, now, outTradeNo, statusSuccess, now)
	if err != nil {
		return false, err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return false, nil
	}
	t, err := getTrade(ctx, tx, outTradeNo)
	if err != nil {
		return false, err
	}
	if t.NotifyURL != "" {
		if err := insertNotification(ctx, tx, t.OutTradeNo, t.NotifyURL, e.notifyParams(t, nil), now); err != nil {
			return false, err
		}
	}
	return true, tx.Commit()
}

// settle runs the expiry and finishing that are due, so an answer never depends on
// whether the background loop has run yet. It only writes when something is due.
func (e *Emulator) settle(ctx context.Context) {
	now := e.nowMs()
	var due bool
	err := e.db.GetContext(ctx, &due, `SELECT EXISTS(SELECT 1 FROM trades WHERE status=? AND expires_at <= ?)
		OR EXISTS(SELECT 1 FROM trades WHERE status=? AND finish_at IS NOT NULL AND finish_at <= ?)`,
		statusWait, now, statusSuccess, now)
	if err != nil || !due {
		return
	}
	if _, err := e.ExpireDue(ctx); err != nil {
		e.log.Error("sandbox: expire", "err", err)
	}
	if _, err := e.FinishDue(ctx); err != nil {
		e.log.Error("sandbox: finish", "err", err)
	}
}

// closeIfExpired closes one overdue trade on access, inside the caller's transaction.
func (e *Emulator) closeIfExpired(ctx context.Context, q queryer, t *tradeRow) error {
	now := e.nowMs()
	if t.Status != statusWait || t.ExpiresAt > now {
		return nil
	}
	if _, err := q.ExecContext(ctx, `UPDATE trades SET status=?, closed_at=? WHERE out_trade_no=? AND status=?`,
		statusClosed, now, t.OutTradeNo, statusWait); err != nil {
		return err
	}
	t.Status, t.ClosedAt = statusClosed, sql.NullInt64{Int64: now, Valid: true}
	return nil
}
