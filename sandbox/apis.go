package sandbox

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// The server APIs on gateway.do. Each returns its business fields (without code/msg)
// or an Alipay error; the gateway wraps and signs either.

// findTrade resolves trade_no (preferred, as at Alipay) or out_trade_no. A cashier whose
// trade the buyer has not created yet is not a trade: ACQ.TRADE_NOT_EXIST.
func (e *Emulator) findTrade(ctx context.Context, q queryer, c *apiCall) (*tradeRow, *gwError) {
	var t *tradeRow
	var err error
	switch {
	case c.biz["trade_no"] != "":
		t, err = getTradeByTradeNo(ctx, q, c.biz["trade_no"])
	case c.biz["out_trade_no"] != "":
		t, err = getTrade(ctx, q, c.biz["out_trade_no"])
	default:
		return nil, bizFailure("ACQ.INVALID_PARAMETER", "参数无效：out_trade_no 与 trade_no 不能同时为空")
	}
	if errors.Is(err, errNotFound) {
		return nil, bizFailure("ACQ.TRADE_NOT_EXIST", "交易不存在")
	}
	if err != nil {
		return nil, systemError()
	}
	if err := e.closeIfExpired(ctx, q, t); err != nil {
		return nil, systemError()
	}
	c.trade = t.OutTradeNo
	return t, nil
}

// buyerFields names the buyer as the trade's app sees it: buyer_user_id, or
// buyer_open_id for a buyer known by open id.
func buyerFields(t *tradeRow) []kv {
	if t.BuyerOpenID != "" {
		return []kv{{"buyer_open_id", t.BuyerOpenID}}
	}
	return []kv{{"buyer_user_id", buyerUserID}}
}

// fundBill is one fund_bill_list entry of a query answer.
type fundBill struct {
	FundChannel string `json:"fund_channel"`
	Amount      string `json:"amount"`
}

// voucherDetail is one voucher_detail_list entry of a query answer.
type voucherDetail struct {
	ID                 string `json:"id"`
	Name               string `json:"name"`
	Type               string `json:"type"`
	Amount             string `json:"amount"`
	MerchantContribute string `json:"merchant_contribute"`
	OtherContribute    string `json:"other_contribute"`
}

// storeName is in query and refund answers, as for a merchant with a store. It holds a
// "/" so that the escaped_slash fault always has something to escape in them (close and
// refund-query answers hold none and leave the fault pending).
func (e *Emulator) storeName() string { return e.cfg.MerchantName + "/网站收银台" }

func (e *Emulator) apiQuery(c *apiCall) ([]kv, *gwError) {
	t, gerr := e.findTrade(c.r.Context(), e.db, c)
	if gerr != nil {
		return nil, gerr
	}
	amount := formatFen(t.TotalFen)
	paid := t.paid()
	f := []kv{{"trade_no", t.TradeNo}, {"out_trade_no", t.OutTradeNo}}
	if paid {
		f = append(f, kv{"buyer_logon_id", buyerLogonMask})
	}
	f = append(f, kv{"trade_status", t.Status}, kv{"total_amount", amount})
	if paid {
		receipt := formatFen(t.receiptFen())
		f = append(f,
			kv{"buyer_pay_amount", receipt}, kv{"point_amount", "0.00"}, kv{"invoice_amount", receipt},
			kv{"send_pay_date", bjFormat(t.PaidAt.Int64)}, kv{"receipt_amount", receipt})
		bills := []fundBill{{"ALIPAYACCOUNT", receipt}}
		if t.DiscountFen > 0 {
			bills = append(bills, fundBill{"DISCOUNT", formatFen(t.DiscountFen)})
		}
		f = append(f, kv{"fund_bill_list", bills})
		f = append(f, buyerFields(t)...)
		if t.DiscountFen > 0 {
			d := formatFen(t.DiscountFen)
			f = append(f, kv{"voucher_detail_list", []voucherDetail{{voucherID(t), voucherName, "ALIPAY_FIX_VOUCHER", d, d, "0.00"}}})
		}
	} else {
		f = append(f, kv{"buyer_pay_amount", "0.00"}, kv{"point_amount", "0.00"},
			kv{"invoice_amount", "0.00"}, kv{"receipt_amount", "0.00"})
	}
	f = append(f, kv{"store_name", e.storeName()}, kv{"subject", t.Subject}, kv{"body", t.Body},
		kv{"passback_params", t.PassbackParams})
	return f, nil
}

