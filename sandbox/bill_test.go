package sandbox

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/csv"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/smartwalle/alipay/v3"
	"golang.org/x/text/encoding/simplifiedchinese"
)

func gbkDecode(t *testing.T, b []byte) string {
	t.Helper()
	s, err := simplifiedchinese.GBK.NewDecoder().Bytes(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(s)
}

// TestTradeBill: the day's bill, T+1, as Alipay's zip of two GBK CSV files.
func TestTradeBill(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, nil) // 2025-03-01 10:00 Beijing
	tg := newTarget(t, always(200, "success"))
	paidWith(h, tg, "BL1", "12.34")
	h.clock.Advance(time.Minute)
	paidWith(h, tg, "BL2", "20.00", faultDiscount)
	h.clock.Advance(time.Minute)
	if rf, _ := h.client.TradeRefund(ctx, alipay.TradeRefund{OutTradeNo: "BL1", RefundAmount: "2.00", OutRequestNo: "RF_1"}); rf.IsFailure() {
		t.Fatal(rf)
	}
	h.open(trade("BL3", "1.00")) // never paid: not in the bill
	bill := func(typ, date string) *alipay.BillDownloadURLQueryRsp {
		t.Helper()
		r, err := h.client.BillDownloadURLQuery(ctx, alipay.BillDownloadURLQuery{BillType: typ, BillDate: date})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := bill("trade", "2025-03-01"); r.Code != "40004" || r.SubCode != "isp.bill_not_exist" {
		t.Fatalf("today's bill: %+v", r.Error)
	}
	if r := bill("signcustomer", "2025-02-28"); !r.IsFailure() || r.SubCode != "isv.invalid_arguments" {
		t.Fatalf("unsupported bill_type: %+v", r.Error)
	}
	for _, d := range []string{"2025-03", "20250228", ""} {
		if r := bill("trade", d); r.SubCode != "isv.invalid_arguments" {
			t.Fatalf("bill_date %q: %+v", d, r.Error)
		}
	}
	// A payment the next day is not in the first day's bill.
	h.clock.Set(time.Date(2025, 3, 2, 0, 0, 1, 0, shanghai))
	paidWith(h, tg, "BL4", "3.00")
	h.clock.Advance(8 * time.Hour)
	r := bill("trade", "2025-03-01")
	if r.IsFailure() || !strings.HasPrefix(r.BillDownloadURL, h.srv.URL+"/sandbox/bills/") {
		t.Fatalf("bill url: %+v", r)
	}
	resp, err := http.Get(r.BillDownloadURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/zip" {
		t.Fatalf("download: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	zr, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
	if err != nil || len(zr.File) != 2 {
		t.Fatalf("zip: %v", err)
	}
	files := map[string]string{}
	for _, f := range zr.File {
		rc, _ := f.Open()
		b, _ := io.ReadAll(rc)
		rc.Close()
		files[gbkDecode(t, []byte(f.Name))] = gbkDecode(t, b)
	}
	account := testSellerID + "0156"
	detail, ok := files[account+"_20250301_业务明细.csv"]
	summary, ok2 := files[account+"_20250301_业务明细(汇总).csv"]
	if !ok || !ok2 {
		t.Fatalf("file names: %v", keys(files))
	}
	lines := strings.Split(strings.TrimSuffix(detail, "\r\n"), "\r\n")
	want := []string{"#支付宝业务明细查询", "#账号：[" + account + "]", "#起始日期：[2025年03月01日 00:00:00]   终止日期：[2025年03月02日 00:00:00]",
		"#-----------------------------------------业务明细列表----------------------------------------"}
	for i, w := range want {
		if lines[i] != w {
			t.Errorf("line %d %q, want %q", i, lines[i], w)
		}
	}
	header := "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注"
	if lines[4] != header {
		t.Fatalf("header %q", lines[4])
	}
	rows, err := csv.NewReader(strings.NewReader(strings.Join(lines[5:8], "\n"))).ReadAll()
	if err != nil || len(rows) != 3 {
		t.Fatalf("rows: %v %v", rows, err)
	}
	trim := func(s string) string { return strings.TrimSuffix(s, "\t") }
	type row struct{ no, kind, order, receipt, discount, reqNo string }
	got := []row{}
	for _, r := range rows {
		if len(r) != 25 || !strings.HasSuffix(r[0], "\t") || !strings.HasSuffix(r[1], "\t") || len(trim(r[0])) != 28 {
			t.Fatalf("row layout: %q", r)
		}
		got = append(got, row{trim(r[1]), trim(r[2]), r[11], r[12], r[16], trim(r[21])})
	}
	wantRows := []row{{"BL1", "交易", "12.34", "12.34", "0.00", ""}, {"BL2", "交易", "20.00", "15.00", "5.00", ""}, {"BL1", "退款", "-2.00", "-2.00", "0.00", "RF_1"}}
	for i := range wantRows {
		if got[i] != wantRows[i] {
			t.Errorf("row %d: %+v, want %+v", i, got[i], wantRows[i])
		}
	}
	if rows[0][3] != "测试商品" || rows[0][5] != "2025-03-01 10:00:00" {
		t.Errorf("row 0 subject/time: %q %q", rows[0][3], rows[0][5])
	}
	foot := lines[8:]
	wantFoot := []string{"#-----------------------------------------业务明细列表结束------------------------------------",
		"#交易合计：2笔，商家实收共27.34元，商家优惠共5.00元", "#退款合计：1笔，商家实收退款共-2.00元，商家优惠退款共0.00元",
		"#导出时间：[2025年03月02日 08:00:01]"}
	if strings.Join(foot, "\n") != strings.Join(wantFoot, "\n") {
		t.Errorf("footer:\n%s", strings.Join(foot, "\n"))
	}
	if !strings.Contains(summary, "门店编号,门店名称,交易订单总笔数,退款订单总笔数,订单金额（元）,商家实收（元）") ||
		!strings.Contains(summary, "\r\n合计,,2,1,30.34,25.34,0.00,5.00,0.00,0.00,0.00,25.34\r\n") {
		t.Errorf("summary:\n%s", summary)
	}

	// The URL is short-lived; an unknown one is not there.
	h.clock.Advance(5 * time.Minute)
	if resp, _ := http.Get(r.BillDownloadURL); resp.StatusCode != 404 {
		t.Errorf("expired url: %d", resp.StatusCode)
	}
	if resp, _ := http.Get(h.srv.URL + "/sandbox/bills/0123456789abcdef"); resp.StatusCode != 404 {
		t.Errorf("unknown url: %d", resp.StatusCode)
	}
	// A day without trades has an empty bill.
	if r := bill("trade", "2025-02-28"); r.IsFailure() || r.BillDownloadURL == "" {
		t.Errorf("empty day: %+v", r)
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
