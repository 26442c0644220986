package sandbox

import (
	"bytes"
	"net/http"
)

// consoleTrade is one row of the console: a trade, or a cashier whose trade the buyer
// has not created yet, with its notify history, refunds and pending faults.
type consoleTrade struct {
	No           string
	TradeNo      string
	Status       string
	Subject      string
	Method       string
	TotalFen     int64
	RefundedFen  int64
	LeftFen      int64
	CreatedAt    int64
	ExpiresAt    int64
	Deliveries   []attemptRow
	Refunds      []refundRow
	Faults       []string
	NotifyStatus string
	NextAt       int64
	RefundNotify bool
	Refundable   bool
	Payable      bool
	HasTrade     bool
}

type consoleData struct {
	Merchant string
	Trades   []consoleTrade
	Faults   []string
}

const consoleLimit = 100

// handleConsole shows the latest trades and open cashiers, their deliveries and refunds,
// and the buttons that act on them.
func (e *Emulator) handleConsole(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	e.settle(ctx)
	fail := func(err error) {
		e.log.Error("sandbox: console", "err", err)
		http.Error(w, "store failed", http.StatusInternalServerError)
	}
	var trades []tradeRow
	if err := e.db.SelectContext(ctx, &trades, `SELECT * FROM trades ORDER BY created_at DESC, out_trade_no LIMIT ?`, consoleLimit); err != nil {
		fail(err)
		return
	}
	var cashiers []cashierRow
	if err := e.db.SelectContext(ctx, &cashiers, `SELECT c.* FROM cashiers c LEFT JOIN trades t ON t.out_trade_no = c.out_trade_no
		WHERE t.out_trade_no IS NULL ORDER BY c.opened_at DESC, c.out_trade_no LIMIT ?`, consoleLimit); err != nil {
		fail(err)
		return
	}
	var rows []consoleTrade
	for _, c := range cashiers {
		rows = append(rows, consoleTrade{No: c.OutTradeNo, Status: statusNotCreated, Subject: c.Subject, Method: c.Method,
			TotalFen: c.TotalFen, CreatedAt: c.OpenedAt, ExpiresAt: c.ExpiresAt, Payable: c.ExpiresAt > e.nowMs()})
	}
	for _, t := range trades {
		rows = append(rows, consoleTrade{No: t.OutTradeNo, TradeNo: t.TradeNo, Status: t.Status, Subject: t.Subject,
			Method: t.Method, TotalFen: t.TotalFen, RefundedFen: t.RefundedFen, CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt,
			HasTrade: true, Payable: t.Status == statusWait, LeftFen: t.TotalFen - t.RefundedFen, Refundable: t.Status == statusSuccess && t.RefundedFen < t.TotalFen})
	}
	for i := range rows {
		ct := &rows[i]
		fs, err := pendingFaults(ctx, e.db, ct.No)
		if err != nil {
			fail(err)
			return
		}
		for _, f := range fs {
			ct.Faults = append(ct.Faults, f.Fault)
		}
		if ct.RefundNotify, err = refundNotifyOn(ctx, e.db, ct.No); err != nil {
			fail(err)
			return
		}
		if !ct.HasTrade {
			continue
		}
		if ct.Deliveries, err = attemptsForTrade(ctx, e.db, ct.No); err != nil {
			fail(err)
			return
		}
		if ct.Refunds, err = refundsForTrade(ctx, e.db, ct.No); err != nil {
			fail(err)
			return
		}
		var n notificationRow
		if err := e.db.GetContext(ctx, &n, `SELECT * FROM notifications WHERE out_trade_no=? ORDER BY id DESC LIMIT 1`, ct.No); err == nil {
			ct.NotifyStatus, ct.NextAt = n.Status, n.NextAt
		}
	}
	d := consoleData{Merchant: e.cfg.MerchantName, Trades: rows, Faults: allFaults}
	var b bytes.Buffer
	if err := e.tmpl.ExecuteTemplate(&b, "console.html", d); err != nil {
		e.log.Error("sandbox: console template", "err", err)
		http.Error(w, "template failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(b.Bytes())
}
