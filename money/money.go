// Package money holds the shop's one representation of money: integer fen.
//
// Floats never touch an amount: Alipay amounts are parsed strictly into fen and
// formatted back with "%d.%02d", so a price compared with a notify is compared exactly.
package money

import (
	"errors"
	"strconv"
)

// Fen is an amount of Chinese yuan in fen (1/100 yuan).
type Fen int64

// MaxAlipay is the largest amount Alipay accepts for one trade (100,000,000.00 yuan).
const MaxAlipay Fen = 100_000_000_00

// ErrBadAmount reports an amount string that is not exactly "<yuan>.<2 digits>".
var ErrBadAmount = errors.New("money: amount must be digits with exactly two decimals")

// String formats f as Alipay wants it: "12.34", no currency sign. (Built by hand rather
// than with fmt: it runs for every price on every page.)
func (f Fen) String() string {
	v := int64(f)
	var buf [24]byte
	b := buf[:0]
	if v < 0 {
		b = append(b, '-')
		v = -v
	}
	b = strconv.AppendInt(b, v/100, 10)
	cents := v % 100
	b = append(b, '.', byte('0'+cents/10), byte('0'+cents%10))
	return string(b)
}

// Yuan formats f for shoppers: "¥12.34".
func (f Fen) Yuan() string { return "¥" + f.String() }

// Parse reads an Alipay amount such as "12.34" strictly: ASCII digits, one dot, exactly
// two decimals, no sign, no exponent, no spaces, at most MaxAlipay. "1.5", "1", "01.00"
// with a leading zero are rejected, since Alipay never sends them and a loose parser
// is how "0.010" ends up equal to a one-cent order.
func Parse(s string) (Fen, error) {
	n := len(s)
	if n < 4 || n > 13 || s[n-3] != '.' {
		return 0, ErrBadAmount
	}
	intPart, frac := s[:n-3], s[n-2:]
	if len(intPart) > 1 && intPart[0] == '0' {
		return 0, ErrBadAmount
	}
	var v int64
	for _, part := range []string{intPart, frac} {
		for i := 0; i < len(part); i++ {
			c := part[i]
			if c < '0' || c > '9' {
				return 0, ErrBadAmount
			}
			v = v*10 + int64(c-'0')
		}
	}
	if Fen(v) > MaxAlipay {
		return 0, ErrBadAmount
	}
	return Fen(v), nil
}
