package sandbox

import (
	"bytes"
	"errors"
	"net/http"
	"net/url"
)

// HTML pages for the shopper's browser: cashier, errors, cancel and paid pages.

type pageData struct {
	Title    string
	Merchant string
	Trade    *tradeRow
	Buyer    string
	Code     string
	Message  string
	BackURL  string
	Expires  string
}

// renderPage writes an HTML page. No inline script or style anywhere, so the shop's
// strict CSP holds on every emulator page.
func (e *Emulator) renderPage(w http.ResponseWriter, status int, name string, d pageData) {
	d.Merchant = e.cfg.MerchantName
	var b bytes.Buffer
	if err := e.tmpl.ExecuteTemplate(&b, name, d); err != nil {
		e.log.Error("sandbox: template", "name", name, "err", err)
		http.Error(w, "sandbox template error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// renderError is Alipay's error page: HTTP 200 like Alipay, plus X-Sandbox-Error so
// tests can assert the code without scraping HTML.
func (e *Emulator) renderError(w http.ResponseWriter, g *gwError) {
	w.Header().Set("X-Sandbox-Error", g.SubCode)
	e.renderPage(w, http.StatusOK, "error.html", pageData{Title: "支付宝 - 错误", Code: g.SubCode, Message: g.SubMsg})
}

func (e *Emulator) renderCashier(w http.ResponseWriter, t *tradeRow) {
	e.renderPage(w, http.StatusOK, "cashier.html", pageData{
		Title: "支付宝 - 网上支付 安全快速！", Trade: t, Buyer: buyerLogon, Expires: bjFormat(t.ExpiresAt),
	})
}

// handleCashierPay is 确认付款. Idempotent: a double click pays once and both clicks
// land on the same return page.
func (e *Emulator) handleCashierPay(w http.ResponseWriter, r *http.Request) {
	t, err := e.pay(r.Context(), r.PathValue("no"), true)
	switch {
	case errors.Is(err, errNotFound):
		e.renderError(w, pageError("ACQ.TRADE_NOT_EXIST", "交易不存在"))
		return
	case errors.Is(err, errTradeClosed), errors.Is(err, errTradePaid):
		e.renderError(w, pageError("ACQ.TRADE_HAS_CLOSE", "交易已关闭，无法付款"))
		return
	case err != nil:
		e.log.Error("sandbox: cashier pay", "err", err)
		e.renderError(w, pageError("SYSTEM_ERROR", "系统繁忙，请稍后再试"))
		return
	}
	ret, err := e.returnURL(t)
	if err != nil {
		e.renderError(w, pageError("SYSTEM_ERROR", "签名失败"))
		return
	}
	if ret == "" {
		e.renderPage(w, http.StatusOK, "paid.html", pageData{Title: "支付宝 - 付款成功", Trade: t})
		return
	}
	http.Redirect(w, r, ret, http.StatusSeeOther)
}

// handleCashierCancel is 取消: Alipay leaves the trade waiting; only expiry or the
// merchant's close ends it.
func (e *Emulator) handleCashierCancel(w http.ResponseWriter, r *http.Request) {
	t, err := getTrade(r.Context(), e.db, r.PathValue("no"))
	if err == nil {
		err = e.closeIfExpired(r.Context(), e.db, t)
	}
	if err != nil {
		e.renderError(w, pageError("ACQ.TRADE_NOT_EXIST", "交易不存在"))
		return
	}
	// Leaving the cashier changes nothing, but the page must not call a paid or closed
	// trade "still waiting".
	switch t.Status {
	case statusSuccess:
		e.renderError(w, pageError("ACQ.TRADE_HAS_SUCCESS", "交易已支付成功，无需取消；如需退款请联系商户"))
		return
	case statusClosed:
		e.renderError(w, pageError("ACQ.TRADE_HAS_CLOSE", "交易已关闭"))
		return
	}
	e.renderPage(w, http.StatusOK, "cancelled.html", pageData{Title: "支付宝 - 已取消", Trade: t, BackURL: merchantHome(t)})
}

// merchantHome is scheme+host of return_url (or notify_url), the merchant's site.
func merchantHome(t *tradeRow) string {
	for _, s := range []string{t.ReturnURL, t.NotifyURL} {
		if u, err := url.Parse(s); err == nil && u.Host != "" && (u.Scheme == "http" || u.Scheme == "https") {
			return u.Scheme + "://" + u.Host + "/"
		}
	}
	return ""
}
