package sandbox

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"
)

// The automation API: JSON for tests and scripts.

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func jsonError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// backToConsole lets console forms reuse these routes: they send back=console and get a
// 303 to the console instead of JSON.
func backToConsole(w http.ResponseWriter, r *http.Request) bool {
	if r.FormValue("back") != "console" {
		return false
	}
	http.Redirect(w, r, "/sandbox/", http.StatusSeeOther)
	return true
}

func (e *Emulator) handleAPIPay(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	notify := r.URL.Query().Get("notify") != "off"
	t, err := e.pay(r.Context(), r.PathValue("no"), notify)
	switch {
	case errors.Is(err, errNotFound):
		jsonError(w, http.StatusNotFound, "ACQ.TRADE_NOT_EXIST: 交易不存在")
		return
	case errors.Is(err, errTradeClosed), errors.Is(err, errTradePaid):
		jsonError(w, http.StatusConflict, "ACQ.TRADE_HAS_CLOSE: 交易已关闭")
		return
	case err != nil:
		e.log.Error("sandbox: api pay", "err", err)
		jsonError(w, http.StatusInternalServerError, "pay failed")
		return
	}
	if backToConsole(w, r) {
		return
	}
	ret, err := e.returnURL(t)
	if err != nil {
		jsonError(w, http.StatusInternalServerError, "sign failed")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"trade_no": t.TradeNo, "return_url": ret})
}

func (e *Emulator) handleAPIFault(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	f := r.FormValue("next")
	if !validFaults[f] {
		jsonError(w, http.StatusBadRequest, "next must be one of drop, duplicate, delay, forge, wrong_amount")
		return
	}
	res, err := e.db.ExecContext(r.Context(), `UPDATE trades SET next_fault=? WHERE out_trade_no=?`, f, r.PathValue("no"))
	if err != nil {
		jsonError(w, http.StatusInternalServerError, "store failed")
		return
	}
	if n, _ := res.RowsAffected(); n == 0 {
		jsonError(w, http.StatusNotFound, "ACQ.TRADE_NOT_EXIST: 交易不存在")
		return
	}
	if backToConsole(w, r) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"out_trade_no": r.PathValue("no"), "next": f})
}

func (e *Emulator) handleAPINotify(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	err := e.resend(r.Context(), r.PathValue("no"))
	switch {
	case errors.Is(err, errNotFound):
		jsonError(w, http.StatusNotFound, "ACQ.TRADE_NOT_EXIST: 交易不存在")
		return
	case errors.Is(err, errNothingToNotify), errors.Is(err, errNoNotifyURL):
		jsonError(w, http.StatusConflict, err.Error())
		return
	case err != nil:
		e.log.Error("sandbox: api notify", "err", err)
		jsonError(w, http.StatusInternalServerError, "resend failed")
		return
	}
	if backToConsole(w, r) {
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"out_trade_no": r.PathValue("no"), "status": "queued"})
}

// deliveryJSON is one notify attempt as the automation API shows it.
type deliveryJSON struct {
	At         string `json:"at"`
	HTTPStatus int    `json:"http_status"`
	Body       string `json:"body"`
	Error      string `json:"error"`
}

// tradeJSON is GET /sandbox/api/trades/{out_trade_no}.
type tradeJSON struct {
	Status      string         `json:"status"`
	TotalAmount string         `json:"total_amount"`
	TradeNo     string         `json:"trade_no"`
	Deliveries  []deliveryJSON `json:"deliveries"`
}

func (e *Emulator) handleAPITrade(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	t, err := getTrade(ctx, e.db, r.PathValue("no"))
	if errors.Is(err, errNotFound) {
		jsonError(w, http.StatusNotFound, "ACQ.TRADE_NOT_EXIST: 交易不存在")
		return
	}
	if err == nil {
		err = e.closeIfExpired(ctx, e.db, t)
	}
	var as []attemptRow
	if err == nil {
		as, err = attemptsForTrade(ctx, e.db, t.OutTradeNo)
	}
	if err != nil {
		jsonError(w, http.StatusInternalServerError, "store failed")
		return
	}
	out := tradeJSON{Status: t.Status, TotalAmount: formatFen(t.TotalFen), TradeNo: t.TradeNo, Deliveries: []deliveryJSON{}}
	for _, a := range as {
		out.Deliveries = append(out.Deliveries, deliveryJSON{
			At: time.UnixMilli(a.At).In(shanghai).Format(time.RFC3339), HTTPStatus: a.HTTPStatus, Body: a.Body, Error: a.Error,
		})
	}
	writeJSON(w, http.StatusOK, out)
}
