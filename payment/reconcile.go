package payment

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/smartwalle/alipay/v3"

	"storefront/shanghai"
	"storefront/store"
)

// ErrBillNotReady is Alipay's answer for a day whose bill isn't made yet (T+1).
var ErrBillNotReady = errors.New("the trade bill of that day is not ready yet")

// billHour is when, Beijing time, the shop asks for yesterday's bill (Alipay makes it
// during the morning; until then it answers isp.bill_not_exist and the shop asks again).
const billHour = 9

// ReconcileDay fetches Alipay's trade bill of day (a Beijing date) and compares it with
// the shop's books: payments and refunds Alipay has that the shop doesn't, ones the shop
// has that Alipay doesn't, and amounts that differ. The result and every difference are
// saved (a clean day says so); the bill not being ready yet is ErrBillNotReady.
func (s *Service) ReconcileDay(ctx context.Context, day time.Time) (store.Reconciliation, []store.Difference, error) {
	day = midnight(day)
	rec := store.Reconciliation{BillDate: day.Format("2006-01-02")}
	rows, err := s.fetchBill(ctx, rec.BillDate)
	if err != nil {
		return rec, nil, err
	}
	var diffs []store.Difference
	seenPay := map[string]bool{}
	// seenRefund holds the request numbers of the shop's refunds the bill accounts for:
	// every number on the bill, taken before any row is matched, so a refund the bill
	// names is never given to another row by the fallback below; then the refunds the
	// fallback matched.
	seenRefund := map[string]bool{}
	for _, r := range rows {
		if r.Kind == BillRefund {
			seenRefund[r.RequestNo] = true
		}
	}
	for _, r := range rows {
		switch r.Kind {
		case BillPayment:
			rec.Payments++
			seenPay[r.TradeNo] = true
			p, ok, err := s.st.PaymentByTradeNo(ctx, r.TradeNo)
			if err != nil {
				return rec, nil, err
			}
			switch {
			case !ok:
				diffs = append(diffs, store.Difference{Kind: store.MissingInShop, What: "payment", OutTradeNo: r.OutTradeNo,
					TradeNo: r.TradeNo, AlipayFen: fenOf(int64(r.Amount)), Note: "支付宝收到的付款，本店没有记入订单"})
			case p.Amount != r.Amount:
				diffs = append(diffs, store.Difference{Kind: store.AmountDiffers, What: "payment", OutTradeNo: p.OutTradeNo,
					TradeNo: r.TradeNo, ShopFen: fenOf(int64(p.Amount)), AlipayFen: fenOf(int64(r.Amount)), Note: "金额不一致"})
			}
		case BillRefund:
			rec.Refunds++
			ref, err := s.st.RefundByRequestNo(ctx, r.RequestNo)
			if errors.Is(err, store.ErrNotFound) {
				found, ok, ferr := s.refundRecordedUnderOwnNo(ctx, r, seenRefund)
				if ferr != nil {
					return rec, nil, ferr
				}
				if ok {
					seenRefund[found.OutRequestNo] = true
					s.log.InfoContext(ctx, "bill refund matched by trade and amount", "trade_no", r.TradeNo,
						"alipay_request_no", r.RequestNo, "shop_request_no", found.OutRequestNo)
					continue
				}
			}
			switch {
			case errors.Is(err, store.ErrNotFound):
				diffs = append(diffs, store.Difference{Kind: store.MissingInShop, What: "refund", OutTradeNo: r.OutTradeNo,
					TradeNo: r.TradeNo, OutRequestNo: r.RequestNo, AlipayFen: fenOf(int64(r.Amount)),
					Note: "支付宝的退款（可能在支付宝后台操作），本店没有记录"})
			case err != nil:
				return rec, nil, err
			case ref.Status != store.RefundSucceeded:
				diffs = append(diffs, store.Difference{Kind: store.MissingInShop, What: "refund", OutTradeNo: ref.OutTradeNo,
					TradeNo: r.TradeNo, OutRequestNo: r.RequestNo, ShopFen: fenOf(int64(ref.Amount)), AlipayFen: fenOf(int64(r.Amount)),
					Note: "支付宝已退款，本店记录为" + ref.Status})
			case ref.Amount != r.Amount:
				diffs = append(diffs, store.Difference{Kind: store.AmountDiffers, What: "refund", OutTradeNo: ref.OutTradeNo,
					TradeNo: r.TradeNo, OutRequestNo: r.RequestNo, ShopFen: fenOf(int64(ref.Amount)), AlipayFen: fenOf(int64(r.Amount)),
					Note: "退款金额不一致"})
			}
		}
	}
	from, to := day, day.AddDate(0, 0, 1)
	paid, err := s.st.PaymentsPaidIn(ctx, from, to)
	if err != nil {
		return rec, nil, err
	}
	for _, p := range paid {
		if !seenPay[p.TradeNo] {
			diffs = append(diffs, store.Difference{Kind: store.MissingAtAlipay, What: "payment", OutTradeNo: p.OutTradeNo,
				TradeNo: p.TradeNo, ShopFen: fenOf(int64(p.Amount)), Note: "本店记为已付款，支付宝当天账单里没有"})
		}
	}
	refunds, err := s.st.RefundsSettledIn(ctx, from, to)
	if err != nil {
		return rec, nil, err
	}
	for _, r := range refunds {
		if !seenRefund[r.OutRequestNo] {
			diffs = append(diffs, store.Difference{Kind: store.MissingAtAlipay, What: "refund", OutTradeNo: r.OutTradeNo,
				TradeNo: r.TradeNo, OutRequestNo: r.OutRequestNo, ShopFen: fenOf(int64(r.Amount)), Note: "本店记为已退款，支付宝当天账单里没有"})
		}
	}
	rec.Status = "clean"
	if len(diffs) > 0 {
		rec.Status = "differences"
	}
	if err := s.st.SaveReconciliation(ctx, rec, diffs); err != nil {
		return rec, nil, err
	}
	rec.Differences = len(diffs)
	s.log.InfoContext(ctx, "trade bill reconciled", "day", rec.BillDate, "payments", rec.Payments, "refunds", rec.Refunds,
		"differences", len(diffs))
	return rec, diffs, nil
}

