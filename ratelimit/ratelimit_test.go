package ratelimit

import (
	"strings"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestBurstThenRefill(t *testing.T) {
	c := &clock{time.Unix(1_800_000_000, 0)}
	tb := New(5, time.Hour, 100, c.now)
	for i := range 5 {
		if !tb.Take("a") {
			t.Fatalf("attempt %d refused within the burst", i+1)
		}
	}
	if tb.Take("a") {
		t.Fatal("sixth attempt allowed")
	}
	if !tb.Take("b") {
		t.Fatal("another key was limited by a's attempts")
	}
	c.t = c.t.Add(12 * time.Minute) // 5 per hour: one back every 12 minutes
	if !tb.Take("a") || tb.Take("a") {
		t.Fatal("refill is not one token per 12 minutes")
	}
	tb.Give("a")
	if !tb.Allowed("a") || !tb.Take("a") {
		t.Fatal("a given-back token is not usable")
	}
	for range 10 {
		tb.Give("a")
	}
	for i := range 6 {
		if ok := tb.Take("a"); ok != (i < 5) {
			t.Fatalf("after giving back more than the burst: take %d = %v", i+1, ok)
		}
	}
}

// However many keys arrive and however long they are, the table holds at most its
// capacity, each key at most 64 bytes, and the keys used most recently survive.
func TestBoundedKeys(t *testing.T) {
	tb := New(3, time.Minute, 1000, nil)
	long := strings.Repeat("x", 60<<10)
	for i := range 5000 {
		tb.Take(long + string(rune('a'+i%26)) + strings.Repeat("y", i))
	}
	if n := tb.Len(); n != 1000 {
		t.Fatalf("table holds %d keys, want its capacity 1000", n)
	}
	for k := range tb.keys {
		if len(k) > maxKeyLen {
			t.Fatalf("key of %d bytes kept", len(k))
		}
	}
	tb.Take("hot")
	tb.Take("hot")
	for i := range 999 {
		tb.Take(string(rune(0x4e00 + i)))
	}
	if tb.Allowed("hot") && tb.Take("hot") && tb.Take("hot") {
		t.Fatal("the recently used key lost its state (had 1 token left, took 2)")
	}
}

func TestClientKey(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1":                "127.0.0.1",
		"::ffff:10.0.0.7":          "10.0.0.7",
		"2001:db8:1:2:3:4:5:6":     "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::1":     "2001:db8:1:2::/64",
		"not an address":           "not an address",
		strings.Repeat("z", 1<<10): Key(strings.Repeat("z", 1<<10)),
	} {
		if got := ClientKey(in); got != want {
			t.Errorf("ClientKey(%.20q) = %q, want %q", in, got, want)
		}
	}
}
