package sandbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

var (
	errTradeClosed = errors.New("trade closed")
	errTradePaid   = errors.New("trade already paid")
)

// pagePayInput is a page-pay request after every field rule has passed.
type pagePayInput struct {
	OutTradeNo, Subject, Body, NotifyURL, ReturnURL string
	PassbackParams, TimeExpire, TimeoutExpress      string
	TotalFen                                        int64
}

// validatePagePay applies ALIPAY.md's field rules; the first failure names the error code.
func validatePagePay(req *gatewayRequest) (*pagePayInput, *gwError) {
	b := req.Biz
	in := &pagePayInput{
		OutTradeNo: b["out_trade_no"], Subject: b["subject"], Body: b["body"],
		NotifyURL: req.Params.Get("notify_url"), ReturnURL: req.Params.Get("return_url"),
		PassbackParams: b["passback_params"], TimeExpire: b["time_expire"], TimeoutExpress: b["timeout_express"],
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
	if b["product_code"] != "FAST_INSTANT_TRADE_PAY" {
		return nil, pageError("invalid-product-code", "product_code 必须为 FAST_INSTANT_TRADE_PAY")
	}
	if in.TimeExpire != "" {
		if _, err := parseAlipayTime(in.TimeExpire); err != nil {
			return nil, pageError("invalid-time-expire", "time_expire 格式必须为 yyyy-MM-dd HH:mm:ss")
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
	return in, nil
}

// expiresAt: time_expire (absolute, the merchant's own wall-clock deadline, never scaled)
// wins; otherwise timeout_express or the 15-day default, both relative and scaled.
func (e *Emulator) expiresAt(created time.Time, timeExpire, timeoutExpress string) time.Time {
	if timeExpire != "" {
		if t, err := parseAlipayTime(timeExpire); err == nil {
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

// pagePay creates the trade on first sight (as Alipay does when its cashier opens) or
// refreshes it on "pay again", then shows the cashier.
func (e *Emulator) pagePay(w http.ResponseWriter, r *http.Request, req *gatewayRequest) {
	in, gerr := validatePagePay(req)
	if gerr != nil {
		e.renderError(w, gerr)
		return
	}
	t, gerr := e.upsertTrade(r.Context(), in)
	if gerr != nil {
		e.renderError(w, gerr)
		return
	}
	e.renderCashier(w, t)
}

func (e *Emulator) upsertTrade(ctx context.Context, in *pagePayInput) (*tradeRow, *gwError) {
	now := e.now()
	tx, err := e.db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, pageError("SYSTEM_ERROR", "系统繁忙")
	}
	defer tx.Rollback()
	t, err := getTrade(ctx, tx, in.OutTradeNo)
	switch {
	case errors.Is(err, errNotFound):
		exp := e.expiresAt(now, in.TimeExpire, in.TimeoutExpress)
		if exp.UnixMilli() <= now.UnixMilli() {
			// A deadline already past: no cashier, and no trade to query or close.
			return nil, pageError("ACQ.TRADE_HAS_CLOSE", "交易已超过支付截止时间（time_expire），无法付款")
		}
		var tradeNo string
		for i := 0; ; i++ {
			tradeNo = newTradeNo(now)
			var n int
			if err := tx.GetContext(ctx, &n, `SELECT COUNT(*) FROM trades WHERE trade_no = ?`, tradeNo); err != nil || n == 0 || i > 5 {
				break
			}
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO trades (out_trade_no, trade_no, app_id, subject, body,
			total_fen, status, notify_url, return_url, passback_params, time_expire, timeout_express,
			expires_at, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
			in.OutTradeNo, tradeNo, e.cfg.AppID, in.Subject, in.Body, in.TotalFen, statusWait,
			in.NotifyURL, in.ReturnURL, in.PassbackParams, in.TimeExpire, in.TimeoutExpress,
			exp.UnixMilli(), now.UnixMilli())
		if err != nil {
			e.log.Error("sandbox: create trade", "err", err)
			return nil, pageError("SYSTEM_ERROR", "系统繁忙")
		}
	case err != nil:
		return nil, pageError("SYSTEM_ERROR", "系统繁忙")
	case t.TotalFen != in.TotalFen:
		return nil, pageError("ACQ.CONTEXT_INCONSISTENT", fmt.Sprintf(
			"交易信息被篡改：订单 %s 已以金额 %s 创建，本次请求金额 %s", t.OutTradeNo, formatFen(t.TotalFen), formatFen(in.TotalFen)))
	case t.Status == statusSuccess:
		return nil, pageError("ACQ.TRADE_HAS_SUCCESS", "交易已支付成功，请勿重复支付")
	case t.Status == statusClosed:
		return nil, pageError("ACQ.TRADE_HAS_CLOSE", "交易已关闭")
	case t.ExpiresAt <= now.UnixMilli():
		if _, err := tx.ExecContext(ctx, `UPDATE trades SET status=?, closed_at=? WHERE out_trade_no=? AND status=?`,
			statusClosed, now.UnixMilli(), t.OutTradeNo, statusWait); err == nil {
			_ = tx.Commit()
		}
		return nil, pageError("ACQ.TRADE_HAS_CLOSE", "交易已超时关闭")
	default:
		// "Pay again": the callbacks and the deadline may change, the amount may not.
		exp := e.expiresAt(time.UnixMilli(t.CreatedAt), in.TimeExpire, in.TimeoutExpress)
		_, err = tx.ExecContext(ctx, `UPDATE trades SET notify_url=?, return_url=?, time_expire=?,
			timeout_express=?, expires_at=?, passback_params=? WHERE out_trade_no=? AND status=?`,
			in.NotifyURL, in.ReturnURL, in.TimeExpire, in.TimeoutExpress, exp.UnixMilli(),
			in.PassbackParams, t.OutTradeNo, statusWait)
		if err != nil {
			return nil, pageError("SYSTEM_ERROR", "系统繁忙")
		}
	}
	t, err = getTrade(ctx, tx, in.OutTradeNo)
	if err != nil || tx.Commit() != nil {
		return nil, pageError("SYSTEM_ERROR", "系统繁忙")
	}
	return t, nil
}

// pay marks a trade paid by the sandbox buyer and queues its notify (unless notify is
// false: a lost notify). Paying a paid trade is idempotent; a closed or expired one fails.
func (e *Emulator) pay(ctx context.Context, outTradeNo string, notify bool) (*tradeRow, error) {
	now := e.nowMs()
	tx, err := e.db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	t, err := getTrade(ctx, tx, outTradeNo)
	if err != nil {
		return nil, err
	}
	switch {
	case t.Status == statusSuccess:
		return t, nil
	case t.Status == statusClosed && t.PaidAt.Valid:
		return t, errTradePaid // paid, then fully refunded
	case t.Status == statusClosed:
		return t, errTradeClosed
	case t.ExpiresAt <= now:
		if _, err := tx.ExecContext(ctx, `UPDATE trades SET status=?, closed_at=? WHERE out_trade_no=? AND status=?`,
			statusClosed, now, outTradeNo, statusWait); err != nil {
			return nil, err
		}
		if err := tx.Commit(); err != nil {
			return nil, err
		}
		return t, errTradeClosed
	}
	res, err := tx.ExecContext(ctx, `UPDATE trades SET status=?, paid_at=? WHERE out_trade_no=? AND status=?`,
		statusSuccess, now, outTradeNo, statusWait)
	if err != nil {
		return nil, err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return nil, errors.New("trade changed concurrently")
	}
	t.Status, t.PaidAt = statusSuccess, sql.NullInt64{Int64: now, Valid: true}
	if notify && t.NotifyURL != "" {
		if err := insertNotification(ctx, tx, t.OutTradeNo, t.NotifyURL, e.notifyParams(t, nil), now); err != nil {
			return nil, err
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	e.log.Info("sandbox: trade paid", "out_trade_no", t.OutTradeNo, "trade_no", t.TradeNo, "notify", notify)
	if notify {
		e.kick()
	}
	return t, nil
}

// refundInfo adds the refund fields to a notify.
type refundInfo struct {
	OutBizNo   string
	RefundFen  int64 // cumulative
	RefundedAt int64
}

// notifyParams is a trade's notification without notify_time, notify_id and sign, which
// are set per attempt. Empty fields are left out: Alipay's verification rule drops them
// while smartwalle's does not, so sending one would break verification.
func (e *Emulator) notifyParams(t *tradeRow, ref *refundInfo) url.Values {
	v := url.Values{}
	set := func(k, val string) {
		if val != "" {
			v.Set(k, val)
		}
	}
	amount := formatFen(t.TotalFen)
	set("notify_type", "trade_status_sync")
	set("app_id", t.AppID)
	set("auth_app_id", t.AppID)
	set("charset", "utf-8")
	set("version", "1.0")
	set("trade_no", t.TradeNo)
	set("out_trade_no", t.OutTradeNo)
	set("buyer_id", buyerUserID)
	set("buyer_logon_id", buyerLogonMask)
	set("seller_id", e.cfg.SellerID)
	set("seller_email", sellerEmail)
	set("trade_status", t.Status)
	set("total_amount", amount)
	set("receipt_amount", amount)
	set("invoice_amount", amount)
	set("buyer_pay_amount", amount)
	set("point_amount", "0.00")
	set("subject", t.Subject)
	set("body", t.Body)
	set("gmt_create", bjFormat(t.CreatedAt))
	if t.PaidAt.Valid {
		set("gmt_payment", bjFormat(t.PaidAt.Int64))
	}
	set("fund_bill_list", `[{"amount":"`+amount+`","fundChannel":"ALIPAYACCOUNT"}]`)
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

// returnURL is the signed browser redirect after paying. It carries no trade_status:
// Alipay's return is display-only.
func (e *Emulator) returnURL(t *tradeRow) (string, error) {
	if t.ReturnURL == "" {
		return "", nil
	}
	v := url.Values{}
	for k, val := range map[string]string{
		"method": "alipay.trade.page.pay.return", "out_trade_no": t.OutTradeNo, "trade_no": t.TradeNo,
		"total_amount": formatFen(t.TotalFen), "seller_id": e.cfg.SellerID, "app_id": t.AppID,
		"auth_app_id": t.AppID, "charset": "utf-8", "version": "1.0", "timestamp": e.now().In(shanghai).Format(alipayTime),
	} {
		if val != "" {
			v.Set(k, val)
		}
	}
	if err := signNotifyValues(e.key, v); err != nil {
		return "", err
	}
	sep := "?"
	if strings.Contains(t.ReturnURL, "?") {
		sep = "&"
	}
	return t.ReturnURL + sep + v.Encode(), nil
}

// ExpireDue closes every WAIT_BUYER_PAY trade whose deadline has passed. Alipay sends no
// notify for a timeout close of a page-pay trade, so neither does this.
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

// closeIfExpired closes one overdue trade on access, so answers never depend on whether
// the background loop has run yet.
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