func (e *Emulator) apiClose(c *apiCall) ([]kv, *gwError) {
	ctx := c.r.Context()
	tx, err := e.db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, systemError()
	}
	defer tx.Rollback()
	t, gerr := e.findTrade(ctx, tx, c)
	if gerr != nil {
		return nil, gerr
	}
	if t.Status != statusWait {
		_ = tx.Commit() // keep a lazy expiry close
		return nil, bizFailure("ACQ.TRADE_STATUS_ERROR", "交易状态不合法（只有等待付款的交易可以关闭）")
	}
	if _, err := tx.ExecContext(ctx, `UPDATE trades SET status=?, closed_at=? WHERE out_trade_no=? AND status=?`,
		statusClosed, e.nowMs(), t.OutTradeNo, statusWait); err != nil || tx.Commit() != nil {
		return nil, systemError()
	}
	return []kv{{"trade_no", t.TradeNo}, {"out_trade_no", t.OutTradeNo}}, nil
}

// refundRequest is one refund, from the API or the console.
type refundRequest struct {
	OutRequestNo string // "" = none given (the API's single full refund)
	AmountFen    int64
	Source       string // refundByAPI or refundByConsole
	Reason       string
}

// refundResult is what a refund did.
type refundResult struct {
	T            *tradeRow
	OutRequestNo string
	FundChange   string // Y: money moved now; N: a repeat of a refund already made
	At           int64
}

// refund applies Alipay's refund rules to a trade found by sel, in one transaction:
//   - a repeat of a done out_request_no with the same amount: fund_change N, same answer;
//     with another amount: ACQ.DISCORDANT_REPEAT_REQUEST;
//   - not paid, or closed: ACQ.TRADE_STATUS_ERROR; finished: ACQ.TRADE_HAS_FINISHED;
//   - more than is left: ACQ.REASON_TRADE_REFUND_FEE_ERR;
//   - less than is left without an out_request_no: ACQ.REFUND_AMT_NOT_EQUAL_TOTAL.
func (e *Emulator) refund(ctx context.Context, c *apiCall, req refundRequest) (*refundResult, *gwError) {
	tx, err := e.db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, systemError()
	}
	defer tx.Rollback()
	t, gerr := e.findTrade(ctx, tx, c)
	if gerr != nil {
		return nil, gerr
	}
	reqNo := req.OutRequestNo
	if reqNo == "" {
		reqNo = t.OutTradeNo // Alipay's default for a single full refund
	}
	var prev refundRow
	err = tx.GetContext(ctx, &prev, `SELECT * FROM refunds WHERE out_trade_no=? AND out_request_no=?`, t.OutTradeNo, reqNo)
	if err == nil {
		if prev.AmountFen != req.AmountFen {
			return nil, bizFailure("ACQ.DISCORDANT_REPEAT_REQUEST", fmt.Sprintf(
				"退款请求号 %s 已用于金额 %s 的退款，本次金额 %s 与之不一致", reqNo, formatFen(prev.AmountFen), formatFen(req.AmountFen)))
		}
		// A repeat of a done refund: same answer, no money moves.
		return &refundResult{T: t, OutRequestNo: reqNo, FundChange: "N", At: prev.RefundedAt}, nil
	}
	left := t.TotalFen - t.RefundedFen
	switch {
	case t.Status == statusFinished:
		return nil, bizFailure("ACQ.TRADE_HAS_FINISHED", "交易已完结，超过退款期限，不能退款")
	case !t.paid() || t.Status != statusSuccess:
		return nil, bizFailure("ACQ.TRADE_STATUS_ERROR", "交易状态不合法（未支付、已关闭或已全额退款的交易不能退款）")
	case req.AmountFen > left:
		return nil, bizFailure("ACQ.REASON_TRADE_REFUND_FEE_ERR", "退款金额超限：可退金额为 "+formatFen(left)+" 元")
	case req.OutRequestNo == "" && req.AmountFen < left:
		return nil, bizFailure("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "部分退款须传退款请求号 out_request_no（不传时退款金额须等于可退金额 "+formatFen(left)+" 元）")
	}
	now := e.nowMs()
	if err := e.applyRefund(ctx, tx, t, reqNo, req, now); err != nil {
		e.log.Error("sandbox: refund", "err", err)
		return nil, systemError()
	}
	if err := tx.Commit(); err != nil {
		return nil, systemError()
	}
	e.kick()
	e.log.Info("sandbox: refund", "out_trade_no", t.OutTradeNo, "out_request_no", reqNo, "amount", formatFen(req.AmountFen), "source", req.Source)
	return &refundResult{T: t, OutRequestNo: reqNo, FundChange: "Y", At: now}, nil
}

