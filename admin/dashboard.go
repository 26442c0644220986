package admin

import (
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"storefront/shanghai"
	"storefront/store"
	views "storefront/views/admin"
	"storefront/web"
)

// pastDayTTL is how long a finished day's sales are kept in memory. A past day's total
// changes only when a payment is learned late (reconciliation of a lost notify) or
// paid_at is corrected, so the chart may lag that by up to this much — the price of a
// dashboard that reads one day of orders, not fourteen.
const pastDayTTL = 10 * time.Minute

// dayCache keeps finished days' sales for the chart.
type dayCache struct {
	mu sync.Mutex
	m  map[time.Time]cachedDay
}

type cachedDay struct {
	d  store.DaySales
	at time.Time
}

// midnight is the start of t's Beijing day.
func midnight(t time.Time) time.Time {
	b := t.In(shanghai.Location())
	return time.Date(b.Year(), b.Month(), b.Day(), 0, 0, 0, 0, shanghai.Location())
}

func (h *Handler) dashboard(c echo.Context) error {
	ctx := c.Request().Context()
	now := h.now()
	today := midnight(now)
	var d store.Dashboard
	var err error
	if d.ToShip, d.Requests, d.PendingRefund, d.Flagged, err = h.st.Counts(ctx); err != nil {
		return err
	}
	for i := 13; i >= 0; i-- {
		from := today.AddDate(0, 0, -i)
		day, err := h.daySales(c, from, from.AddDate(0, 0, 1), i == 0)
		if err != nil {
			return err
		}
		d.Days = append(d.Days, day)
	}
	last := d.Days[len(d.Days)-1]
	d.TodayOrders, d.TodaySales = last.Orders, last.Sales
	reqs, err := h.st.WaitingRefundRequests(ctx, 20)
	if err != nil {
		return err
	}
	return web.Render(c, http.StatusOK, views.Dashboard(views.DashboardPage{Layout: h.layout(c, "概览", views.NavDashboard),
		Dashboard: d, Bars: views.Bars(d.Days), Requests: reqs}))
}

// daySales reads one day's sales; finished days come from the cache while fresh.
func (h *Handler) daySales(c echo.Context, from, to time.Time, live bool) (store.DaySales, error) {
	now := h.now()
	if !live {
		h.days.mu.Lock()
		cd, ok := h.days.m[from]
		h.days.mu.Unlock()
		if ok && now.Sub(cd.at) < pastDayTTL {
			return cd.d, nil
		}
	}
	d, err := h.st.DayStats(c.Request().Context(), from, to)
	if err != nil || live {
		return d, err
	}
	h.days.mu.Lock()
	if h.days.m == nil || len(h.days.m) > 64 {
		h.days.m = map[time.Time]cachedDay{}
	}
	h.days.m[from] = cachedDay{d: d, at: now}
	h.days.mu.Unlock()
	return d, nil
}
