package sandbox

import (
	"bytes"
	"errors"
	"net/http"
	"net/url"
)

// HTML pages for the shopper's browser: cashiers (PC and phone), errors, cancel and paid
// pages. Every page a buyer can reach offers a way back to the merchant.

type pageData struct {
	Title     string
	Merchant  string
	Cashier   *cashierRow
	Trade     *tradeRow
	Buyer     string
	Code      string
	Message   string
	BackURL   string
	BackLabel string
	Expires   string
}

// renderPage writes an HTML page. No inline script or style anywhere, so the shop's
// strict CSP holds on every emulator page.
func (e *Emulator) renderPage(w http.ResponseWriter, status int, name string, d pageData) {
	d.Merchant = e.cfg.MerchantName
	if d.BackURL != "" && d.BackLabel == "" {
		d.BackLabel = "返回商户"
	}
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
// tests can assert the code without scraping HTML. back is the way back to the merchant
// ("" when the request named none).
func (e *Emulator) renderError(w http.ResponseWriter, g *gwError, back string) {
	w.Header().Set("X-Sandbox-Error", g.SubCode)
	e.renderPage(w, http.StatusOK, "error.html", pageData{Title: "支付宝 - 错误", Code: g.SubCode, Message: g.SubMsg, BackURL: back})
}

func (e *Emulator) renderCashier(w http.ResponseWriter, c *cashierRow) {
	name := "cashier.html"
	if c.Method == methodWap {
		name = "wap_cashier.html"
	}
	e.renderPage(w, http.StatusOK, name, pageData{
		Title: "支付宝 - 网上支付 安全快速！", Cashier: c, Buyer: buyerLogon, Expires: bjFormat(c.ExpiresAt),
	})
}

// backURLOf is where a buyer leaving Alipay goes: quit_url for WAP pay, else the bare
// return_url (no query: the shop reads it as "came back without paying"), else the
// merchant's site root (from notify_url), else nowhere.
func backURLOf(method, returnURL, quitURL, notifyURL string) string {
	if method == methodWap && quitURL != "" && validQuitURL(quitURL) == nil {
		return quitURL
	}
	if returnURL != "" && validCallbackURL(returnURL) == nil {
		return returnURL
	}
	return siteRoot(returnURL, quitURL, notifyURL)
}

// siteRoot is scheme+host of the first usable URL.
func siteRoot(urls ...string) string {
	for _, s := range urls {
		if u, err := url.Parse(s); err == nil && u.Host != "" && (u.Scheme == "http" || u.Scheme == "https") {
			return u.Scheme + "://" + u.Host + "/"
		}
	}
	return ""
}

func cashierBack(c *cashierRow) string {
	return backURLOf(c.Method, c.ReturnURL, c.QuitURL, c.NotifyURL)
}

func tradeBack(t *tradeRow) string {
	return backURLOf(t.Method, t.ReturnURL, t.QuitURL, t.NotifyURL)
}

// requestBackURL is the way back named by a request that passed the common checks.
func requestBackURL(req *gatewayRequest) string {
	method := methodPage
	if req.Method == wapPayMethod {
		method = methodWap
	}
	return backURLOf(method, req.Params.Get("return_url"), req.Biz["quit_url"], req.Params.Get("notify_url"))
}

// rawBackURL is the same for a request that failed them (wrong signature, app id…): the
// link is only an <a href> to an http(s) address, so an unverified one does no harm.
func rawBackURL(method string, raw url.Values) string {
	m := methodPage
	if method == wapPayMethod {
		m = methodWap
	}
	biz, _ := parseBiz(raw.Get("biz_content"))
	return backURLOf(m, raw.Get("return_url"), biz["quit_url"], raw.Get("notify_url"))
}

// lookup finds what the buyer's browser points at: the trade (if the buyer already
// acted) and the cashier (nil for trades made before cashiers were kept).
func (e *Emulator) lookup(r *http.Request, no string) (*tradeRow, *cashierRow, error) {
	ctx := r.Context()
	t, err := getTrade(ctx, e.db, no)
	if err != nil && !errors.Is(err, errNotFound) {
		return nil, nil, err
	}
	if t != nil {
		if err := e.closeIfExpired(ctx, e.db, t); err != nil {
			return nil, nil, err
		}
	}
	c, err := getCashier(ctx, e.db, no)
	if err != nil && !errors.Is(err, errNotFound) {
		return nil, nil, err
	}
	if t == nil && c == nil {
		return nil, nil, errNotFound
	}
	return t, c, nil
}

func backOf(t *tradeRow, c *cashierRow) string {
	if c != nil {
		return cashierBack(c)
	}
	if t != nil {
		return tradeBack(t)
	}
	return ""
}

// handleCashierPay is 确认付款. Idempotent: a double click pays once and both clicks
// land on the same return page. It creates the trade first if the buyer had not acted.
func (e *Emulator) handleCashierPay(w http.ResponseWriter, r *http.Request) {
	e.settle(r.Context())
	no := r.PathValue("no")
	t, err := e.pay(r.Context(), no, true)
	if err != nil {
		back := ""
		if t0, c, lerr := e.lookup(r, no); lerr == nil {
			back = backOf(t0, c)
		}
		switch {
		case errors.Is(err, errNotFound):
			e.renderError(w, pageError("ACQ.TRADE_NOT_EXIST", "交易不存在"), back)
		case errors.Is(err, errTradePaid):
			e.renderError(w, pageError("ACQ.TRADE_HAS_CLOSE", "交易已关闭（已付款并全额退款），无法再次付款"), back)
		case errors.Is(err, errTradeClosed):
			e.renderError(w, pageError("ACQ.TRADE_HAS_CLOSE", "交易已关闭或已超过支付截止时间，无法付款"), back)
		default:
			e.log.Error("sandbox: cashier pay", "err", err)
			e.renderError(w, pageError("SYSTEM_ERROR", "系统繁忙，请稍后再试"), back)
		}
		return
	}
	ret, err := e.returnURL(t)
	if err != nil {
		e.renderError(w, pageError("SYSTEM_ERROR", "签名失败"), tradeBack(t))
		return
	}
	if ret == "" {
		e.renderPage(w, http.StatusOK, "paid.html", pageData{Title: "支付宝 - 付款成功", Trade: t, BackURL: siteRoot(t.NotifyURL)})
		return
	}
	http.Redirect(w, r, ret, http.StatusSeeOther)
}

// handleCashierCancel is 取消. Leaving the cashier changes nothing at Alipay: the trade
// (if any) keeps waiting and the cashier stays payable until its deadline. On the phone
// cashier the buyer goes straight to quit_url; on the PC cashier a page says so and
// links back to the bare return_url.
func (e *Emulator) handleCashierCancel(w http.ResponseWriter, r *http.Request) {
	e.settle(r.Context())
	t, c, err := e.lookup(r, r.PathValue("no"))
	if err != nil {
		e.renderError(w, pageError("ACQ.TRADE_NOT_EXIST", "交易不存在"), "")
		return
	}
	back := backOf(t, c)
	// The page must not call a paid or closed trade "still waiting".
	switch {
	case t != nil && (t.Status == statusSuccess || t.Status == statusFinished):
		e.renderError(w, pageError("ACQ.TRADE_HAS_SUCCESS", "交易已支付成功，无需取消；如需退款请联系商户"), back)
		return
	case t != nil && t.Status == statusClosed:
		e.renderError(w, pageError("ACQ.TRADE_HAS_CLOSE", "交易已关闭"), back)
		return
	case t == nil && c.ExpiresAt <= e.nowMs():
		e.renderError(w, pageError("ACQ.TRADE_HAS_CLOSE", "已超过支付截止时间，交易已关闭"), back)
		return
	}
	method, quit := methodPage, ""
	if c != nil {
		method, quit = c.Method, c.QuitURL
	} else if t != nil {
		method, quit = t.Method, t.QuitURL
	}
	if method == methodWap && quit != "" {
		http.Redirect(w, r, quit, http.StatusSeeOther)
		return
	}
	d := pageData{Title: "支付宝 - 已取消", Trade: t, Cashier: c, BackURL: back}
	e.renderPage(w, http.StatusOK, "cancelled.html", d)
}

// statusLabel is a trade status in Chinese.
func statusLabel(s string) string {
	switch s {
	case statusNotCreated:
		return "未创建（收银台已打开）"
	case statusWait:
		return "等待买家付款"
	case statusSuccess:
		return "支付成功"
	case statusFinished:
		return "交易结束（不可退款）"
	case statusClosed:
		return "交易关闭"
	}
	return s
}
