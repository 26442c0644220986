package store

import (
	"context"
	"sort"
	"time"

	"github.com/jmoiron/sqlx"
)

// Leases share background work between instances. A worker claims a batch of due items
// — orders to expire or query, refunds to settle — by writing its instance name and an
// expiry (LEASE_TTL ahead) on them in one transaction; rows another instance is claiming at that moment
// are skipped (FOR UPDATE SKIP LOCKED on PostgreSQL; SQLite's single writer makes the
// claim atomic anyway). No other instance takes an item while its lease runs; when the
// item is worked it is released (or leaves the due set by changing state), and if its
// instance dies the lease simply runs out and another instance claims it.
//
// A lease can run out under a live but slow worker (a gateway hanging for its whole
// timeout, item after item). The worker therefore stops working a batch once Live says
// too little of the lease is left for one more item, and releases the rest; and every
// state change is guarded in SQL (status = 'unpaid', 'pending'), so even two instances
// working one item would apply it once — the lease saves the second gateway call.

// DefaultLeaseTTL is how long a claim on due work lasts unless SetLeaseTTL says
// otherwise: the longest a dead instance's items wait to be taken over.
const DefaultLeaseTTL = time.Minute

// leaseMargin is the time a worker keeps in hand before its lease runs out: more than
// one item takes (a gateway call's timeout, 15 s, plus the writes around it). A lease
// shorter than twice this keeps half of itself in hand instead.
const leaseMargin = 20 * time.Second

// SetInstance names this process among those sharing the database, for its leases;
// the default is host, pid and a random part. A name that is the same after a restart
// (host and listening address: two live instances can't share both) lets a restarted
// instance take back its predecessor's work at once instead of after LEASE_TTL. Call it
// before any worker starts.
func (s *Store) SetInstance(name string) {
	if name != "" {
		s.instance = name
	}
}

// SetLeaseTTL sets how long this instance's claims on due work last (LEASE_TTL).
func (s *Store) SetLeaseTTL(d time.Duration) {
	if d > 0 {
		s.leaseTTL = d
	}
}

// LeaseTTL is how long this instance's claims last.
func (s *Store) LeaseTTL() time.Duration { return s.leaseTTL }

// Claim is a batch of due items leased to this instance.
type Claim struct {
	// at is when the claim was made on this process's monotonic clock: the lease is
	// stored by the store's clock (a test's may stand still), but whether there is
	// time left to work is real time.
	at  time.Time
	ttl time.Duration
}

// Live reports whether there is still time to work one more item of the claim.
func (c Claim) Live() bool {
	return time.Since(c.at) < c.ttl-min(leaseMargin, c.ttl/2)
}

// claim leases up to limit rows of table matching due (with args), oldest by order
// first, to this instance and returns their ids.
func (s *Store) claim(ctx context.Context, table, due string, args []any, order string, limit int) ([]int64, Claim, error) {
	c := Claim{at: time.Now(), ttl: s.leaseTTL}
	now := s.now()
	var ids []int64
	err := s.inTx(ctx, func(tx txn) error {
		// This instance's own leases are claimable too: a worker gives back what it is
		// done with, so one still held is its predecessor's, killed mid-batch and
		// restarted under the same name (see SetInstance).
		q := `SELECT id FROM ` + table + ` WHERE ` + due + ` AND (lease_until IS NULL OR lease_until <= ? OR lease_owner = ?)
			ORDER BY ` + order + ` LIMIT ?` + s.dl.skipLocked
		if err := tx.SelectContext(ctx, &ids, q, append(args, At(now), s.instance, limit)...); err != nil || len(ids) == 0 {
			return err
		}
		q, qargs, err := sqlx.In(`UPDATE `+table+` SET lease_owner = ?, lease_until = ? WHERE id IN (?)`, s.instance, At(now.Add(s.leaseTTL)), ids)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, q, qargs...)
		return err
	})
	return ids, c, err
}

// release gives back this instance's leases on ids of table before they run out.
func (s *Store) release(ctx context.Context, table string, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	q, args, err := sqlx.In(`UPDATE `+table+` SET lease_owner = '', lease_until = NULL WHERE id IN (?) AND lease_owner = ?`, ids, s.instance)
	if err != nil {
		return err
	}
	_, err = s.wdb.ExecContext(ctx, q, args...)
	return err
}

