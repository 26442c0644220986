package sandbox

import (
	"context"
	"errors"
	"net/http"

	"github.com/jmoiron/sqlx"
)

// The server APIs on gateway.do. Each returns its business fields (without code/msg)
// or an Alipay error; the gateway wraps and signs either.

// findTrade resolves trade_no (preferred, as at Alipay) or out_trade_no.
func (e *Emulator) findTrade(ctx context.Context, q queryer, biz map[string]string) (*tradeRow, *gwError) {
	var t *tradeRow
	var err error
	switch {
	case biz["trade_no"] != "":
		t, err = getTradeByTradeNo(ctx, q, biz["trade_no"])
	case biz["out_trade_no"] != "":
		t, err = getTrade(ctx, q, biz["out_trade_no"])
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
	return t, nil
}

func (e *Emulator) apiQuery(r *http.Request, biz map[string]string) ([]kv, *gwError) {
	t, gerr := e.findTrade(r.Context(), e.db, biz)
	if gerr != nil {
		return nil, gerr
	}
	amount := formatFen(t.TotalFen)
	paid := t.PaidAt.Valid
	f := []kv{{"trade_no", t.TradeNo}, {"out_trade_no", t.OutTradeNo}}
	if paid {
		f = append(f, kv{"buyer_logon_id", buyerLogonMask})
	}
	f = append(f, kv{"trade_status", t.Status}, kv{"total_amount", amount})
	if paid {
		f = append(f,
			kv{"buyer_pay_amount", amount}, kv{"point_amount", "0.00"}, kv{"invoice_amount", amount},
			kv{"send_pay_date", bjFormat(t.PaidAt.Int64)}, kv{"receipt_amount", amount},
			kv{"buyer_user_id", buyerUserID})
	} else {
		f = append(f, kv{"buyer_pay_amount", "0.00"}, kv{"point_amount", "0.00"},
			kv{"invoice_amount", "0.00"}, kv{"receipt_amount", "0.00"})
	}
	f = append(f, kv{"subject", t.Subject}, kv{"body", t.Body}, kv{"passback_params", t.PassbackParams})
	return f, nil
}

func (e *Emulator) apiClose(r *http.Request, biz map[string]string) ([]kv, *gwError) {
	ctx := r.Context()
	tx, err := e.db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, systemError()
	}
	defer tx.Rollback()
	t, gerr := e.findTrade(ctx, tx, biz)
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

func (e *Emulator) apiRefund(r *http.Request, biz map[string]string) ([]kv, *gwError) {
	ctx := r.Context()
	fen, err := parseAmount(biz["refund_amount"])
	if err != nil {
		return nil, invalidArg("isv.invalid-parameter", "refund_amount "+err.Error())
	}
	tx, err := e.db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, systemError()
	}
	defer tx.Rollback()
	t, gerr := e.findTrade(ctx, tx, biz)
	if gerr != nil {
		return nil, gerr
	}
	reqNo := biz["out_request_no"]
	if reqNo == "" {
		reqNo = t.OutTradeNo // Alipay's default for a single full refund
	}
	answer := func(t *tradeRow, fundChange string, at int64) []kv {
		return []kv{{"trade_no", t.TradeNo}, {"out_trade_no", t.OutTradeNo},
			{"buyer_logon_id", buyerLogonMask}, {"fund_change", fundChange},
			{"refund_fee", formatFen(t.RefundedFen)}, {"gmt_refund_pay", bjFormat(at)},
			{"buyer_user_id", buyerUserID}}
	}
	var prev refundRow
	err = tx.GetContext(ctx, &prev, `SELECT * FROM refunds WHERE out_trade_no=? AND out_request_no=?`, t.OutTradeNo, reqNo)
	if err == nil {
		if prev.AmountFen != fen {
			return nil, bizFailure("ACQ.PARAM_ERROR", "同一退款请求号 out_request_no 的退款金额不一致")
		}
		// A repeat of a done refund: same answer, no money moves (fund_change N).
		return answer(t, "N", prev.RefundedAt), nil
	}
	if !t.PaidAt.Valid || t.Status != statusSuccess {
		return nil, bizFailure("ACQ.TRADE_STATUS_ERROR", "交易状态不合法（未支付或已全额退款的交易不能退款）")
	}
	if fen > t.TotalFen-t.RefundedFen {
		return nil, bizFailure("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额超限：可退金额为 "+formatFen(t.TotalFen-t.RefundedFen))
	}
	now := e.nowMs()
	if err := e.applyRefund(ctx, tx, t, reqNo, fen, now); err != nil {
		e.log.Error("sandbox: refund", "err", err)
		return nil, systemError()
	}
	if err := tx.Commit(); err != nil {
		return nil, systemError()
	}
	if t.NotifyURL != "" {
		e.kick()
	}
	return answer(t, "Y", now), nil
}

// applyRefund records the refund, closes the trade when fully refunded, and queues the
// notify Alipay sends for refunds (TRADE_SUCCESS if partial, TRADE_CLOSED if full).
func (e *Emulator) applyRefund(ctx context.Context, tx *sqlx.Tx, t *tradeRow, reqNo string, fen, now int64) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO refunds (out_trade_no, out_request_no, amount_fen, refunded_at) VALUES (?,?,?,?)`,
		t.OutTradeNo, reqNo, fen, now); err != nil {
		return err
	}
	t.RefundedFen += fen
	if t.RefundedFen == t.TotalFen {
		t.Status = statusClosed
	}
	if _, err := tx.ExecContext(ctx, `UPDATE trades SET refunded_fen=?, status=?,
		closed_at=CASE WHEN ?=? THEN ? ELSE closed_at END WHERE out_trade_no=?`,
		t.RefundedFen, t.Status, t.Status, statusClosed, now, t.OutTradeNo); err != nil {
		return err
	}
	if t.NotifyURL == "" {
		return nil
	}
	params := e.notifyParams(t, &refundInfo{OutBizNo: reqNo, RefundFen: t.RefundedFen, RefundedAt: now})
	return insertNotification(ctx, tx, t.OutTradeNo, t.NotifyURL, params, now)
}

func (e *Emulator) apiRefundQuery(r *http.Request, biz map[string]string) ([]kv, *gwError) {
	ctx := r.Context()
	t, gerr := e.findTrade(ctx, e.db, biz)
	if gerr != nil {
		return nil, gerr
	}
	reqNo := biz["out_request_no"]
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
