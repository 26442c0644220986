package store

import (
	"context"
	"fmt"
	"time"
)

// Accounts names a kind of account that logs in; its value is the table.
type Accounts string

// The kinds of account that log in.
const (
	Shoppers  Accounts = "users"
	Operators Accounts = "operators"
)

// LoginLimit is one account's allowance of login attempts: Burst at once, refilled
// evenly over Per.
type LoginLimit struct {
	Burst int
	Per   time.Duration
}

// interval is how long one attempt takes to come back.
func (l LoginLimit) interval() time.Duration { return l.Per / time.Duration(max(l.Burst, 1)) }

// TakeLoginAttempt spends one login attempt of account id, answering false, with
// nothing spent, when none is left; ErrNotFound if there is no such account.
//
// The allowance is kept with the account, so that every instance sharing the database
// spends from the same one: kept in each instance's memory, the guesses at one password
// from many addresses grew with the number of instances. It is one time, login_full_at:
// when the allowance is whole again (NULL: it is). An attempt moves it one interval
// (Per/Burst) later, and one that finds it more than Per less an interval ahead of now is
// refused: Burst attempts at once, then one an interval (the generic cell rate
// algorithm, a token bucket in one column).
func (s *Store) TakeLoginAttempt(ctx context.Context, accounts Accounts, id int64, l LoginLimit) (bool, error) {
	ok := false
	err := s.changeAllowance(ctx, accounts, id, l, func(full, now time.Time) time.Time {
		ok = full.Sub(now) <= l.Per-l.interval()
		if !ok {
			return full
		}
		return full.Add(l.interval())
	})
	return ok, err
}

// GiveLoginAttempt gives back the attempt a login that was right spent.
func (s *Store) GiveLoginAttempt(ctx context.Context, accounts Accounts, id int64, l LoginLimit) error {
	return s.changeAllowance(ctx, accounts, id, l, func(full, _ time.Time) time.Time { return full.Add(-l.interval()) })
}

// changeAllowance sets the account's login_full_at to what change makes of it (given
// the time, between now and now + l.Per, and now), in one transaction holding the row.
// A time not after now is a whole allowance and is stored as NULL.
func (s *Store) changeAllowance(ctx context.Context, accounts Accounts, id int64, l LoginLimit, change func(full, now time.Time) time.Time) error {
	if accounts != Shoppers && accounts != Operators {
		return fmt.Errorf("store: no accounts %q", accounts)
	}
	table := string(accounts)
	return s.inTx(ctx, func(tx txn) error {
		var was Time
		if err := tx.GetContext(ctx, &was, `SELECT login_full_at FROM `+table+` WHERE id = ?`+s.dl.forUpdate, id); err != nil {
			return notFound(err)
		}
		now := s.now()
		full := was.Time
		if full.Before(now) {
			full = now
		}
		// Further ahead than a whole allowance is something this clock could not have
		// left: another instance's clock runs ahead, or this one stepped back. It counts
		// as spent from now, so the account waits an interval, not the clocks' gap.
		if limit := now.Add(l.Per); full.After(limit) {
			full = limit
		}
		next := change(full, now)
		if !next.After(now) {
			next = time.Time{}
		}
		if next.Equal(was.Time) {
			return nil
		}
		_, err := tx.ExecContext(ctx, `UPDATE `+table+` SET login_full_at = ? WHERE id = ?`, At(next), id)
		return err
	})
}
