package main

import "testing"

func TestMergeTargets(t *testing.T) {
	for _, c := range []struct {
		in   []string
		want string
	}{
		{nil, ""},
		{[]string{"p99 <= 20ms"}, "p99 <= 20ms"},
		{[]string{"p99 <= 20ms", "p99 <= 20ms"}, "p99 <= 20ms"},
		{[]string{">= 7677/s (50% healthz), p99 <= 10ms", ">= 4520/s (50% healthz), p99 <= 10ms"},
			">= 7677/s | 4520/s (50% healthz), p99 <= 10ms"},
		{[]string{">= 403/s (70% sign ceiling)", ">= 454/s (70% sign ceiling)"}, ">= 403/s | 454/s (70% sign ceiling)"},
		{[]string{"reported", "reference"}, "reported | reference"},
		// One a prefix of the other: the shorter one's words are all shared.
		{[]string{"all success", "all success and applied"}, "all success | and applied"},
	} {
		if got := mergeTargets(c.in); got != c.want {
			t.Errorf("mergeTargets(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
