package payment

import (
	"encoding/json"
	"errors"
	"mime"
	"net/url"
	"sort"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/simplifiedchinese"
)

// ErrBadForm reports a body that isn't a form in a charset we can read.
var ErrBadForm = errors.New("unreadable form")

// Form is an Alipay message as received: Raw keeps the bytes as sent, which is what the
// signature covers; Values is the same message decoded to UTF-8.
type Form struct {
	Raw     url.Values
	Values  url.Values
	Charset string
}

// ParseForm reads a form-encoded body honouring its charset. Alipay says utf-8 but
// GBK notifies have been seen in the wild: the signature is over the GBK bytes, so
// verification must use Raw, while the shop reads Values.
func ParseForm(body []byte, contentType string) (Form, error) {
	raw, err := url.ParseQuery(string(body))
	if err != nil {
		return Form{}, ErrBadForm
	}
	return DecodeValues(raw, contentType)
}

// DecodeValues is ParseForm for values already split (a return's query string).
func DecodeValues(raw url.Values, contentType string) (Form, error) {
	cs := strings.ToLower(raw.Get("charset"))
	if cs == "" && contentType != "" {
		cs = charsetOf(contentType)
	}
	f := Form{Raw: raw, Charset: cs}
	switch cs {
	case "", "utf-8", "utf8":
		for k, vs := range raw {
			for _, v := range vs {
				if !utf8.ValidString(k) || !utf8.ValidString(v) {
					return Form{}, ErrBadForm
				}
			}
		}
		f.Values = raw
	case "gbk", "gb2312", "gb18030":
		dec := simplifiedchinese.GB18030.NewDecoder() // a superset of GBK and GB2312
		f.Values = url.Values{}
		for k, vs := range raw {
			dk, err := dec.String(k)
			if err != nil {
				return Form{}, ErrBadForm
			}
			for _, v := range vs {
				dv, err := dec.String(v)
				if err != nil {
					return Form{}, ErrBadForm
				}
				f.Values.Add(dk, dv)
			}
		}
	default:
		return Form{}, ErrBadForm
	}
	return f, nil
}

// rawJSON renders values for the payment-events table: sorted keys, readable text,
// the signature kept (an operator may need to re-verify it).
func rawJSON(v url.Values) string {
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		val := strings.Join(v[k], ",")
		vb, _ := json.Marshal(val)
		b.Write(kb)
		b.WriteByte(':')
		b.Write(vb)
	}
	b.WriteByte('}')
	return b.String()
}

// charsetOf reads the charset of a Content-Type. Alipay's notify says
// "application/x-www-form-urlencoded; text/html; charset=UTF-8", which Go's
// mime.ParseMediaType refuses as an invalid media parameter: the charset is found by
// hand when the strict parse fails.
func charsetOf(contentType string) string {
	if _, params, err := mime.ParseMediaType(contentType); err == nil {
		return strings.ToLower(params["charset"])
	}
	for _, part := range strings.Split(contentType, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), "charset") {
			return strings.ToLower(strings.Trim(strings.TrimSpace(v), `"`))
		}
	}
	return ""
}
