package admin

import (
	"bufio"
	"encoding/csv"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"storefront/money"
	"storefront/shanghai"
	"storefront/store"
	"storefront/views"
	adminviews "storefront/views/admin"
)

// exportDays is the range an export takes when none is given.
const exportDays = 30

// csvOut streams CSV to the response: UTF-8 with a BOM (so Excel reads the Chinese),
// written row by row and flushed every flushEvery rows, never built in memory.
type csvOut struct {
	w   *csv.Writer
	buf *bufio.Writer
	n   int
}

const flushEvery = 500

func startCSV(c echo.Context, name string) *csvOut {
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "text/csv; charset=utf-8")
	h.Set(echo.HeaderContentDisposition, `attachment; filename="`+name+`"`)
	// A big export outlasts the server's write timeout: this response gets its own.
	_ = http.NewResponseController(c.Response()).SetWriteDeadline(time.Now().Add(30 * time.Minute))
	c.Response().WriteHeader(http.StatusOK)
	buf := bufio.NewWriterSize(c.Response(), 64<<10)
	buf.WriteString("\uFEFF")
	return &csvOut{w: csv.NewWriter(buf), buf: buf}
}

// row writes one row, each cell guarded against spreadsheet formulas.
func (o *csvOut) row(cells ...string) error {
	for i, s := range cells {
		cells[i] = cell(s)
	}
	if err := o.w.Write(cells); err != nil {
		return err
	}
	if o.n++; o.n%flushEvery == 0 {
		o.w.Flush()
		if err := o.w.Error(); err != nil {
			return err
		}
		return o.buf.Flush()
	}
	return nil
}

func (o *csvOut) close() error {
	o.w.Flush()
	if err := o.w.Error(); err != nil {
		return err
	}
	return o.buf.Flush()
}

// cell keeps a spreadsheet from running text as a formula: one that starts with =, +,
// -, @ (or a tab or carriage return, which some spreadsheets skip before them) gets a
// leading apostrophe. A tab before digits only is textID's, and no formula.
func cell(s string) string {
	if len(s) > 1 && s[0] == '\t' && allDigits(s[1:]) {
		return s
	}
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// textID keeps a long number (an order or trade number, a phone number) text in a
// spreadsheet: as a number, Excel shows a 26-digit order number as 2.02612E+25 and keeps
// only 15 of its digits. A leading tab is how Alipay's own bills do it.
func textID(s string) string {
	if allDigits(s) {
		return "\t" + s
	}
	return s
}

func allDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

func bj(t store.Time) string { return shanghai.Format(t.Time) }

// exportRange is the request's from/to, or the last exportDays days.
func (h *Handler) exportRange(c echo.Context) (time.Time, time.Time, string, error) {
	from, to, err := dateRange(c)
	if err != nil {
		return from, to, "", err
	}
	if to.IsZero() {
		to = midnight(h.now()).AddDate(0, 0, 1)
	}
	if from.IsZero() {
		from = to.AddDate(0, 0, -exportDays)
	}
	label := from.In(shanghai.Location()).Format("20060102") + "-" + to.AddDate(0, 0, -1).In(shanghai.Location()).Format("20060102")
	return from, to, label, nil
}

func (h *Handler) exportOrders(c echo.Context) error {
	from, to, label, err := h.exportRange(c)
	if err != nil {
		return err
	}
	out := startCSV(c, "orders-"+label+".csv")
	if err := out.row("订单号", "下单时间", "付款时间", "支付状态", "物流", "顾客邮箱", "商品", "金额（元）", "已退款（元）",
		"支付宝交易号", "收货人", "手机号", "地区", "详细地址", "快递公司", "运单号"); err != nil {
		return nil // the client went away; nothing more to say to it
	}
	err = h.st.ExportOrders(c.Request().Context(), from, to, func(o *store.ExportOrder) error {
		fulfilment := "" // an order nobody paid for is not waiting to ship
		if o.Status == store.StatusPaid || o.Status == store.StatusRefunded {
			fulfilment = views.FulfilmentText(o.Fulfilment)
		}
		return out.row(textID(o.OutTradeNo), bj(o.CreatedAt), bj(o.PaidAt), views.StatusText(o.Status), fulfilment,
			o.Email, o.Subject, o.Total.String(), o.Refunded.String(), textID(o.TradeNo), o.ShipName, textID(o.ShipPhone),
			o.ShipRegion, o.ShipDetail, o.Carrier, textID(o.TrackingNo))
	})
	return h.endCSV(c, out, err)
}

func (h *Handler) exportRefunds(c echo.Context) error {
	from, to, label, err := h.exportRange(c)
	if err != nil {
		return err
	}
	out := startCSV(c, "refunds-"+label+".csv")
	if err := out.row("退款请求号", "订单号", "支付宝交易号", "金额（元）", "来源", "状态", "原因", "发起时间", "完成时间", "支付宝答复"); err != nil {
		return nil
	}
	err = h.st.ExportRefunds(c.Request().Context(), from, to, func(r *store.Refund) error {
		return out.row(r.OutRequestNo, textID(r.OutTradeNo), textID(r.TradeNo), r.Amount.String(), adminviews.RefundSourceText(r.Source), adminviews.RefundStatusText(r.Status),
			r.Reason, bj(r.CreatedAt), bj(r.SettledAt), r.FailReason)
	})
	return h.endCSV(c, out, err)
}

// exportReconciliation lists the reconciliation differences of the days in range.
func (h *Handler) exportReconciliation(c echo.Context) error {
	from, to, label, err := h.exportRange(c)
	if err != nil {
		return err
	}
	out := startCSV(c, "reconciliation-"+label+".csv")
	if err := out.row("账单日期", "差异", "订单号", "支付宝交易号", "退款请求号", "本店金额（元）", "支付宝金额（元）", "说明"); err != nil {
		return nil
	}
	ctx := c.Request().Context()
	for d := from; d.Before(to); d = d.AddDate(0, 0, 1) {
		diffs, err := h.st.DifferencesOf(ctx, d.In(shanghai.Location()).Format("2006-01-02"))
		if err != nil {
			return h.endCSV(c, out, err)
		}
		for _, x := range diffs {
			if err := out.row(x.BillDate, adminviews.DiffText(x.Kind, x.What), textID(x.OutTradeNo), textID(x.TradeNo), x.OutRequestNo,
				optYuan(x.ShopFen.Int64, x.ShopFen.Valid), optYuan(x.AlipayFen.Int64, x.AlipayFen.Valid), x.Note); err != nil {
				return h.endCSV(c, out, err)
			}
		}
	}
	return h.endCSV(c, out, nil)
}

func optYuan(n int64, ok bool) string {
	if !ok {
		return ""
	}
	return money.Fen(n).String()
}

// endCSV finishes a stream. Once rows are out the status can't change: a failure is
// logged and the file ends short, with a last line that says so.
func (h *Handler) endCSV(c echo.Context, out *csvOut, err error) error {
	if err != nil {
		h.log.ErrorContext(c.Request().Context(), "export failed mid-way", "err", err, "rows", out.n)
		out.row("# 导出中断：数据不完整，请重新导出")
	}
	if err := out.close(); err != nil {
		h.log.WarnContext(c.Request().Context(), "export not delivered", "err", err)
	}
	return nil
}
