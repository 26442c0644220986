package payment

import (
	"context"
	"errors"
	"time"

	"storefront/store"
)

// batch bounds one pass of a worker so a backlog is worked off in slices and a
// shutdown never waits for thousands of gateway calls.
const batch = 50

// maxBackoff caps the wait between two reconciliation queries for one order.
const maxBackoff = time.Hour

// maxIdle caps the pause between worker passes while Alipay is unreachable.
const maxIdle = time.Minute

// RunWorkers runs the background work every interval until ctx is done: expiry,
// reconciliation queries, refund settlement, the daily reconciliation, auto-receive and
// session purging. All of it works off the database through leases (see store's
// leases.go), so a restarted shop picks up where it stopped and instances sharing a
// database share the work, each item done by one. While Alipay can't be reached the
// pause doubles (up to maxIdle), so an outage isn't hammered with the same close calls
// every second.
func (s *Service) RunWorkers(ctx context.Context, interval time.Duration) {
	wait := interval
	for {
		// Expiry first: an order past its TTL is closed (or found paid) rather than queried.
		_, errExp := s.ExpireDue(ctx)
		if errExp != nil && ctx.Err() == nil && !errors.Is(errExp, ErrGatewayDown) {
			s.log.Error("expiry worker", "err", errExp)
		}
		if _, err := s.ReconcileDue(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("reconcile worker", "err", err)
		}
		if _, err := s.SettleRefunds(ctx); err != nil && ctx.Err() == nil && !errors.Is(err, ErrGatewayDown) {
			s.log.Error("refund worker", "err", err)
		}
		if err := s.ReconcileYesterday(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("daily reconciliation; will retry", "err", err)
		}
		s.RunJanitors(ctx)
		if errors.Is(errExp, ErrGatewayDown) {
			wait = min(wait*2, maxIdle)
		} else {
			wait = interval
		}
		select {
		case <-ctx.Done():
			s.log.Info("workers stopped")
			return
		case <-s.wake:
		case <-time.After(wait):
		}
	}
}

// Janitor jobs run by one instance for all, at most once per period each: the lease
// is taken for the period and not given back.
const (
	autoReceiveEvery = time.Minute
	purgeEvery       = time.Hour
)

// RunJanitors runs the periodic jobs (auto-receive, session purge) whose lease this
// instance gets; RunWorkers calls it every pass.
func (s *Service) RunJanitors(ctx context.Context) {
	if ok, err := s.st.TakeLease(ctx, store.JobAutoReceive, autoReceiveEvery); err != nil && ctx.Err() == nil {
		s.log.Error("auto-receive lease", "err", err)
	} else if ok {
		if n, err := s.st.AutoReceive(ctx, s.now().Add(-s.cfg.AutoReceive)); err != nil && ctx.Err() == nil {
			s.log.Error("auto-receive worker", "err", err)
		} else if n > 0 {
			s.log.Info("shipped orders received automatically", "count", n)
		}
	}
	if ok, err := s.st.TakeLease(ctx, store.JobPurgeSessions, purgeEvery); err != nil && ctx.Err() == nil {
		s.log.Error("session purge lease", "err", err)
	} else if ok {
		if n, err := s.st.PurgeSessions(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("session purge", "err", err)
		} else if n > 0 {
			s.log.Info("expired sessions purged", "count", n)
		}
	}
}

// workerID is the request id of a worker's events: the worker and the instance it ran
// on, so an order's timeline says which instance of several did what.
func (s *Service) workerID(worker string) string {
	return "worker:" + worker + "@" + s.st.Instance()
}

// releaseRest gives back the leases of the orders a pass did not get to.
func (s *Service) releaseRest(ctx context.Context, os []store.Order) {
	ids := make([]int64, len(os))
	for i, o := range os {
		ids[i] = o.ID
	}
	if err := s.st.ReleaseOrders(context.WithoutCancel(ctx), ids...); err != nil {
		s.log.Warn("releasing order leases; they run out by themselves", "err", err)
	}
}

// ExpireDue closes unpaid orders past their expiry (trade.close first, same race rule
// as Cancel) and returns how many it closed or found paid; the error wraps
// ErrGatewayDown if Alipay could not be reached for some of them.
func (s *Service) ExpireDue(ctx context.Context) (int, error) {
	os, claim, err := s.st.ClaimExpiry(ctx, s.now(), batch)
	if err != nil {
		return 0, err
	}
	n := 0
	var down error
	for i, o := range os {
		if ctx.Err() != nil || !claim.Live() {
			s.releaseRest(ctx, os[i:])
			return n, ctx.Err()
		}
		err := s.Expire(ctx, o, s.workerID("expiry"))
		switch {
		case err == nil:
			n++
			s.log.Info("order expired", "out_trade_no", o.OutTradeNo)
		case errors.Is(err, ErrAlreadyPaid):
			n++
			s.log.Info("expiring order found paid at Alipay", "out_trade_no", o.OutTradeNo)
		case errors.Is(err, store.ErrNotUnpaid):
		default:
			s.log.Warn("expiry failed; will retry", "out_trade_no", o.OutTradeNo, "err", err)
			s.releaseRest(ctx, os[i:i+1])
			if errors.Is(err, ErrGatewayDown) {
				down = err
			}
		}
	}
	return n, down
}

// ReconcileDue queries Alipay about unpaid orders whose notify is overdue and applies
// the answers; it returns how many orders changed state.
func (s *Service) ReconcileDue(ctx context.Context) (int, error) {
	now := s.now()
	os, claim, err := s.st.ClaimReconcile(ctx, now, batch)
	if err != nil {
		return 0, err
	}
	n := 0
	for i, o := range os {
		if ctx.Err() != nil || !claim.Live() {
			s.releaseRest(ctx, os[i:])
			return n, ctx.Err()
		}
		ev, err := s.Reconcile(ctx, o, s.workerID("reconcile"))
		if err != nil {
			s.log.Warn("reconcile query failed; will retry", "out_trade_no", o.OutTradeNo, "err", err)
		} else if ev.Verdict == store.VerdictApplied {
			n++
			s.log.Info("order reconciled", "out_trade_no", o.OutTradeNo, "trade_status", ev.TradeStatus)
			continue
		}
		// Still unpaid (or Alipay unreachable): ask again later, backing off.
		tries := o.ReconcileTries + 1
		wait := s.cfg.ReconcileAfter << min(tries, 10)
		if wait > maxBackoff || wait <= 0 {
			wait = maxBackoff
		}
		if err := s.st.ScheduleReconcile(ctx, o.ID, now.Add(wait), tries); err != nil {
			return n, err
		}
	}
	return n, nil
}
