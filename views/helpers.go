// Package views renders the shop's pages with templ. Views render the props they are
// given and never query; every page has one props struct.
package views

import (
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/a-h/templ"

	"storefront/shanghai"
	"storefront/store"
)

// Layout is what every page's frame needs.
type Layout struct {
	Title     string
	Email     string // logged-in shopper, "" if none
	CSRF      string // token for the hidden _csrf field
	Flash     string // one-line notice at the top
	CartCount int64  // pieces in the cart, for the badge
	Search    string // the search box's text
	Nav       string // the bottom tab that is lit
}

// Tabs of the bottom navigation.
const (
	NavHome   = "home"
	NavCart   = "cart"
	NavOrders = "orders"
	NavMe     = "me"
)

// StatusText is an order's payment status in Chinese.
func StatusText(status string) string {
	switch status {
	case store.StatusUnpaid:
		return "待支付"
	case store.StatusPaid:
		return "已支付"
	case store.StatusClosed:
		return "已关闭"
	case store.StatusCancelled:
		return "已取消"
	case store.StatusRefunded:
		return "已退款"
	}
	return status
}

// OrderState is how a shopper follows an order: one word combining payment and
// fulfilment, and the CSS class that colours it.
func OrderState(o store.Order) (text, class string) {
	switch o.Status {
	case store.StatusUnpaid:
		return "待付款", "unpaid"
	case store.StatusPaid:
		switch {
		case o.Fulfilment == store.Shipped:
			return "已发货", "shipped"
		case o.Fulfilment == store.Received && !o.NeedsShipping:
			return "已完成", "received"
		case o.Fulfilment == store.Received:
			return "已收货", "received"
		}
		return "待发货", "unshipped"
	case store.StatusRefunded:
		return "已退款", "refunded"
	case store.StatusClosed:
		return "已关闭（超时未支付）", "closed"
	case store.StatusCancelled:
		return "已关闭（已取消）", "closed"
	}
	return o.Status, ""
}

// FulfilmentText is an order's fulfilment in Chinese.
func FulfilmentText(f string) string {
	switch f {
	case store.Unshipped:
		return "待发货"
	case store.Shipped:
		return "已发货"
	case store.Received:
		return "已收货"
	}
	return f
}

// when formats a time as Beijing time, "" for none.
func when(t store.Time) string { return shanghai.Format(t.Time) }

func whenT(t time.Time) string { return shanghai.Format(t) }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// Pager describes one page of a list: where it is and whether another follows.
type Pager struct {
	Page  int
	More  bool
	Path  string
	Query string // other parameters of the list, already encoded ("tab=unpaid")
	Pages int    // total pages, 0 if not counted
}

func (p Pager) at(n int) string {
	if p.Query != "" {
		return fmt.Sprintf("%s?%s&page=%d", p.Path, p.Query, n)
	}
	return fmt.Sprintf("%s?page=%d", p.Path, n)
}

// URL is page n of the list; page 1 is the list's own address.
func (p Pager) URL(n int) string {
	switch {
	case n > 1:
		return p.at(n)
	case p.Query != "":
		return p.Path + "?" + p.Query
	}
	return p.Path
}

func (p Pager) prev() string { return p.at(p.Page - 1) }
func (p Pager) next() string { return p.at(p.Page + 1) }

// CatalogueParams encodes a catalogue query's filters for links (without the page).
func CatalogueParams(q store.CatalogueQuery) string {
	v := url.Values{}
	if q.Category != "" {
		v.Set("category", q.Category)
	}
	if q.Q != "" {
		v.Set("q", q.Q)
	}
	if q.Sort != "" {
		v.Set("sort", q.Sort)
	}
	return v.Encode()
}

// catalogueURL is "/" with q's filters changed by f.
func catalogueURL(q store.CatalogueQuery, f func(*store.CatalogueQuery)) string {
	f(&q)
	if s := CatalogueParams(q); s != "" {
		return "/?" + s
	}
	return "/"
}

// checkoutURL is 确认订单 for one goods.
func checkoutURL(goodsID, qty int64) string {
	return "/checkout?goods_id=" + itoa(goodsID) + "&qty=" + itoa(qty)
}

func urlEscape(s string) string { return url.QueryEscape(s) }

// RefundText is a refund's status as the shopper reads it.
func RefundText(status string) string {
	switch status {
	case store.RefundPending:
		return "退款中"
	case store.RefundSucceeded:
		return "已退款"
	}
	return "退款未成功，商家处理中"
}

// RefundClass colours a refund's status.
func RefundClass(status string) string {
	if status == store.RefundSucceeded {
		return "refunded"
	}
	return "refunding"
}

// Class is a class attribute to spread into an element (<a { views.Class(…)... }>);
// "" gives none. templ's class={ … } builds two maps for every element it renders, and
// that was a fifth of rendering a shopper's list of orders.
func Class(names string) templ.OrderedAttributes {
	if names == "" {
		return nil
	}
	return templ.OrderedAttributes{{Key: "class", Value: names}}
}

// Also is base followed by extra when add is true: Class(Also("chip", "on", current)).
func Also(base, extra string, add bool) string {
	switch {
	case !add:
		return base
	case base == "":
		return extra
	}
	return base + " " + extra
}
