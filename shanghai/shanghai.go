// Package shanghai is the shop's one time zone: Alipay speaks Beijing time, and so do
// the pages. It embeds the zone database so a bare machine or container still has it.
package shanghai

import (
	"sync"
	"time"
	_ "time/tzdata" // Asia/Shanghai even where /usr/share/zoneinfo is missing
)

// AlipayLayout is Alipay's timestamp format (timestamp, time_expire, gmt_payment).
const AlipayLayout = "2006-01-02 15:04:05"

var location = sync.OnceValue(func() *time.Location {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		// Beijing has had no DST since 1991; a fixed zone is exact for any date we show.
		return time.FixedZone("CST", 8*3600)
	}
	return loc
})

// Location returns Asia/Shanghai.
func Location() *time.Location { return location() }

// Format renders t as Beijing time in Alipay's layout; the zero time renders as "".
func Format(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(location()).Format(AlipayLayout)
}

// Parse reads an Alipay timestamp as Beijing time.
func Parse(s string) (time.Time, error) {
	return time.ParseInLocation(AlipayLayout, s, location())
}
