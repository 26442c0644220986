package store

import (
	"math/rand/v2"
	"testing"
	"time"
)

// The fast path reads what Value writes exactly as time.Parse does, and leaves
// everything else to time.Parse.
func TestTimeScanMatchesTimeParse(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 100_000 {
		want := time.UnixMilli(r.Int64N(8_000_000_000_000) - 1_000_000_000_000).UTC()
		s, _ := At(want).Value()
		var got Time
		if err := got.Scan(s); err != nil || !got.Equal(want) || got.Location() != time.UTC {
			t.Fatalf("%s: got %v, %v", s, got.Time, err)
		}
	}
	for _, s := range []string{
		"2026-02-29T00:00:00.000Z", // not a leap year
		"2026-13-01T00:00:00.000Z",
		"2026-12-01T24:00:00.000Z",
		"2026-12-01T12:60:00.000Z",
		"2026-12-01T12:00:61.000Z",
		"2026-12-0xT12:00:00.000Z",
		"2026-12-01 12:00:00.000Z",
		"2026-12-01T12:00:00.000+",
		"+026-12-01T12:00:00.000Z",
	} {
		var got Time
		_, perr := time.Parse(timeLayout, s)
		if err := got.Scan(s); (err == nil) != (perr == nil) {
			t.Errorf("%q: Scan says %v, time.Parse %v", s, err, perr)
		}
	}
	var leap Time
	if err := leap.Scan("2024-02-29T23:59:59.999Z"); err != nil || leap.Nanosecond() != 999_000_000 {
		t.Fatalf("leap day: %v %v", leap.Time, err)
	}
}
