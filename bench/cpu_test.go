package main

import (
	"math"
	"testing"
	"time"
)

// A scenario's bill: per request for the shop and the generator, and the machine's
// other work, steal time included and also shown on its own; bills of parts add up.
func TestCPUBill(t *testing.T) {
	at := time.Unix(1_800_000_000, 0)
	a := cpuSample{at: at}
	b := cpuSample{at: at.Add(2 * time.Second), shop: 2 * time.Second, self: 400 * time.Millisecond,
		busy: 3400 * time.Millisecond, idle: 600 * time.Millisecond, steal: 800 * time.Millisecond}
	u := cpuSpent(a, b).use(1000)
	near := func(name string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-9 {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	near("shop µs/req", u.ShopUSPerReq, 2000)
	near("generator µs/req", u.GenUSPerReq, 400)
	near("shop cores", u.ShopCores, 1)
	near("idle %", u.IdlePct, 15)
	near("other cores", u.OtherCores, 0.5) // 3.4 s busy - 2 s shop - 0.4 s bench, over 2 s
	near("steal cores", u.StealCores, 0.4)

	both := cpuSpent(a, b).plus(cpuSpent(a, b)).use(2000)
	near("two parts: shop µs/req", both.ShopUSPerReq, 2000)
	near("two parts: steal cores", both.StealCores, 0.4)
	near("two parts: idle %", both.IdlePct, 15)
}
