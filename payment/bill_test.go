package payment

import (
	"archive/zip"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"golang.org/x/text/encoding/simplifiedchinese"

	"storefront/shanghai"
)

// billZip is a trade bill as Alipay zips it: GBK file names without the UTF-8 flag and
// GBK content, the detail file beside its 汇总 summary.
func billZip(t testing.TB, detail string) []byte {
	t.Helper()
	enc := simplifiedchinese.GBK.NewEncoder()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range []struct{ name, text string }{
		{"20880000000000010156_20261122_业务明细(汇总).csv", "#支付宝业务汇总查询\r\n门店编号,交易订单总笔数\r\n合计,9\r\n"},
		{"20880000000000010156_20261122_业务明细.csv", detail},
	} {
		name, err := enc.String(f.name)
		if err != nil {
			t.Fatal(err)
		}
		body, err := enc.String(f.text)
		if err != nil {
			t.Fatal(err)
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, NonUTF8: true})
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(body))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// The parser finds columns by name whatever their order, skips the "#" framing and
// blank lines, trims the tabs Alipay pads values with, reads refunds' negative amounts
// as positive, and keeps a quoted product name with a comma and a line break in one row.
func TestParseBill(t *testing.T) {
	detail := "#支付宝业务明细查询\r\n#账号：[20880000000000010156]\r\n" +
		"#-----------------------------------------业务明细列表----------------------------------------\r\n" +
		"商品名称,支付宝交易号,商户订单号,业务类型,完成时间,订单金额（元）,商家实收（元）,退款批次号/请求号,备注\r\n" +
		"\"键盘, 红轴\n加长版\",2026112222001400000000000001\t,20261122100000000000000001\t,交易\t,2026-11-22 10:04:30,399.00,389.00,\t,\r\n" +
		"\r\n" +
		"帆布包,2026112222001400000000000001\t,20261122100000000000000001\t,退款\t,2026-11-22 11:00:00,-20.00,-20.00,RF2026112211000000000001\t,备注\r\n" +
		"  \r\n" +
		"#-----------------------------------------业务明细列表结束------------------------------------\r\n" +
		"#交易合计：1笔，商家实收共389.00元，商家优惠共0.00元\r\n#导出时间：[2026年11月23日 09:00:00]\r\n"
	rows, err := ParseBill(billZip(t, detail))
	if err != nil {
		t.Fatal(err)
	}
	want := []BillRow{
		{TradeNo: "2026112222001400000000000001", OutTradeNo: "20261122100000000000000001", Kind: BillPayment, Amount: 39900, Receipt: 38900,
			Done: time.Date(2026, 11, 22, 10, 4, 30, 0, shanghai.Location())},
		{TradeNo: "2026112222001400000000000001", OutTradeNo: "20261122100000000000000001", Kind: BillRefund, Amount: 2000, Receipt: 2000,
			RequestNo: "RF2026112211000000000001", Done: time.Date(2026, 11, 22, 11, 0, 0, 0, shanghai.Location())},
	}
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d: %+v", len(rows), len(want), rows)
	}
	for i := range want {
		if !rows[i].Done.Equal(want[i].Done) {
			t.Errorf("row %d done %v, want %v", i, rows[i].Done, want[i].Done)
		}
		rows[i].Done, want[i].Done = time.Time{}, time.Time{}
		if rows[i] != want[i] {
			t.Errorf("row %d = %+v, want %+v", i, rows[i], want[i])
		}
	}

	header := "支付宝交易号,商户订单号,业务类型,完成时间,订单金额（元）,商家实收（元）,退款批次号/请求号\r\n"
	if rows, err := ParseBill(billZip(t, "#只有框\r\n"+header+"#结束\r\n")); err != nil || len(rows) != 0 {
		t.Errorf("a bill without rows: %v %v", rows, err)
	}
	for name, zipped := range map[string][]byte{
		"not a zip":      []byte("PK nothing"),
		"no header":      billZip(t, "#支付宝业务明细查询\r\n#结束\r\n"),
		"missing column": billZip(t, "支付宝交易号,商户订单号,业务类型\r\n1,2,交易\r\n"),
		"bad amount":     billZip(t, header+"1,2,交易,2026-11-22 10:00:00,3.1.4,1.00,\r\n"),
	} {
		if _, err := ParseBill(zipped); !errors.Is(err, ErrBadBill) {
			t.Errorf("%s: %v, want ErrBadBill", name, err)
		}
	}
	var noDetail bytes.Buffer
	zw := zip.NewWriter(&noDetail)
	w, _ := zw.Create("summary.csv")
	w.Write([]byte(header))
	zw.Close()
	if _, err := ParseBill(noDetail.Bytes()); !errors.Is(err, ErrBadBill) {
		t.Errorf("no detail file: %v, want ErrBadBill", err)
	}
}

// A detail file longer than the cap is an error, not a bill cut short; one of exactly
// the cap's length is read whole.
func TestCappedReader(t *testing.T) {
	if b, err := io.ReadAll(&cappedReader{r: strings.NewReader("abcd"), left: 4}); err != nil || string(b) != "abcd" {
		t.Errorf("at the cap: %q %v", b, err)
	}
	if b, err := io.ReadAll(&cappedReader{r: strings.NewReader("abcde"), left: 4}); err == nil {
		t.Errorf("past the cap: %q, no error", b)
	}
}
