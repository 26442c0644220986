// Package views renders the shop's pages with templ. Views render the props they are
// given and never query; every page has one props struct.
package views

import (
	"fmt"
	"strconv"
	"time"

	"storefront/shanghai"
	"storefront/store"
)

// Layout is what every page's frame needs.
type Layout struct {
	Title string
	Email string // logged-in shopper, "" if none
	CSRF  string // token for the hidden _csrf field
	Flash string // one-line notice at the top
}

// StatusText is an order status in Chinese.
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

// when formats a time as Beijing time, "" for none.
func when(t store.Time) string { return shanghai.Format(t.Time) }

func whenT(t time.Time) string { return shanghai.Format(t) }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// Pager describes one page of a list: where it is and whether another follows.
type Pager struct {
	Page int
	More bool
	Path string
}

func (p Pager) prev() string { return fmt.Sprintf("%s?page=%d", p.Path, p.Page-1) }
func (p Pager) next() string { return fmt.Sprintf("%s?page=%d", p.Path, p.Page+1) }
