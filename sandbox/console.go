package sandbox

import (
	"bytes"
	"net/http"
)

// consoleTrade is one trade row of the console with its notify history.
type consoleTrade struct {
	T            tradeRow
	Deliveries   []attemptRow
	NotifyStatus string
	NextAt       int64
}

type consoleData struct {
	Merchant string
	Trades   []consoleTrade
	Faults   []string
}

// handleConsole shows the latest trades, their deliveries and the fault buttons.
func (e *Emulator) handleConsole(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var trades []tradeRow
	if err := e.db.SelectContext(ctx, &trades, `SELECT * FROM trades ORDER BY created_at DESC, out_trade_no LIMIT 100`); err != nil {
		http.Error(w, "store failed", http.StatusInternalServerError)
		return
	}
	var atts []attemptRow
	if err := e.db.SelectContext(ctx, &atts, `SELECT a.* FROM attempts a JOIN
		(SELECT out_trade_no FROM trades ORDER BY created_at DESC, out_trade_no LIMIT 100) t
		ON a.out_trade_no = t.out_trade_no ORDER BY a.at, a.id`); err != nil {
		http.Error(w, "store failed", http.StatusInternalServerError)
		return
	}
	var notes []notificationRow
	if err := e.db.SelectContext(ctx, &notes, `SELECT * FROM notifications ORDER BY id`); err != nil {
		http.Error(w, "store failed", http.StatusInternalServerError)
		return
	}
	byTrade := map[string][]attemptRow{}
	for _, a := range atts {
		byTrade[a.OutTradeNo] = append(byTrade[a.OutTradeNo], a)
	}
	latest := map[string]notificationRow{}
	for _, n := range notes {
		latest[n.OutTradeNo] = n
	}
	d := consoleData{Merchant: e.cfg.MerchantName, Faults: []string{faultDrop, faultDuplicate, faultDelay, faultForge, faultWrongAmount}}
	for _, t := range trades {
		ct := consoleTrade{T: t, Deliveries: byTrade[t.OutTradeNo]}
		if n, ok := latest[t.OutTradeNo]; ok {
			ct.NotifyStatus, ct.NextAt = n.Status, n.NextAt
		}
		d.Trades = append(d.Trades, ct)
	}
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
