package handlers

import (
	"time"

	"github.com/labstack/echo/v4/middleware"
	"golang.org/x/time/rate"
)

// loginLimits rate-limits login attempts per client address and per account, so
// neither one address guessing many accounts nor many addresses guessing one account
// get far.
type loginLimits struct {
	perIP, perAccount *middleware.RateLimiterMemoryStore
}

func newLoginLimits(perIP, perAccount rate.Limit) loginLimits {
	if perIP <= 0 {
		perIP = 20
	}
	if perAccount <= 0 {
		perAccount = 5
	}
	mk := func(perMinute rate.Limit) *middleware.RateLimiterMemoryStore {
		return middleware.NewRateLimiterMemoryStoreWithConfig(middleware.RateLimiterMemoryStoreConfig{
			Rate: perMinute / 60, Burst: int(perMinute), ExpiresIn: 10 * time.Minute,
		})
	}
	return loginLimits{perIP: mk(perIP), perAccount: mk(perAccount)}
}

// allow records one attempt and reports whether it may go ahead.
func (l loginLimits) allow(ip, account string) bool {
	okIP, _ := l.perIP.Allow(ip)
	okAcct, _ := l.perAccount.Allow(account)
	return okIP && okAcct
}
