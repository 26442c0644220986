package web

import (
	"time"

	"storefront/ratelimit"
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
type AuthLimits struct {
	client, pair, account, signup *ratelimit.Table
}

// NewAuthLimits returns the limit tables with l (zero fields: the defaults).
func NewAuthLimits(l Limits, now func() time.Time) AuthLimits {
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
		client:  ratelimit.New(l.LoginPerClient, time.Minute, maxLimiterKeys, now),
		pair:    ratelimit.New(l.LoginPerPair, time.Hour, maxLimiterKeys, now),
		account: ratelimit.New(l.LoginPerAccount, time.Hour, maxLimiterKeys, now),
		signup:  ratelimit.New(l.SignupPerClient, time.Hour, maxLimiterKeys, now),
	}
}

// LoginFrom spends one login attempt of client, whatever the account.
func (l AuthLimits) LoginFrom(client string) bool {
	return l.client.Take(ratelimit.ClientKey(client))
}

// LoginTo spends one attempt on account (normalised, at most 254 bytes) from client:
// the pair's token first, the account's only if the pair had one.
func (l AuthLimits) LoginTo(client, account string) bool {
	return l.pair.Take(account+"\x00"+ratelimit.ClientKey(client)) && l.account.Take(account)
}

// LoginSucceeded gives back the account's tokens spent by a login that was right.
func (l AuthLimits) LoginSucceeded(client, account string) {
	l.pair.Give(account + "\x00" + ratelimit.ClientKey(client))
	l.account.Give(account)
}

// AllowSignup spends one account creation for client.
func (l AuthLimits) AllowSignup(client string) bool {
	return l.signup.Take(ratelimit.ClientKey(client))
}
