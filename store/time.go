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
	v, err := time.Parse(timeLayout, s)
	if err != nil {
		return fmt.Errorf("store: bad time %q: %w", s, err)
	}
	t.Time = v
	return nil
}
