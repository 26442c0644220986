package payment

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/smartwalle/alipay/v3"

	"storefront/money"
	"storefront/store"
)

// ErrRefundPending means Alipay's answer about a refund is not known yet (a timeout, a
// network error, ACQ.SYSTEM_ERROR): the refund stays pending and the worker finishes it.
var ErrRefundPending = errors.New("refund sent, Alipay's answer not known yet")

// RefundError is Alipay's business refusal of a refund, with its reason.
type RefundError struct {
	Code, Msg string
}

func (e *RefundError) Error() string { return "alipay refused the refund: " + e.Code + " " + e.Msg }

// refundBackoff is the wait before the next attempt at a pending refund.
func refundBackoff(attempts int) time.Duration {
	return min(30*time.Second<<min(attempts, 8), time.Hour)
}

// Refund makes a refund by the contract: the row and its out_request_no are committed
// first, then Alipay is asked. It returns the refund as it now stands: succeeded,
// failed with a *RefundError, or pending with ErrRefundPending (the worker retries the
// same out_request_no until Alipay's answer is known).
func (s *Service) Refund(ctx context.Context, n store.NewRefund) (store.Refund, error) {
	r, err := s.st.CreateRefund(ctx, n)
	if err != nil {
		return r, err
	}
	return s.sendRefund(ctx, r)
}

// SendRefund asks Alipay again about one refund (the operator's 重试 on a pending one).
func (s *Service) SendRefund(ctx context.Context, id int64) (store.Refund, error) {
	r, err := s.st.RefundByID(ctx, id)
	if err != nil {
		return r, err
	}
	if r.Status != store.RefundPending {
		return r, nil
	}
	return s.sendRefund(ctx, r)
}

// sendRefund calls alipay.trade.refund for the pending r and records the answer.
// 10000 is success whether or not money moved (fund_change N: Alipay had done this
// out_request_no already).
func (s *Service) sendRefund(ctx context.Context, r store.Refund) (store.Refund, error) {
	rsp, err := s.gw.TradeRefund(ctx, alipay.TradeRefund{OutTradeNo: r.OutTradeNo, RefundAmount: r.Amount.String(),
		OutRequestNo: r.OutRequestNo, RefundReason: r.Reason})
	var rspErr alipay.Error
	if rsp != nil {
		rspErr = rsp.Error
	}
	// The shopper's or operator's request may have timed out: what Alipay said is
	// recorded all the same.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	outcome, reason := refundOutcome(rspErr, err)
	if rsp != nil || outcome != retry {
		raw, _ := json.Marshal(rsp)
		ev := store.Event{Source: store.SourceRefund, OutTradeNo: r.OutTradeNo, TradeNo: r.TradeNo, Raw: string(raw),
			OrderID: sqlID(r.OrderID)}
		switch outcome {
		case done:
			ev.Verdict, ev.Reason = store.VerdictApplied, "refund "+r.OutRequestNo+" succeeded, fund_change "+rsp.FundChange
		case refused:
			ev.Verdict, ev.Reason = store.VerdictRejected, "refund "+r.OutRequestNo+" refused: "+reason
		default:
			ev.Verdict, ev.Reason = store.VerdictIgnored, "refund "+r.OutRequestNo+" not settled: "+reason
		}
		if _, err := s.st.RecordEvent(wctx, ev); err != nil {
			return r, err
		}
	}
	switch outcome {
	case done:
		if _, err := s.st.SettleRefund(wctx, r.ID, s.now()); err != nil {
			return r, err
		}
		s.log.InfoContext(ctx, "refund succeeded", "out_trade_no", r.OutTradeNo, "out_request_no", r.OutRequestNo, "amount", r.Amount.String())
		return s.st.RefundByID(wctx, r.ID)
	case refused:
		if err := s.st.FailRefund(wctx, r.ID, reason); err != nil {
			return r, err
		}
		s.log.WarnContext(ctx, "refund refused by alipay", "out_trade_no", r.OutTradeNo, "out_request_no", r.OutRequestNo, "reason", reason)
		r, err := s.st.RefundByID(wctx, r.ID)
		if err != nil {
			return r, err
		}
		return r, &RefundError{Code: rspErr.SubCode, Msg: reason}
	}
	if err := s.st.RetryRefund(wctx, r.ID, s.now().Add(refundBackoff(r.Attempts)), reason); err != nil {
		return r, err
	}
	s.log.WarnContext(ctx, "refund pending; will retry", "out_trade_no", r.OutTradeNo, "out_request_no", r.OutRequestNo, "why", reason)
	s.kickRefunds()
	r, rerr := s.st.RefundByID(wctx, r.ID)
	if rerr != nil {
		return r, rerr
	}
	return r, ErrRefundPending
}

type refundResult int

const (
	retry   refundResult = iota // the answer is unknown: ask again later
	done                        // Alipay did the refund
	refused                     // Alipay will not do it (a business error): failed
)