// refundFaults are the faults the next refund call consumes (the first pending one).
var refundFaults = []string{faultRefundTimeout, faultRefundSystemError, faultRefundSystemErrorMade}

func (e *Emulator) apiRefund(c *apiCall) ([]kv, *gwError) {
	ctx := c.r.Context()
	fen, err := parseAmount(c.biz["refund_amount"])
	if err != nil {
		return nil, invalidArg("isv.invalid-parameter", "refund_amount "+err.Error())
	}
	fault, err := e.takeRefundFault(ctx, c)
	if err != nil {
		return nil, systemError()
	}
	if fault == faultRefundSystemError {
		// Alipay failed before doing anything: no refund is made.
		return nil, systemError()
	}
	res, gerr := e.refund(ctx, c, refundRequest{OutRequestNo: c.biz["out_request_no"], AmountFen: fen,
		Source: refundByAPI, Reason: c.biz["refund_reason"]})
	switch fault {
	case faultRefundSystemErrorMade:
		return nil, systemError() // made (when the rules allowed it), but the answer says otherwise
	case faultRefundTimeout:
		c.withhold = true
		return nil, nil
	}
	if gerr != nil {
		return nil, gerr
	}
	t := res.T
	f := []kv{{"trade_no", t.TradeNo}, {"out_trade_no", t.OutTradeNo},
		{"buyer_logon_id", buyerLogonMask}, {"fund_change", res.FundChange},
		{"refund_fee", formatFen(t.RefundedFen)}, {"gmt_refund_pay", bjFormat(res.At)}}
	f = append(f, buyerFields(t)...)
	return append(f, kv{"store_name", e.storeName()}), nil
}

// takeRefundFault consumes the trade's first pending refund fault, if the call names a
// trade that exists (a fault never outlives a call it applied to).
func (e *Emulator) takeRefundFault(ctx context.Context, c *apiCall) (string, error) {
	t, gerr := e.findTrade(ctx, e.db, &apiCall{r: c.r, biz: c.biz})
	if gerr != nil {
		return "", nil
	}
	fs, err := pendingFaults(ctx, e.db, t.OutTradeNo)
	if err != nil {
		return "", err
	}
	for _, f := range fs {
		if contains(refundFaults, f.Fault) {
			took, err := e.takeFault(ctx, t.OutTradeNo, f.Fault)
			if err != nil || !took {
				return "", err
			}
			return f.Fault, nil
		}
	}
	return "", nil
}