// refundRecordedUnderOwnNo finds the shop's record of bill refund row r whose request
// number the shop doesn't know: a refund made in Alipay's console that the shop learned
// of without Alipay's number (a TRADE_CLOSED notify names none, so the shop recorded
// it as ALIPAY_CLOSED_ + trade_no). It is a succeeded refund with source alipay, of the
// same trade and amount, that no bill row accounts for yet (taken). The shop's own
// refunds (operator, shopper, auto) never match here: Alipay got them under their own
// number, so a bill row with another number is another refund.
func (s *Service) refundRecordedUnderOwnNo(ctx context.Context, r BillRow, taken map[string]bool) (store.Refund, bool, error) {
	if r.TradeNo == "" {
		return store.Refund{}, false, nil
	}
	rs, err := s.st.RefundsOfTrade(ctx, r.TradeNo)
	if err != nil {
		return store.Refund{}, false, err
	}
	for _, ref := range rs {
		if ref.Source == store.RefundByAlipay && ref.Status == store.RefundSucceeded && ref.Amount == r.Amount && !taken[ref.OutRequestNo] {
			return ref, true, nil
		}
	}
	return store.Refund{}, false, nil
}

func fenOf(n int64) sql.NullInt64 { return sql.NullInt64{Int64: n, Valid: true} }

// midnight is the start of t's Beijing day.
func midnight(t time.Time) time.Time {
	b := t.In(shanghai.Location())
	return time.Date(b.Year(), b.Month(), b.Day(), 0, 0, 0, 0, shanghai.Location())
}

// fetchBill asks alipay.data.dataservice.bill.downloadurl.query for day's trade bill
// and downloads it (a short-lived URL).
func (s *Service) fetchBill(ctx context.Context, day string) ([]BillRow, error) {
	rsp, err := s.gw.BillDownloadURLQuery(ctx, alipay.BillDownloadURLQuery{BillType: "trade", BillDate: day})
	var rspErr alipay.Error
	if rsp != nil {
		rspErr = rsp.Error
	}
	code, err := subCode(rspErr, err)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrGatewayDown, err)
	}
	if code == "isp.bill_not_exist" {
		return nil, ErrBillNotReady
	}
	if code != "" {
		return nil, fmt.Errorf("bill download url: %s %s", code, rspErr.SubMsg)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rsp.BillDownloadURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.billClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: downloading the bill: %v", ErrGatewayDown, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("downloading the bill: HTTP %d", resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, fmt.Errorf("%w: downloading the bill: %v", ErrGatewayDown, err)
	}
	return ParseBill(b)
}

// ReconcileYesterday is the daily worker's step: from billHour Beijing time it
// reconciles yesterday (once done, not again), asking again every hour while the bill
// is not ready or Alipay can't be reached. One instance does it for all: the check
// that it is due is repeated under the job's lease.
func (s *Service) ReconcileYesterday(ctx context.Context) error {
	now := s.now()
	if now.In(shanghai.Location()).Hour() < billHour {
		return nil
	}
	day := midnight(now).AddDate(0, 0, -1)
	if due, _, err := s.reconcileDue(ctx, now, day); !due || err != nil {
		return err
	}
	ok, err := s.st.TakeLease(ctx, store.JobDailyReconciliation, dailyLease)
	if !ok || err != nil {
		return err // another instance is at it
	}
	defer s.st.ReleaseLease(context.WithoutCancel(ctx), store.JobDailyReconciliation)
	due, prev, err := s.reconcileDue(ctx, now, day)
	if !due || err != nil {
		return err // done meanwhile by the instance that held the lease before
	}
	_, _, err = s.ReconcileDay(ctx, day)
	if err == nil {
		return nil
	}
	// Keep the failure and when to try again; the bill may simply not be made yet.
	failed := store.Reconciliation{BillDate: day.Format("2006-01-02"), Status: "failed", Error: err.Error(),
		Attempts: prev.Attempts + 1, NextTryAt: store.At(now.Add(time.Hour))}
	if serr := s.st.SaveReconciliation(ctx, failed, nil); serr != nil {
		return serr
	}
	if errors.Is(err, ErrBillNotReady) {
		return nil
	}
	return err
}

// dailyLease bounds one daily reconciliation: a bill download (256 MiB at most) and
// comparing it; an instance that dies holding it delays the next try by this much.
const dailyLease = 10 * time.Minute

// reconcileDue reports whether day still needs reconciling at now, and its last attempt.
func (s *Service) reconcileDue(ctx context.Context, now, day time.Time) (bool, store.Reconciliation, error) {
	prev, err := s.st.ReconciliationOf(ctx, day.Format("2006-01-02"))
	if err == nil && (prev.Status != "failed" || now.Before(prev.NextTryAt.Time)) {
		return false, prev, nil // done, or not due again yet
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return false, prev, err
	}
	return true, prev, nil
}