// refundOutcome reads Alipay's answer to a refund. Only a business error (40004) other
// than ACQ.SYSTEM_ERROR fails a refund: a timeout, a transport error, a system error or
// a signature problem leaves Alipay's decision unknown, so it is asked again.
func refundOutcome(rspErr alipay.Error, err error) (refundResult, string) {
	var ae *alipay.Error
	if errors.As(err, &ae) {
		// An error answer without a signature (smartwalle returns those as err): it
		// may not be Alipay's at all, so it decides nothing. A refusal taken from it
		// would free the amount for another refund while Alipay may have made this one.
		return retry, "unsigned answer " + codeOf(*ae) + " " + ae.SubMsg
	}
	if err != nil {
		return retry, err.Error()
	}
	if !rspErr.IsFailure() {
		return done, ""
	}
	reason := codeOf(rspErr) + " " + rspErr.SubMsg
	if string(rspErr.Code) == "40004" && rspErr.SubCode != "ACQ.SYSTEM_ERROR" {
		return refused, reason
	}
	return retry, reason
}

// SettleRefunds works off the pending refunds that are due: for each it first asks
// alipay.trade.fastpay.refund.query (the refund may have been made already: an answer
// lost to a timeout, a crash after Alipay said yes), then, if Alipay never received it,
// sends the same out_request_no again. It returns how many it settled.
func (s *Service) SettleRefunds(ctx context.Context) (int, error) {
	due, claim, err := s.st.ClaimRefunds(ctx, s.now(), batch)
	if err != nil {
		return 0, err
	}
	n := 0
	var down error
	for i, r := range due {
		if ctx.Err() != nil || !claim.Live() {
			ids := make([]int64, 0, len(due)-i)
			for _, r := range due[i:] {
				ids = append(ids, r.ID)
			}
			if err := s.st.ReleaseRefunds(context.WithoutCancel(ctx), ids...); err != nil {
				s.log.Warn("releasing refund leases; they run out by themselves", "err", err)
			}
			return n, ctx.Err()
		}
		settled, err := s.settleOne(ctx, r)
		if settled {
			n++
		}
		if errors.Is(err, ErrGatewayDown) {
			down = err
		}
	}
	return n, down
}

func (s *Service) settleOne(ctx context.Context, r store.Refund) (bool, error) {
	qctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	q, err := s.gw.TradeFastPayRefundQuery(qctx, alipay.TradeFastPayRefundQuery{OutTradeNo: r.OutTradeNo, OutRequestNo: r.OutRequestNo})
	var qErr alipay.Error
	if q != nil {
		qErr = q.Error
	}
	code, err := subCode(qErr, err)
	if err != nil {
		why := "refund query: " + err.Error()
		if rerr := s.st.RetryRefund(ctx, r.ID, s.now().Add(refundBackoff(r.Attempts)), why); rerr != nil {
			return false, rerr
		}
		return false, fmt.Errorf("%w: %v", ErrGatewayDown, err)
	}
	raw, _ := json.Marshal(q)
	ev := store.Event{Source: store.SourceRefundQuery, OutTradeNo: r.OutTradeNo, TradeNo: r.TradeNo, Raw: string(raw),
		OrderID: sqlID(r.OrderID), RequestID: s.workerID("refunds")}
	// 10000 alone is not success: the status and the amount say whether it was made.
	amount, aerr := money.Parse(q.RefundAmount)
	if code == "" && q.RefundStatus == "REFUND_SUCCESS" && aerr == nil && amount == r.Amount {
		ev.Verdict, ev.Reason = store.VerdictApplied, "refund "+r.OutRequestNo+" found made"
		if _, err := s.st.RecordEvent(ctx, ev); err != nil {
			return false, err
		}
		changed, err := s.st.SettleRefund(ctx, r.ID, s.alipayTime(q.GMTRefundPay))
		return changed, err
	}
	ev.Verdict, ev.Reason = store.VerdictIgnored, "refund "+r.OutRequestNo+" not made yet ("+orDash(code)+"): sending it again"
	if _, err := s.st.RecordEvent(ctx, ev); err != nil {
		return false, err
	}
	got, err := s.sendRefund(ctx, r)
	return got.Status == store.RefundSucceeded, err
}

func orDash(s string) string {
	if s == "" {
		return "no refund status"
	}
	return s
}

// kickRefunds wakes the workers so a refund that needs them starts at once.
func (s *Service) kickRefunds() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func sqlID(id int64) sql.NullInt64 { return sql.NullInt64{Int64: id, Valid: id != 0} }

// isRefundNotify tells a notify about a refund (Alipay may send one; page pay usually
// doesn't) from a payment's: it names the refund.
func isRefundNotify(v url.Values) bool {
	return v.Get("out_biz_no") != "" || v.Get("refund_fee") != "" || v.Get("gmt_refund") != ""
}

