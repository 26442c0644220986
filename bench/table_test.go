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

// PostgreSQL's p99 target is judged on the paced run where there is one, and a paced
// run that could not keep up with its rate misses.
func TestCompareUsesPacedRun(t *testing.T) {
	mk := func(engine string, rs ...*result) *report { return &report{Engine: engine, Scenarios: rs} }
	name := pgTargets[0]
	for _, c := range []struct {
		what  string
		paced *result
		want  bool
	}{
		{"no paced run: the saturated p99 counts", nil, false},
		{"paced, kept up, fast", &result{Name: name + pacedSuffix, PerSec: 500, P99ms: 20}, true},
		{"paced, fast but fell behind the rate", &result{Name: name + pacedSuffix, PerSec: 300, P99ms: 20}, false},
		{"paced, kept up, slow", &result{Name: name + pacedSuffix, PerSec: 500, P99ms: 80}, false},
	} {
		pg := mk(enginePostgres, &result{Name: name, PerSec: 700, P99ms: 120})
		if c.paced != nil {
			pg.Scenarios = append(pg.Scenarios, c.paced)
		}
		f := &fullReport{Engines: []*report{mk(engineSQLite, &result{Name: name, PerSec: 1000, P99ms: 150}), pg}}
		f.compare()
		if len(f.Comparisons) != 1 || f.Comparisons[0].TargetMet != c.want {
			t.Errorf("%s: %+v, want met=%v", c.what, f.Comparisons, c.want)
		}
	}
}

// PostgreSQL is held to half of SQLite's req/s at the machine's speed: a run whose
// machine was slower during PostgreSQL's scenario expects proportionally less.
func TestPGExpectedFollowsTheMachine(t *testing.T) {
	lite := &result{PerSec: 1000, Machine: 1600}
	if got := pgExpected(lite, &result{Machine: 1300}); got != 406.25 {
		t.Fatalf("slower machine: %v, want 406.25", got)
	}
	if got := pgExpected(lite, &result{}); got != 500 {
		t.Fatalf("no measurement: %v, want 500", got)
	}
}

func TestPartNotes(t *testing.T) {
	if got := withParts("5 made", &result{PartsPerSec: []float64{934.4, 908.6}}); got != "5 made; parts at 934, 909/s" {
		t.Errorf("withParts: %q", got)
	}
	if got := withParts("5 made", &result{}); got != "5 made" {
		t.Errorf("withParts, one part: %q", got)
	}
	if got := besideNote([]float64{1316, 1398, 1408}, "purchases"); got != "1316, 1398, 1408/s before, between and after the 2 parts of the purchases" {
		t.Errorf("besideNote: %q", got)
	}
	if got := besideNote([]float64{1415, 1370}, "purchases"); got != "1415, 1370/s before and after the purchases" {
		t.Errorf("besideNote, one part: %q", got)
	}
}
