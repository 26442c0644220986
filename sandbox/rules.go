package sandbox

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Alipay's field rules for page pay, kept apart from HTTP so each is testable alone.

var (
	amountRe     = regexp.MustCompile(`^(0|[1-9][0-9]{0,8})\.([0-9]{2})$`)
	outTradeNoRe = regexp.MustCompile(`^[0-9A-Za-z_]{1,64}$`)
	timeoutRe    = regexp.MustCompile(`^([1-9][0-9]{0,5})([mhd])$`)
)

const maxAmountFen = 100000000 * 100

// parseAmount parses a yuan amount that must have exactly two decimals, no sign and no
// exponent, within Alipay's range 0.01 … 100000000.00, into integer fen.
func parseAmount(s string) (int64, error) {
	m := amountRe.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("金额格式错误：%q（须为两位小数的元）", s)
	}
	yuan, _ := strconv.ParseInt(m[1], 10, 64)
	cents, _ := strconv.ParseInt(m[2], 10, 64)
	fen := yuan*100 + cents
	if fen < 1 || fen > maxAmountFen {
		return 0, fmt.Errorf("金额超出范围：%s（0.01～100000000.00）", s)
	}
	return fen, nil
}

// formatFen renders fen as Alipay's "%d.%02d" yuan string.
func formatFen(fen int64) string { return fmt.Sprintf("%d.%02d", fen/100, fen%100) }

func validOutTradeNo(s string) bool { return outTradeNoRe.MatchString(s) }

// validSubject: required, at most 256 characters (not bytes: subjects are Chinese).
func validSubject(s string) bool {
	return s != "" && utf8.ValidString(s) && utf8.RuneCountInString(s) <= 256
}

// parseAlipayTime parses "yyyy-MM-dd HH:mm:ss" in Beijing time.
func parseAlipayTime(s string) (time.Time, error) {
	return time.ParseInLocation(alipayTime, s, shanghai)
}

// parseTimeoutExpress parses 1m…15d ("1.5h" is refused, as at Alipay). "1c" means "by
// midnight Beijing of the creation day" and is reported with isMidnight.
func parseTimeoutExpress(s string) (d time.Duration, isMidnight bool, err error) {
	if s == "1c" {
		return 0, true, nil
	}
	m := timeoutRe.FindStringSubmatch(s)
	if m == nil {
		return 0, false, fmt.Errorf("timeout_express 格式错误：%q", s)
	}
	n, _ := strconv.Atoi(m[1])
	unit := map[string]time.Duration{"m": time.Minute, "h": time.Hour, "d": 24 * time.Hour}[m[2]]
	d = time.Duration(n) * unit
	if d < time.Minute || d > 15*24*time.Hour {
		return 0, false, fmt.Errorf("timeout_express 超出范围：%q（1m～15d）", s)
	}
	return d, false, nil
}

// validCallbackURL: absolute http(s) with a host and no query string (a query string
// breaks Alipay's signature checks) and no fragment.
func validCallbackURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("不是合法的 URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return errors.New("必须是 http 或 https 的绝对地址")
	}
	if u.Host == "" {
		return errors.New("缺少主机名")
	}
	if u.RawQuery != "" || u.ForceQuery {
		return errors.New("不能带查询参数")
	}
	if u.Fragment != "" || u.RawFragment != "" {
		return errors.New("不能带锚点")
	}
	return nil
}

// validQuitURL: WAP pay's quit_url, where the buyer goes on leaving the cashier: an
// absolute http(s) address with a host and no fragment (a query string is allowed).
func validQuitURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("不是合法的 URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return errors.New("必须是 http 或 https 的绝对地址")
	}
	if u.Host == "" {
		return errors.New("缺少主机名")
	}
	if u.Fragment != "" || u.RawFragment != "" || strings.Contains(s, "#") {
		return errors.New("不能带锚点")
	}
	return nil
}

// signedYuan renders fen as yuan with a sign for negative amounts (bill refund rows).
func signedYuan(fen int64) string {
	if fen < 0 {
		return "-" + formatFen(-fen)
	}
	return formatFen(fen)
}
