package payment

import (
	"archive/zip"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"golang.org/x/text/encoding/simplifiedchinese"

	"storefront/money"
	"storefront/shanghai"
)

// BillRow is one line of Alipay's daily trade bill (业务明细): a payment (交易) or a
// refund (退款).
type BillRow struct {
	TradeNo    string
	OutTradeNo string
	Kind       string    // 交易 or 退款
	Amount     money.Fen // 订单金额 (for a refund: the refunded amount, positive)
	Receipt    money.Fen // 商家实收 (positive)
	RequestNo  string    // 退款批次号/请求号: a refund's out_request_no
	Done       time.Time // 完成时间
}

// Bill kinds.
const (
	BillPayment = "交易"
	BillRefund  = "退款"
)

// ErrBadBill is a bill the shop could not read.
var ErrBadBill = errors.New("unreadable trade bill")

// ParseBill reads Alipay's trade bill: a zip whose detail file (业务明细, not the 汇总
// summary) is GBK-encoded CSV framed by "#" header and footer lines, values often
// padded with a tab. Columns are found by their header, not their position.
func ParseBill(zipped []byte) ([]BillRow, error) {
	zr, err := zip.NewReader(bytes.NewReader(zipped), int64(len(zipped)))
	if err != nil {
		return nil, fmt.Errorf("%w: not a zip: %v", ErrBadBill, err)
	}
	dec := simplifiedchinese.GB18030.NewDecoder()
	var detail *zip.File
	for _, f := range zr.File {
		name := f.Name
		if f.NonUTF8 || !isUTF8(name) {
			if n, err := dec.String(name); err == nil {
				name = n
			}
		}
		if strings.Contains(name, "业务明细") && !strings.Contains(name, "汇总") {
			detail = f
		}
	}
	if detail == nil {
		return nil, fmt.Errorf("%w: no 业务明细 file in the zip", ErrBadBill)
	}
	rc, err := detail.Open()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadBill, err)
	}
	defer rc.Close()
	// Row by row as the file is inflated and decoded, so a large bill is held once, as
	// the zip, besides the rows it yields.
	r := csv.NewReader(dec.Reader(&cappedReader{r: rc, left: maxBillFile}))
	r.FieldsPerRecord, r.LazyQuotes, r.ReuseRecord = -1, true, true
	r.Comment = '#' // the framing lines; an indented one is skipped below
	need := []string{"支付宝交易号", "商户订单号", "业务类型", "订单金额（元）", "商家实收（元）", "完成时间", "退款批次号/请求号"}
	var col map[string]int
	field := func(rec []string, name string) string {
		if i := col[name]; i < len(rec) {
			return strings.TrimSpace(strings.Trim(rec[i], "\t "))
		}
		return ""
	}
	var rows []BillRow
	for n := 0; ; {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadBill, err)
		}
		if first := strings.TrimSpace(rec[0]); (len(rec) == 1 && first == "") || strings.HasPrefix(first, "#") {
			continue // a blank line, or framing that doesn't start the line
		}
		if col == nil {
			col = map[string]int{}
			for i, h := range rec {
				col[strings.TrimSpace(h)] = i
			}
			for _, n := range need {
				if _, ok := col[n]; !ok {
					return nil, fmt.Errorf("%w: no column %s", ErrBadBill, n)
				}
			}
			continue
		}
		n++
		row := BillRow{TradeNo: field(rec, "支付宝交易号"), OutTradeNo: field(rec, "商户订单号"), Kind: field(rec, "业务类型"),
			RequestNo: field(rec, "退款批次号/请求号")}
		if row.Amount, err = billAmount(field(rec, "订单金额（元）")); err != nil {
			return nil, fmt.Errorf("%w: row %d: %v", ErrBadBill, n, err)
		}
		if row.Receipt, err = billAmount(field(rec, "商家实收（元）")); err != nil {
			return nil, fmt.Errorf("%w: row %d: %v", ErrBadBill, n, err)
		}
		row.Done, _ = time.ParseInLocation("2006-01-02 15:04:05", field(rec, "完成时间"), shanghai.Location())
		rows = append(rows, row)
	}
	if col == nil {
		return nil, fmt.Errorf("%w: no header row", ErrBadBill)
	}
	return rows, nil
}

// maxBillFile bounds the detail file as inflated: a zip that claims more is refused
// rather than read on (a zip bomb) or cut short (a bill missing rows would report
// false differences).
const maxBillFile = 256 << 20

// cappedReader reads r and fails once more than left bytes come out of it.
type cappedReader struct {
	r    io.Reader
	left int64
}

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		// Exactly at the cap is fine if nothing follows (io.EOF).
		if n, err := c.r.Read(make([]byte, 1)); n == 0 {
			return 0, err
		}
		return 0, fmt.Errorf("the detail file is larger than %d MiB", maxBillFile>>20)
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

// billAmount reads a bill amount ("199.00", "-10.00") as a positive number of fen.
func billAmount(s string) (money.Fen, error) {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "-"), "+")
	if s == "" {
		return 0, nil
	}
	return money.Parse(s)
}

func isUTF8(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }
