package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"time"
)

// The automation API: JSON for tests and scripts. Console forms reuse these routes
// (back=console).

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func jsonError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func fromConsole(r *http.Request) bool { return r.FormValue("back") == "console" }

// backToConsole lets console forms reuse these routes: they send back=console and get a
// 303 to the console instead of JSON.
func backToConsole(w http.ResponseWriter, r *http.Request) bool {
	if !fromConsole(r) {
		return false
	}
	http.Redirect(w, r, "/sandbox/", http.StatusSeeOther)
	return true
}

// apiFail answers a failure as JSON, or for a console form as an error page that leads
// back to the console.
func (e *Emulator) apiFail(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	if fromConsole(r) {
		w.Header().Set("X-Sandbox-Error", code)
		e.renderPage(w, status, "error.html", pageData{Title: "支付宝沙箱控制台 - 操作失败", Code: code, Message: msg,
			BackURL: "/sandbox/", BackLabel: "返回控制台"})
		return
	}
	if code != "" {
		msg = code + ": " + msg
	}
	jsonError(w, status, msg)
}

const errNoTrade = "ACQ.TRADE_NOT_EXIST"

// exists reports whether out_trade_no names a trade or an open cashier.
func (e *Emulator) exists(ctx context.Context, no string) (bool, error) {
	var n int
	err := e.db.GetContext(ctx, &n, `SELECT (SELECT COUNT(*) FROM trades WHERE out_trade_no=?) + (SELECT COUNT(*) FROM cashiers WHERE out_trade_no=?)`, no, no)
	return n > 0, err
}

func (e *Emulator) handleAPIPay(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	e.settle(r.Context())
	notify := r.URL.Query().Get("notify") != "off"
	t, err := e.pay(r.Context(), r.PathValue("no"), notify)
	switch {
	case errors.Is(err, errNotFound):
		e.apiFail(w, r, http.StatusNotFound, errNoTrade, "交易不存在")
		return
	case errors.Is(err, errTradeClosed), errors.Is(err, errTradePaid):
		e.apiFail(w, r, http.StatusConflict, "ACQ.TRADE_HAS_CLOSE", "交易已关闭")
		return
	case err != nil:
		e.log.Error("sandbox: api pay", "err", err)
		e.apiFail(w, r, http.StatusInternalServerError, "", "pay failed")
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

// handleAPIScan is the buyer scanning the cashier's QR code (or logging in): the trade
// is created, unpaid. Answers the trade as JSON; idempotent.
func (e *Emulator) handleAPIScan(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	e.settle(r.Context())
	t, err := e.scan(r.Context(), r.PathValue("no"))
	switch {
	case errors.Is(err, errNotFound):
		e.apiFail(w, r, http.StatusNotFound, errNoTrade, "交易不存在")
		return
	case errors.Is(err, errCashierExpired):
		e.apiFail(w, r, http.StatusConflict, "ACQ.TRADE_HAS_CLOSE", "已超过支付截止时间，交易无法创建")
		return
	case err != nil:
		e.log.Error("sandbox: api scan", "err", err)
		e.apiFail(w, r, http.StatusInternalServerError, "", "scan failed")
		return
	}
	if backToConsole(w, r) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"out_trade_no": t.OutTradeNo, "trade_no": t.TradeNo, "status": t.Status})
}

func (e *Emulator) handleAPIFault(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	f, no := r.FormValue("next"), r.PathValue("no")
	if !validFault(f) {
		e.apiFail(w, r, http.StatusBadRequest, "", "next must be one of "+strings.Join(allFaults, ", "))
		return
	}
	ok, err := e.exists(r.Context(), no)
	if err == nil && ok {
		err = e.addFault(r.Context(), no, f)
	}
	switch {
	case err != nil:
		e.apiFail(w, r, http.StatusInternalServerError, "", "store failed")
		return
	case !ok:
		e.apiFail(w, r, http.StatusNotFound, errNoTrade, "交易不存在")
		return
	}
	if backToConsole(w, r) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"out_trade_no": no, "next": f})
}

func (e *Emulator) handleAPINotify(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	err := e.resend(r.Context(), r.PathValue("no"))
	switch {
	case errors.Is(err, errNotFound):
		e.apiFail(w, r, http.StatusNotFound, errNoTrade, "交易不存在")
		return
	case errors.Is(err, errNothingToNotify), errors.Is(err, errNoNotifyURL):
		e.apiFail(w, r, http.StatusConflict, "", err.Error())
		return
	case err != nil:
		e.log.Error("sandbox: api notify", "err", err)
		e.apiFail(w, r, http.StatusInternalServerError, "", "resend failed")
		return
	}
	if backToConsole(w, r) {
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"out_trade_no": r.PathValue("no"), "status": "queued"})
}

// handleAPIRefund refunds as the merchant would in Alipay's own console: the refund gets
// the console's own out_request_no (prefixed so it can't collide with a shop's), follows
// the API's rules and sends a refund notify if the trade's switch is on.
// Form: amount (yuan, 2 decimals), optional reason.
func (e *Emulator) handleAPIRefund(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	e.settle(r.Context())
	no := r.PathValue("no")
	fen, err := parseAmount(strings.TrimSpace(r.FormValue("amount")))
	if err != nil {
		e.apiFail(w, r, http.StatusBadRequest, "", "退款金额 amount "+err.Error())
		return
	}
	reason := strings.TrimSpace(r.FormValue("reason"))
	if len([]rune(reason)) > 256 {
		e.apiFail(w, r, http.StatusBadRequest, "", "退款原因 reason 最多 256 个字符")
		return
	}
	call := &apiCall{r: r, biz: map[string]string{"out_trade_no": no}}
	res, gerr := e.refund(r.Context(), call, refundRequest{OutRequestNo: e.consoleRequestNo(),
		AmountFen: fen, Source: refundByConsole, Reason: reason})
	if gerr != nil {
		status := http.StatusConflict
		switch gerr.SubCode {
		case errNoTrade:
			status = http.StatusNotFound
		case "ACQ.SYSTEM_ERROR":
			status = http.StatusInternalServerError
		}
		e.apiFail(w, r, status, gerr.SubCode, gerr.SubMsg)
		return
	}
	if backToConsole(w, r) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"out_trade_no": no, "trade_no": res.T.TradeNo,
		"out_request_no": res.OutRequestNo, "refund_amount": formatFen(fen), "refund_fee": formatFen(res.T.RefundedFen),
		"trade_status": res.T.Status})
}