// applyRefund records the refund, closes the trade when fully refunded and, when the
// trade's refund-notify switch is on, queues the refund notify (TRADE_SUCCESS if
// partial, TRADE_CLOSED if full).
func (e *Emulator) applyRefund(ctx context.Context, tx *sqlx.Tx, t *tradeRow, reqNo string, req refundRequest, now int64) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO refunds (out_trade_no, out_request_no, amount_fen, refunded_at, source, reason)
		VALUES (?,?,?,?,?,?)`, t.OutTradeNo, reqNo, req.AmountFen, now, req.Source, req.Reason); err != nil {
		return err
	}
	t.RefundedFen += req.AmountFen
	if t.RefundedFen == t.TotalFen {
		t.Status = statusClosed
		t.ClosedAt.Int64, t.ClosedAt.Valid = now, true
	}
	if _, err := tx.ExecContext(ctx, `UPDATE trades SET refunded_fen=?, status=?,
		closed_at=CASE WHEN ?=? THEN ? ELSE closed_at END WHERE out_trade_no=?`,
		t.RefundedFen, t.Status, t.Status, statusClosed, now, t.OutTradeNo); err != nil {
		return err
	}
	on, err := refundNotifyOn(ctx, tx, t.OutTradeNo)
	if err != nil || !on || t.NotifyURL == "" {
		return err
	}
	params := e.notifyParams(t, &refundInfo{OutBizNo: reqNo, RefundFen: t.RefundedFen, RefundedAt: now})
	return insertNotification(ctx, tx, t.OutTradeNo, t.NotifyURL, params, now)
}

func (e *Emulator) apiRefundQuery(c *apiCall) ([]kv, *gwError) {
	ctx := c.r.Context()
	t, gerr := e.findTrade(ctx, e.db, c)
	if gerr != nil {
		return nil, gerr
	}
	reqNo := c.biz["out_request_no"]
	if reqNo == "" {
		reqNo = t.OutTradeNo
	}
	f := []kv{{"trade_no", t.TradeNo}, {"out_trade_no", t.OutTradeNo}, {"out_request_no", reqNo}}
	var ref refundRow
	err := e.db.GetContext(ctx, &ref, `SELECT * FROM refunds WHERE out_trade_no=? AND out_request_no=?`, t.OutTradeNo, reqNo)
	if err != nil {
		// Alipay answers 10000 without refund_amount when it never received the refund.
		return f, nil
	}
	return append(f, kv{"total_amount", formatFen(t.TotalFen)}, kv{"refund_amount", formatFen(ref.AmountFen)},
		kv{"refund_status", "REFUND_SUCCESS"}, kv{"gmt_refund_pay", bjFormat(ref.RefundedAt)}), nil
}

// billLinkTTL is how long a bill download URL works (emulator time, not scaled: a
// script needs real seconds to fetch it whatever the time scale).
const billLinkTTL = 5 * time.Minute

// apiBillURL answers alipay.data.dataservice.bill.downloadurl.query for the daily trade
// bill (bill_type=trade, bill_date=yyyy-MM-dd, a Beijing day). Like Alipay, a day's bill
// exists only once the day is over (T+1): before that, isp.bill_not_exist.
func (e *Emulator) apiBillURL(c *apiCall) ([]kv, *gwError) {
	ctx := c.r.Context()
	switch bt := c.biz["bill_type"]; bt {
	case "trade":
	case "":
		return nil, bizFailure("isv.invalid_arguments", "参数不合法：bill_type 必填")
	default:
		return nil, bizFailure("isv.invalid_arguments", "参数不合法：本模拟器只提供 bill_type=trade 的交易账单，不支持 "+bt)
	}
	day, err := time.ParseInLocation("2006-01-02", c.biz["bill_date"], shanghai)
	if err != nil {
		return nil, bizFailure("isv.invalid_arguments", "参数不合法：bill_date 须为 yyyy-MM-dd 的日账单日期（本模拟器不提供月账单）")
	}
	if e.now().Before(day.AddDate(0, 0, 1)) {
		return nil, bizFailure("isp.bill_not_exist", "账单不存在")
	}
	token := newNotifyID() + newNotifyID()
	if _, err := e.db.ExecContext(ctx, `INSERT INTO bill_links (token, bill_date, expires_at) VALUES (?,?,?)`,
		token, day.Format("2006-01-02"), e.now().Add(billLinkTTL).UnixMilli()); err != nil {
		return nil, systemError()
	}
	scheme := "http"
	if c.r.TLS != nil {
		scheme = "https"
	}
	u := scheme + "://" + c.r.Host + "/sandbox/bills/" + token + "?bizType=trade&bizDates=" + day.Format("20060102") + "&fileType=csv.zip"
	return []kv{{"bill_download_url", u}}, nil
}
