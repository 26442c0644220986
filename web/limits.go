package web

import (
	"context"
	"errors"
	"time"

	"storefront/ratelimit"
	"storefront/store"
)

// maxLimiterKeys bounds each limiter table: what an attacker can make the shop
// remember, whatever keys it invents (about 200 bytes a key at most).
const maxLimiterKeys = 20_000

// Limits are the attempts allowed before 429, each as a burst refilled over a period.
// Zero fields take the defaults in newAuthLimits.
type Limits struct {
	LoginPerClient  int // per client address, per minute: one address trying many accounts
	LoginPerPair    int // per account from one address, per hour
	LoginPerAccount int // per account from all addresses, per hour
	SignupPerClient int // new accounts per client address, per hour
}

// AuthLimits throttles password guessing and account creation without letting anyone
// lock a shopper out.
//
// A failed login costs a token from three buckets, checked in this order: the client
// address's, the (account, address) pair's and the account's. A request refused by one
// bucket touches none after it, and a successful login gives its pair and account
// tokens back. The pair bucket is small (5, then 5 an hour), the account bucket large
// (30, then 30 an hour), so an attacker at one address runs out of its pair tokens long
// before it can drain the account: the shopper at their own address keeps their own
// pair bucket and finds the account bucket nearly full. Guessing one account's
// password from many addresses is held to the account bucket: about 30 an hour.
//
// The account bucket of an account that exists is kept in the database (Allowances),
// so instances sharing it share the 30; an address nobody registered keeps its bucket
// in this instance's memory, so invented addresses write nothing. The client and pair
// buckets are each instance's own: an address's attempts spread over n instances get n
// times theirs, but they only slow one address, and the account bucket still holds.
type AuthLimits struct {
	client, pair, account, signup *ratelimit.Table
	shared                        Allowances
	kind                          store.Accounts
	perAccount                    store.LoginLimit
}

// Allowances is where accounts' login allowances live for every instance: the store.
type Allowances interface {
	TakeLoginAttempt(ctx context.Context, accounts store.Accounts, id int64, l store.LoginLimit) (bool, error)
	GiveLoginAttempt(ctx context.Context, accounts store.Accounts, id int64, l store.LoginLimit) error
}

// NewAuthLimits returns the limits of logins to accounts of kind (zero fields of l: the
// defaults), with existing accounts' allowances kept in shared.
func NewAuthLimits(l Limits, now func() time.Time, shared Allowances, kind store.Accounts) AuthLimits {
	def := func(v, d int) int {
		if v <= 0 {
			return d
		}
		return v
	}
	l.LoginPerClient = def(l.LoginPerClient, 20)
	l.LoginPerPair = def(l.LoginPerPair, 5)
	l.LoginPerAccount = def(l.LoginPerAccount, 30)
	l.SignupPerClient = def(l.SignupPerClient, 5)
	return AuthLimits{
		client:     ratelimit.New(l.LoginPerClient, time.Minute, maxLimiterKeys, now),
		pair:       ratelimit.New(l.LoginPerPair, time.Hour, maxLimiterKeys, now),
		account:    ratelimit.New(l.LoginPerAccount, time.Hour, maxLimiterKeys, now),
		signup:     ratelimit.New(l.SignupPerClient, time.Hour, maxLimiterKeys, now),
		shared:     shared,
		kind:       kind,
		perAccount: store.LoginLimit{Burst: l.LoginPerAccount, Per: time.Hour},
	}
}

// LoginFrom spends one login attempt of client, whatever the account.
func (l AuthLimits) LoginFrom(client string) bool {
	return l.client.Take(ratelimit.ClientKey(client))
}

// LoginTo spends one attempt on account (normalised, at most 254 bytes) from client:
// the pair's token first, the account's only if the pair had one. id is the account's,
// 0 if nobody registered it: only an account that exists has its allowance in the
// database.
func (l AuthLimits) LoginTo(ctx context.Context, client, account string, id int64) (bool, error) {
	if !l.pair.Take(pairKey(client, account)) {
		return false, nil
	}
	if id != 0 {
		ok, err := l.shared.TakeLoginAttempt(ctx, l.kind, id, l.perAccount)
		if !errors.Is(err, store.ErrNotFound) {
			return ok, err
		}
		// Deleted since it was looked up: an account nobody has, as below.
	}
	return l.account.Take(account), nil
}

// LoginSucceeded gives back the tokens a login that was right spent on account (id).
func (l AuthLimits) LoginSucceeded(ctx context.Context, client, account string, id int64) error {
	l.pair.Give(pairKey(client, account))
	if id != 0 {
		if err := l.shared.GiveLoginAttempt(ctx, l.kind, id, l.perAccount); !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	l.account.Give(account) // spent in memory (see LoginTo)
	return nil
}

// pairKey is the pair bucket's key of account from client.
func pairKey(client, account string) string { return account + "\x00" + ratelimit.ClientKey(client) }

// AllowSignup spends one account creation for client.
func (l AuthLimits) AllowSignup(client string) bool {
	return l.signup.Take(ratelimit.ClientKey(client))
}