// applyRefundNotify handles a verified notify about a refund — or a TRADE_CLOSED for a
// paid order, which means it was refunded in full. One of the shop's own
// refunds is settled by it; one the shop did not make (done in Alipay's console) is
// confirmed with alipay.trade.fastpay.refund.query and recorded with source alipay, so
// the order follows the money. Nothing is ever counted twice: refunds are keyed by
// their out_request_no.
func (s *Service) applyRefundNotify(ctx context.Context, ev store.Event, v url.Values) (store.Event, error) {
	o, err := s.st.OrderByNo(ctx, ev.OutTradeNo)
	if errors.Is(err, store.ErrNotFound) {
		return s.reject(ctx, ev, "unknown out_trade_no")
	} else if err != nil {
		return ev, err
	}
	if !isRefundNotify(v) && o.Status != store.StatusPaid && o.Status != store.StatusRefunded {
		// TRADE_CLOSED of a trade never paid for (expiry at Alipay): the payment rules.
		return s.apply(ctx, ev, v.Get("total_amount"), store.Payment{})
	}
	ev.OrderID = sqlID(o.ID)
	if total, err := money.Parse(v.Get("total_amount")); v.Get("total_amount") != "" && (err != nil || total != o.Total) {
		ev.Verdict, ev.Reason = store.VerdictFlagged, "refund notify with total_amount "+v.Get("total_amount")+" != order amount "+o.Total.String()
		return s.record(ctx, ev)
	}
	at := s.alipayTime(strings.SplitN(v.Get("gmt_refund"), ".", 2)[0])
	if no := v.Get("out_biz_no"); no != "" {
		if r, err := s.st.RefundByRequestNo(ctx, no); err == nil {
			changed, err := s.st.SettleRefund(ctx, r.ID, at)
			if err != nil {
				return ev, err
			}
			ev.Verdict, ev.Reason = store.VerdictDuplicate, "refund "+no+" already succeeded"
			if changed {
				ev.Verdict, ev.Reason = store.VerdictApplied, "refund "+no+" succeeded (refund notify)"
			}
			return s.record(ctx, ev)
		} else if !errors.Is(err, store.ErrNotFound) {
			return ev, err
		}
		// Not the shop's: ask Alipay what this refund is before believing it.
		q, err := s.gw.TradeFastPayRefundQuery(ctx, alipay.TradeFastPayRefundQuery{OutTradeNo: o.OutTradeNo, OutRequestNo: no})
		var qErr alipay.Error
		if q != nil {
			qErr = q.Error
		}
		code, err := subCode(qErr, err)
		if err != nil {
			return ev, fmt.Errorf("%w: %v", ErrGatewayDown, err)
		}
		amount, aerr := money.Parse(q.RefundAmount)
		if code != "" || q.RefundStatus != "REFUND_SUCCESS" || aerr != nil {
			ev.Verdict, ev.Reason = store.VerdictRejected, "refund "+no+" not confirmed by refund query ("+orDash(code)+")"
			return s.record(ctx, ev)
		}
		if _, err := s.st.RecordAlipayRefund(ctx, o.OutTradeNo, v.Get("trade_no"), no, amount, at); err != nil {
			return ev, err
		}
		ev.Verdict, ev.Reason = store.VerdictApplied, "refund "+no+" of "+amount.String()+" made in Alipay's console, recorded"
		return s.record(ctx, ev)
	}
	// No out_biz_no. A TRADE_CLOSED for a paid trade means all of it went back: what the
	// shop's own refunds don't explain was refunded elsewhere, once alipay.trade.query
	// confirms the trade is closed. A part refund without its request number can't be
	// confirmed by any query: it goes to the operator.
	if ev.TradeStatus != TradeClosed {
		ev.Verdict, ev.Reason = store.VerdictFlagged, "refund notify without out_biz_no (refund_fee "+v.Get("refund_fee")+"): check the refunds in Alipay's console"
		return s.record(ctx, ev)
	}
	q, err := s.gw.TradeQuery(ctx, alipay.TradeQuery{OutTradeNo: o.OutTradeNo})
	var qErr alipay.Error
	if q != nil {
		qErr = q.Error
	}
	if code, err := subCode(qErr, err); err != nil {
		return ev, fmt.Errorf("%w: %v", ErrGatewayDown, err)
	} else if code != "" || q.TradeStatus != alipay.TradeStatusClosed {
		ev.Verdict, ev.Reason = store.VerdictRejected, "TRADE_CLOSED not confirmed by trade.query ("+orDash(code)+" "+string(q.TradeStatus)+")"
		return s.record(ctx, ev)
	}
	refunded := o.Total
	rs, err := s.st.RefundsForOrder(ctx, o.ID)
	if err != nil {
		return ev, err
	}
	var known money.Fen
	for _, r := range rs {
		if r.TradeNo == v.Get("trade_no") && r.Status != store.RefundFailed {
			known += r.Amount
		}
	}
	if refunded <= known {
		s.kickRefunds() // pending ones among them: the worker confirms them
		ev.Verdict, ev.Reason = store.VerdictDuplicate, "refunded "+refunded.String()+" is the shop's own refunds"
		return s.record(ctx, ev)
	}
	no := "ALIPAY_CLOSED_" + v.Get("trade_no")
	if _, err := s.st.RecordAlipayRefund(ctx, o.OutTradeNo, v.Get("trade_no"), no, refunded-known, at); err != nil {
		return ev, err
	}
	ev.Verdict, ev.Reason = store.VerdictApplied, "refund of "+(refunded-known).String()+" made outside the shop, recorded as "+no
	return s.record(ctx, ev)
}
