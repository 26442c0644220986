package store

import (
	"database/sql/driver"
	"fmt"
	"time"
)

// timeLayout is fixed-width UTC so that text comparison in SQL is time order.
const timeLayout = "2006-01-02T15:04:05.000Z"

// Time is a time.Time stored as fixed-width UTC text; the zero Time is SQL NULL.
type Time struct{ time.Time }

// At wraps t for storage.
func At(t time.Time) Time { return Time{t} }

// Value implements driver.Valuer.
func (t Time) Value() (driver.Value, error) {
	if t.IsZero() {
		return nil, nil
	}
	return t.UTC().Format(timeLayout), nil
}

// Scan implements sql.Scanner.
func (t *Time) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		t.Time = time.Time{}
		return nil
	case string:
		return t.parse(v)
	case []byte:
		return t.parse(string(v))
	case time.Time:
		t.Time = v
		return nil
	}
	return fmt.Errorf("store: cannot scan %T into Time", src)
}

func (t *Time) parse(s string) error {
	if v, ok := parseFixed(s); ok {
		t.Time = v
		return nil
	}
	v, err := time.Parse(timeLayout, s)
	if err != nil {
		return fmt.Errorf("store: bad time %q: %w", s, err)
	}
	t.Time = v
	return nil
}

// parseFixed reads timeLayout ("2006-01-02T15:04:05.000Z", what Value writes) without
// time.Parse's general machinery: every listed order has two or three such times, and
// time.Parse was a tenth of reading a page of them. ok is false for anything else
// (time.Parse then decides).
func parseFixed(s string) (_ time.Time, ok bool) {
	if len(s) != len(timeLayout) || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
		s[16] != ':' || s[19] != '.' || s[23] != 'Z' {
		return time.Time{}, false
	}
	num := func(i, n int) int {
		v := 0
		for _, c := range []byte(s[i : i+n]) {
			if c < '0' || c > '9' {
				ok = false
				return 0
			}
			v = v*10 + int(c-'0')
		}
		return v
	}
	ok = true
	y, mo, d, h, mi, sec, ms := num(0, 4), num(5, 2), num(8, 2), num(11, 2), num(14, 2), num(17, 2), num(20, 3)
	if !ok || mo < 1 || mo > 12 || d < 1 || d > daysIn(time.Month(mo), y) || h > 23 || mi > 59 || sec > 59 {
		return time.Time{}, false
	}
	return time.Date(y, time.Month(mo), d, h, mi, sec, ms*int(time.Millisecond), time.UTC), true
}

// daysIn is the number of days of month m in year y.
func daysIn(m time.Month, y int) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}