// claimOrders claims due orders and reads them, in order of due.
func (s *Store) claimOrders(ctx context.Context, due, orderBy string, now time.Time, limit int) ([]Order, Claim, error) {
	ids, c, err := s.claim(ctx, "orders", due, []any{At(now)}, orderBy, limit)
	if err != nil || len(ids) == 0 {
		return nil, c, err
	}
	q, args, err := sqlx.In(`SELECT `+orderColumns+` FROM orders WHERE id IN (?) AND lease_owner = ? ORDER BY `+orderBy, ids, s.instance)
	if err != nil {
		return nil, c, err
	}
	var os []Order
	err = s.db.SelectContext(ctx, &os, q, args...)
	return os, c, err
}

// ClaimExpiry leases up to limit unpaid orders past their expiry at now.
func (s *Store) ClaimExpiry(ctx context.Context, now time.Time, limit int) ([]Order, Claim, error) {
	return s.claimOrders(ctx, `status = 'unpaid' AND expires_at <= ?`, "expires_at, id", now, limit)
}

// ClaimReconcile leases up to limit unpaid orders whose reconciliation query is due.
func (s *Store) ClaimReconcile(ctx context.Context, now time.Time, limit int) ([]Order, Claim, error) {
	return s.claimOrders(ctx, `status = 'unpaid' AND reconcile_at <= ?`, "reconcile_at, id", now, limit)
}

// ReleaseOrders gives back leases on orders that were not worked (or not to the end).
func (s *Store) ReleaseOrders(ctx context.Context, ids ...int64) error {
	return s.release(ctx, "orders", ids)
}

// ClaimRefunds leases up to limit pending refunds whose next attempt is due at now.
func (s *Store) ClaimRefunds(ctx context.Context, now time.Time, limit int) ([]Refund, Claim, error) {
	ids, c, err := s.claim(ctx, "refunds", `status = 'pending' AND next_try_at <= ?`, []any{At(now)}, "next_try_at, id", limit)
	if err != nil || len(ids) == 0 {
		return nil, c, err
	}
	q, args, err := sqlx.In(`SELECT `+refundColumns+` FROM refunds r JOIN orders o ON o.id = r.order_id
		WHERE r.id IN (?) AND r.lease_owner = ?`, ids, s.instance)
	if err != nil {
		return nil, c, err
	}
	var rs []Refund
	if err := s.db.SelectContext(ctx, &rs, q, args...); err != nil {
		return nil, c, err
	}
	sort.Slice(rs, func(i, j int) bool {
		if !rs[i].NextTryAt.Equal(rs[j].NextTryAt.Time) {
			return rs[i].NextTryAt.Before(rs[j].NextTryAt.Time)
		}
		return rs[i].ID < rs[j].ID
	})
	return rs, c, nil
}

// ReleaseRefunds gives back leases on refunds that were not worked.
func (s *Store) ReleaseRefunds(ctx context.Context, ids ...int64) error {
	return s.release(ctx, "refunds", ids)
}

// Names of the jobs one instance at a time does for all.
const (
	JobDailyReconciliation = "daily-reconciliation"
	JobAutoReceive         = "auto-receive"
	JobPurgeSessions       = "purge-sessions"
)

// TakeLease makes this instance the holder of job for ttl if nobody holds it now — this
// instance included: a job whose lease is kept for its period (the janitors) runs once
// per period, not once per pass — and reports whether it does.
func (s *Store) TakeLease(ctx context.Context, job string, ttl time.Duration) (bool, error) {
	now := s.now()
	res, err := s.wdb.ExecContext(ctx, `INSERT INTO leases (name, owner, held_until) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, held_until = excluded.held_until
		WHERE leases.held_until <= ?`, job, s.instance, At(now.Add(ttl)), At(now))
	if err != nil {
		return false, err
	}
	return affected(res) == 1, nil
}

// longAgo is a time before any lease's, in the stored format.
const longAgo = "0001-01-01T00:00:00.000Z"

// ReleaseLease gives up this instance's hold on job, so the next instance to ask gets it.
func (s *Store) ReleaseLease(ctx context.Context, job string) error {
	_, err := s.wdb.ExecContext(ctx, `UPDATE leases SET held_until = ? WHERE name = ? AND owner = ?`, longAgo, job, s.instance)
	return err
}
