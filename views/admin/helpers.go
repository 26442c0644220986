// Package admin renders the back office's pages with templ: the operator's dashboard,
// orders, refunds, flagged payments, goods and the actions log. Views render the props
// they are given and never query; every page has one props struct.
package admin

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"storefront/money"
	"storefront/shanghai"
	"storefront/store"
	"storefront/views"
)

// Layout is what every back-office page's frame needs.
type Layout struct {
	Title    string
	Operator string // the operator's e-mail, "" on the login page
	CSRF     string
	Flash    string
	Nav      string // the section lit in the nav
}

// Sections of the nav.
const (
	NavDashboard = "dashboard"
	NavOrders    = "orders"
	NavPayments  = "payments"
	NavGoods     = "goods"
	NavAudit     = "audit"
)

func when(t store.Time) string { return shanghai.Format(t.Time) }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func yuan(f money.Fen) string { return f.Yuan() }

// statusText is a payment status in Chinese.
func statusText(s string) string { return views.StatusText(s) }

// stateText is an order's combined state in Chinese, as shoppers see it.
func stateText(o store.Order) string {
	t, _ := views.OrderState(o)
	return t
}

func fulfilmentText(f string) string { return views.FulfilmentText(f) }

// RefundStatusText is a refund's status in Chinese.
func RefundStatusText(s string) string {
	switch s {
	case store.RefundPending:
		return "退款中"
	case store.RefundSucceeded:
		return "已退款"
	case store.RefundFailed:
		return "退款失败"
	}
	return s
}

// RefundSourceText is who asked for a refund.
func RefundSourceText(s string) string {
	switch s {
	case store.RefundByOperator:
		return "运营"
	case store.RefundByShopper:
		return "顾客申请"
	case store.RefundAuto:
		return "自动（关单后付款）"
	case store.RefundByAlipay:
		return "支付宝后台"
	}
	return s
}

// requestStatusText is a 申请退款's status in Chinese.
func requestStatusText(s string) string {
	switch s {
	case "waiting":
		return "待处理"
	case "approved":
		return "已同意"
	case "refused":
		return "已拒绝"
	}
	return s
}

// actionText is an operator action in Chinese.
func actionText(a string) string {
	switch a {
	case store.ActShip:
		return "发货"
	case store.ActNote:
		return "备注"
	case store.ActCancel:
		return "取消订单"
	case store.ActRefund:
		return "发起退款"
	case store.ActRefundSettled:
		return "退款结果"
	case store.ActApprove:
		return "同意退款申请"
	case store.ActRefuse:
		return "拒绝退款申请"
	case store.ActResolve:
		return "处理异常支付"
	case store.ActGoodsCreate:
		return "新增商品"
	case store.ActGoodsUpdate:
		return "修改商品"
	}
	return a
}

// verdictText is a payment event's verdict in Chinese.
func verdictText(v string) string {
	switch v {
	case store.VerdictApplied:
		return "已生效"
	case store.VerdictDuplicate:
		return "重复"
	case store.VerdictIgnored:
		return "无需处理"
	case store.VerdictRejected:
		return "已拒绝"
	case store.VerdictFlagged:
		return "需人工处理"
	case store.VerdictVerified:
		return "已验签"
	}
	return v
}

func sourceText(s string) string {
	switch s {
	case store.SourceNotify:
		return "异步通知"
	case store.SourceReturn:
		return "同步返回"
	case store.SourceQuery:
		return "交易查询"
	case store.SourceClose:
		return "关闭交易"
	case store.SourceRefund:
		return "退款接口"
	case store.SourceRefundQuery:
		return "退款查询"
	}
	return s
}

func operatorOr(email string) string {
	if email == "" {
		return "系统"
	}
	return email
}

// Pager is a keyset pager: the next page continues after Before.
type Pager struct {
	Path   string
	Query  url.Values // the filters, kept on the next page
	Before int64      // the last id of this page; 0 = no more
}

func (p Pager) next() string {
	q := url.Values{}
	for k, v := range p.Query {
		if k != "before" {
			q[k] = v
		}
	}
	q.Set("before", strconv.FormatInt(p.Before, 10))
	return p.Path + "?" + q.Encode()
}

// Bar is one day of the sales chart, already scaled.
type Bar struct {
	Label  string // "11-29"
	Sales  money.Fen
	Orders int
	X, Y   int // top-left of the bar, in SVG units
	W, H   int
}

// ChartHeight and ChartWidth are the sales chart's SVG size.
const (
	ChartWidth  = 700
	ChartHeight = 220
	chartTop    = 20
	chartBottom = 190
)

// Bars lays out days as an SVG bar chart: the tallest bar reaches the top.
func Bars(days []store.DaySales) []Bar {
	var peak money.Fen
	for _, d := range days {
		peak = max(peak, d.Sales)
	}
	n := max(len(days), 1)
	slot := ChartWidth / n
	bars := make([]Bar, len(days))
	for i, d := range days {
		h := 0
		if peak > 0 {
			h = int(int64(d.Sales) * (chartBottom - chartTop) / int64(peak))
		}
		if d.Sales > 0 && h < 2 {
			h = 2
		}
		bars[i] = Bar{Label: d.Day.In(shanghai.Location()).Format("01-02"), Sales: d.Sales, Orders: d.Orders,
			X: i*slot + slot/6, Y: chartBottom - h, W: slot * 2 / 3, H: h}
	}
	return bars
}

func barLabelX(b Bar) string { return strconv.Itoa(b.X + b.W/2) }

func svgInt(n int) string { return strconv.Itoa(n) }

// short cuts s for a table cell.
func short(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

func join(parts ...string) string { return strings.Join(parts, " ") }

var _ = fmt.Sprint

func fen(n int64) money.Fen { return money.Fen(n) }

// DiffText names a reconciliation difference in Chinese.
func DiffText(kind, what string) string {
	thing := "付款"
	if what == "refund" {
		thing = "退款"
	}
	switch kind {
	case store.MissingInShop:
		return "本店缺少" + thing
	case store.MissingAtAlipay:
		return "支付宝账单缺少" + thing
	case store.AmountDiffers:
		return thing + "金额不一致"
	}
	return kind
}
