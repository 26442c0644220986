package money

import "testing"

func TestParseAndFormat(t *testing.T) {
	good := map[string]Fen{"0.01": 1, "12.34": 1234, "0.00": 0, "100000000.00": MaxAlipay, "3999.00": 399900}
	for s, want := range good {
		got, err := Parse(s)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %d, %v; want %d", s, got, err, want)
		}
		if got.String() != s {
			t.Errorf("Fen(%d).String() = %q; want %q", got, got.String(), s)
		}
	}
	bad := []string{"", "1", "1.5", "1.500", "0.010", "-1.00", "+1.00", "1e2", " 1.00", "1.00 ", "01.00",
		"1,00", "100000000.01", "1.0a", "１.００", ".50", "1..00", "999999999999.99"}
	for _, s := range bad {
		if got, err := Parse(s); err == nil {
			t.Errorf("Parse(%q) = %d; want error", s, got)
		}
	}
}

func TestYuan(t *testing.T) {
	if got := Fen(123456).Yuan(); got != "¥1234.56" {
		t.Fatalf("Yuan = %q", got)
	}
	if got := Fen(5).Yuan(); got != "¥0.05" {
		t.Fatalf("Yuan = %q", got)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"0.01", "12.34", "1.5", "-1.00", "100000000.00", "1e2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := Parse(s)
		if err != nil {
			return
		}
		if v < 0 || v > MaxAlipay {
			t.Fatalf("Parse(%q) = %d out of range", s, v)
		}
		// Whatever parses must print back to the very same string: no two spellings
		// of one amount, so a notify can't match an order by a looser reading.
		if v.String() != s {
			t.Fatalf("Parse(%q) = %d prints as %q", s, v, v.String())
		}
	})
}

func TestStringEdges(t *testing.T) {
	for f, want := range map[Fen]string{0: "0.00", 1: "0.01", 10: "0.10", 100: "1.00", -5: "-0.05", -12345: "-123.45", MaxAlipay: "100000000.00"} {
		if got := f.String(); got != want {
			t.Errorf("Fen(%d) = %q, want %q", f, got, want)
		}
	}
}
