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

// liveTTL is how long the dashboard's live figures (the queues to work and today's
// sales) are reused. Counting them reads every row of the queue and of the day: on
// PostgreSQL, with a million orders and a busy day (tens of thousands paid today, rows
// just changed, which an index alone can't count), about 14 ms of database CPU per
// view, and four operators refreshing at once queued behind each other. Figures a few
// seconds old are what a person at a dashboard reads anyway.
const liveTTL = 5 * time.Second

// liveCache holds the last live figures and when they were read.
type liveCache struct {
	mu    sync.Mutex
	at    time.Time
	d     store.Dashboard // the queues
	today store.DaySales
}

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
	d, live, err := h.liveFigures(c, now, today)
	if err != nil {
		return err
	}
	for i := 13; i >= 1; i-- {
		from := today.AddDate(0, 0, -i)
		day, err := h.daySales(c, from, from.AddDate(0, 0, 1), false)
		if err != nil {
			return err
		}
		d.Days = append(d.Days, day)
	}
	d.Days = append(d.Days, live)
	d.TodayOrders, d.TodaySales = live.Orders, live.Sales
	reqs, err := h.st.WaitingRefundRequests(ctx, 20)
	if err != nil {
		return err
	}
	return web.Render(c, http.StatusOK, views.Dashboard(views.DashboardPage{Layout: h.layout(c, "概览", views.NavDashboard),
		Dashboard: d, Bars: views.Bars(d.Days), Requests: reqs}))
}

// liveFigures are the queues and today's sales, read again when older than liveTTL or
// of another day.
func (h *Handler) liveFigures(c echo.Context, now, today time.Time) (store.Dashboard, store.DaySales, error) {
	h.live.mu.Lock()
	defer h.live.mu.Unlock()
	if age := now.Sub(h.live.at); age >= 0 && age < liveTTL && h.live.today.Day.Equal(today) {
		return h.live.d, h.live.today, nil
	}
	var d store.Dashboard
	var err error
	if d.ToShip, d.Requests, d.PendingRefund, d.Flagged, err = h.st.Counts(c.Request().Context()); err != nil {
		return d, store.DaySales{}, err
	}
	day, err := h.daySales(c, today, today.AddDate(0, 0, 1), true)
	if err != nil {
		return d, day, err
	}
	h.live.at, h.live.d, h.live.today = now, d, day
	return d, day, nil
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