// consoleRequestNo is the out_request_no of a refund made in the console.
func (e *Emulator) consoleRequestNo() string {
	n, err := rand.Int(rand.Reader, big.NewInt(1e8))
	if err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return fmt.Sprintf("alipay_console_%s%08d", e.now().In(shanghai).Format("20060102150405"), n.Int64())
}

// handleAPIRefundNotify switches the trade's refund notifies on (on=1) or off (on=0).
func (e *Emulator) handleAPIRefundNotify(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	no := r.PathValue("no")
	var on bool
	switch r.FormValue("on") {
	case "1":
		on = true
	case "0":
	default:
		e.apiFail(w, r, http.StatusBadRequest, "", "on must be 1 or 0")
		return
	}
	ok, err := e.exists(r.Context(), no)
	if err == nil && ok {
		_, err = e.db.ExecContext(r.Context(), `INSERT INTO trade_flags (out_trade_no, refund_notify) VALUES (?,?)
			ON CONFLICT (out_trade_no) DO UPDATE SET refund_notify=excluded.refund_notify`, no, on)
	}
	switch {
	case err != nil:
		e.apiFail(w, r, http.StatusInternalServerError, "", "store failed")
		return
	case !ok:
		e.apiFail(w, r, http.StatusNotFound, errNoTrade, "交易不存在")
		return
	}
	if backToConsole(w, r) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"out_trade_no": no, "refund_notify": on})
}

// deliveryJSON is one notify attempt as the automation API shows it.
type deliveryJSON struct {
	At         string `json:"at"`
	HTTPStatus int    `json:"http_status"`
	Body       string `json:"body"`
	Error      string `json:"error"`
}

// refundJSON is one refund of a trade.
type refundJSON struct {
	At           string `json:"at"`
	OutRequestNo string `json:"out_request_no"`
	Amount       string `json:"amount"`
	Source       string `json:"source"`
}

// tradeJSON is GET /sandbox/api/trades/{out_trade_no}. status is Alipay's trade status,
// or NOT_CREATED while only the cashier is open (trade_no is then empty).
type tradeJSON struct {
	Status         string         `json:"status"`
	TotalAmount    string         `json:"total_amount"`
	TradeNo        string         `json:"trade_no"`
	Deliveries     []deliveryJSON `json:"deliveries"`
	RefundedAmount string         `json:"refunded_amount"`
	Refunds        []refundJSON   `json:"refunds"`
	RefundNotify   bool           `json:"refund_notify"`
}

func (e *Emulator) handleAPITrade(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	e.settle(ctx)
	no := r.PathValue("no")
	t, err := getTrade(ctx, e.db, no)
	if errors.Is(err, errNotFound) {
		c, cerr := getCashier(ctx, e.db, no)
		switch {
		case errors.Is(cerr, errNotFound):
			jsonError(w, http.StatusNotFound, "ACQ.TRADE_NOT_EXIST: 交易不存在")
		case cerr != nil:
			jsonError(w, http.StatusInternalServerError, "store failed")
		default:
			on, _ := refundNotifyOn(ctx, e.db, no)
			writeJSON(w, http.StatusOK, tradeJSON{Status: statusNotCreated, TotalAmount: formatFen(c.TotalFen),
				Deliveries: []deliveryJSON{}, RefundedAmount: "0.00", Refunds: []refundJSON{}, RefundNotify: on})
		}
		return
	}
	if err == nil {
		err = e.closeIfExpired(ctx, e.db, t)
	}
	var as []attemptRow
	var rs []refundRow
	var on bool
	if err == nil {
		as, err = attemptsForTrade(ctx, e.db, t.OutTradeNo)
	}
	if err == nil {
		rs, err = refundsForTrade(ctx, e.db, t.OutTradeNo)
	}
	if err == nil {
		on, err = refundNotifyOn(ctx, e.db, t.OutTradeNo)
	}
	if err != nil {
		jsonError(w, http.StatusInternalServerError, "store failed")
		return
	}
	out := tradeJSON{Status: t.Status, TotalAmount: formatFen(t.TotalFen), TradeNo: t.TradeNo, Deliveries: []deliveryJSON{},
		RefundedAmount: formatFen(t.RefundedFen), Refunds: []refundJSON{}, RefundNotify: on}
	for _, a := range as {
		out.Deliveries = append(out.Deliveries, deliveryJSON{
			At: time.UnixMilli(a.At).In(shanghai).Format(time.RFC3339), HTTPStatus: a.HTTPStatus, Body: a.Body, Error: a.Error,
		})
	}
	for _, rf := range rs {
		out.Refunds = append(out.Refunds, refundJSON{At: time.UnixMilli(rf.RefundedAt).In(shanghai).Format(time.RFC3339),
			OutRequestNo: rf.OutRequestNo, Amount: formatFen(rf.AmountFen), Source: rf.Source})
	}
	writeJSON(w, http.StatusOK, out)
}
