package sandbox

import (
	"archive/zip"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/simplifiedchinese"
)

// The daily trade bill (业务明细) as Alipay lays it out: a zip holding two GBK-encoded
// CSV files, <account>_<yyyyMMdd>_业务明细.csv and <account>_<yyyyMMdd>_业务明细(汇总).csv,
// where <account> is the seller's pid followed by 0156, as in the bill's "#账号" line.
// Lines end in CRLF; "#" lines frame the table; many values carry a trailing tab.

var billDetailHeader = []string{"支付宝交易号", "商户订单号", "业务类型", "商品名称", "创建时间", "完成时间",
	"门店编号", "门店名称", "操作员", "终端号", "对方账户", "订单金额（元）", "商家实收（元）", "支付宝红包（元）",
	"集分宝（元）", "支付宝优惠（元）", "商家优惠（元）", "券核销金额（元）", "券名称", "商家红包消费金额（元）",
	"卡消费金额（元）", "退款批次号/请求号", "服务费（元）", "分润（元）", "备注"}

var billSummaryHeader = []string{"门店编号", "门店名称", "交易订单总笔数", "退款订单总笔数", "订单金额（元）",
	"商家实收（元）", "支付宝优惠（元）", "商家优惠（元）", "卡消费金额（元）", "服务费（元）", "分润（元）", "实收净额（元）"}

const (
	billListStart   = "#-----------------------------------------业务明细列表----------------------------------------"
	billListEnd     = "#-----------------------------------------业务明细列表结束------------------------------------"
	billSumStart    = "#-----------------------------------------业务汇总列表----------------------------------------"
	billSumEnd      = "#-----------------------------------------业务汇总列表结束------------------------------------"
	billCNTime      = "2006年01月02日 15:04:05"
	billCounterpart = "*沙箱(san***@alipay.test)"
)

// billAccount is the "#账号" of the bill: the pid and "0156".
func (e *Emulator) billAccount() string { return e.cfg.SellerID + "0156" }

// billRow is one payment or refund line; amounts are fen, negative for refunds.
type billRow struct {
	at                             int64
	tradeNo, outTradeNo, kind      string
	subject, body                  string
	created, done                  int64
	orderFen, receiptFen, mdiscFen int64
	voucherFen                     int64
	voucherName, requestNo         string
}

type billTrade struct {
	tradeRow
	RefundNo  sql.NullString `db:"r_no"`
	RefundFen sql.NullInt64  `db:"r_fen"`
	RefundAt  sql.NullInt64  `db:"r_at"`
}

// billRows are the day's payments (by payment time) and refunds (by refund time).
func (e *Emulator) billRows(ctx context.Context, from, to int64) ([]billRow, error) {
	var pays []tradeRow
	if err := e.db.SelectContext(ctx, &pays, `SELECT * FROM trades WHERE paid_at >= ? AND paid_at < ? ORDER BY paid_at, out_trade_no`, from, to); err != nil {
		return nil, err
	}
	var refs []billTrade
	if err := e.db.SelectContext(ctx, &refs, `SELECT t.*, r.out_request_no AS r_no, r.amount_fen AS r_fen, r.refunded_at AS r_at
		FROM refunds r JOIN trades t ON t.out_trade_no = r.out_trade_no
		WHERE r.refunded_at >= ? AND r.refunded_at < ? ORDER BY r.refunded_at, r.out_request_no`, from, to); err != nil {
		return nil, err
	}
	var rows []billRow
	for _, t := range pays {
		r := billRow{at: t.PaidAt.Int64, tradeNo: t.TradeNo, outTradeNo: t.OutTradeNo, kind: "交易", subject: t.Subject,
			body: t.Body, created: t.CreatedAt, done: t.PaidAt.Int64, orderFen: t.TotalFen, receiptFen: t.receiptFen()}
		if t.DiscountFen > 0 {
			r.mdiscFen, r.voucherFen, r.voucherName = t.DiscountFen, t.DiscountFen, voucherName
		}
		rows = append(rows, r)
	}
	for _, t := range refs {
		rows = append(rows, billRow{at: t.RefundAt.Int64, tradeNo: t.TradeNo, outTradeNo: t.OutTradeNo, kind: "退款",
			subject: t.Subject, body: t.Body, created: t.CreatedAt, done: t.RefundAt.Int64,
			orderFen: -t.RefundFen.Int64, receiptFen: -t.RefundFen.Int64, requestNo: t.RefundNo.String})
	}
	// Payments and refunds interleaved by completion time, as in Alipay's file.
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].at < rows[j].at })
	return rows, nil
}

// csvField quotes a value only when CSV needs it (a comma, quote or line break).
func csvField(s string) string {
	if strings.ContainsAny(s, ",\"\r\n") {
		return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
	}
	return s
}

func csvLine(b *strings.Builder, fields ...string) {
	for i, f := range fields {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(csvField(f))
	}
	b.WriteString("\r\n")
}

// buildBill renders the two CSV files of day (text, before GBK encoding).
func (e *Emulator) buildBill(ctx context.Context, day time.Time) (detail, summary string, err error) {
	from, to := day.UnixMilli(), day.AddDate(0, 0, 1).UnixMilli()
	rows, err := e.billRows(ctx, from, to)
	if err != nil {
		return "", "", err
	}
	period := fmt.Sprintf("#起始日期：[%s]   终止日期：[%s]", day.Format(billCNTime), day.AddDate(0, 0, 1).Format(billCNTime))
	exported := "#导出时间：[" + e.now().In(shanghai).Format(billCNTime) + "]"
	var d strings.Builder
	d.WriteString("#支付宝业务明细查询\r\n")
	d.WriteString("#账号：[" + e.billAccount() + "]\r\n")
	d.WriteString(period + "\r\n")
	d.WriteString(billListStart + "\r\n")
	csvLine(&d, billDetailHeader...)
	var nPay, nRef int
	var payReceipt, payMdisc, refReceipt, orderSum, receiptSum, mdiscSum int64
	tab := func(s string) string { return s + "\t" }
	for _, r := range rows {
		csvLine(&d, tab(r.tradeNo), tab(r.outTradeNo), tab(r.kind), r.subject, bjFormat(r.created), bjFormat(r.done),
			tab(""), tab(""), tab(""), tab(""), tab(billCounterpart),
			signedYuan(r.orderFen), signedYuan(r.receiptFen), "0.00", "0.00", "0.00", signedYuan(r.mdiscFen),
			signedYuan(r.voucherFen), r.voucherName, tab("0.00"), "0.00", tab(r.requestNo), "0.00", "0.00", r.body)
		if r.kind == "交易" {
			nPay++
			payReceipt += r.receiptFen
			payMdisc += r.mdiscFen
		} else {
			nRef++
			refReceipt += r.receiptFen
		}
		orderSum += r.orderFen
		receiptSum += r.receiptFen
		mdiscSum += r.mdiscFen
	}
	d.WriteString(billListEnd + "\r\n")
	fmt.Fprintf(&d, "#交易合计：%d笔，商家实收共%s元，商家优惠共%s元\r\n", nPay, signedYuan(payReceipt), signedYuan(payMdisc))
	fmt.Fprintf(&d, "#退款合计：%d笔，商家实收退款共%s元，商家优惠退款共0.00元\r\n", nRef, signedYuan(refReceipt))
	d.WriteString(exported + "\r\n")

	var s strings.Builder
	s.WriteString("#支付宝业务汇总查询\r\n")
	s.WriteString("#账号：[" + e.billAccount() + "]\r\n")
	s.WriteString(period + "\r\n")
	s.WriteString(billSumStart + "\r\n")
	csvLine(&s, billSummaryHeader...)
	csvLine(&s, "合计", "", fmt.Sprint(nPay), fmt.Sprint(nRef), signedYuan(orderSum), signedYuan(receiptSum),
		"0.00", signedYuan(mdiscSum), "0.00", "0.00", "0.00", signedYuan(receiptSum))
	s.WriteString(billSumEnd + "\r\n")
	s.WriteString(exported + "\r\n")
	return d.String(), s.String(), nil
}

// billZip is the bill of day as Alipay's zip: GBK file names (no UTF-8 flag) and GBK content.
func (e *Emulator) billZip(ctx context.Context, day time.Time) ([]byte, error) {
	detail, summary, err := e.buildBill(ctx, day)
	if err != nil {
		return nil, err
	}
	enc := encoding.ReplaceUnsupported(simplifiedchinese.GBK.NewEncoder())
	prefix := e.billAccount() + "_" + day.Format("20060102") + "_"
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range []struct{ name, text string }{{prefix + "业务明细.csv", detail}, {prefix + "业务明细(汇总).csv", summary}} {
		name, err := enc.String(f.name)
		if err != nil {
			return nil, err
		}
		body, err := enc.String(f.text)
		if err != nil {
			return nil, err
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: e.now(), NonUTF8: true})
		if err != nil {
			return nil, err
		}
		if _, err := w.Write([]byte(body)); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// handleBillDownload serves a bill URL handed out by the bill API while it is valid;
// an unknown or expired one is 404.
func (e *Emulator) handleBillDownload(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var link struct {
		Date      string `db:"bill_date"`
		ExpiresAt int64  `db:"expires_at"`
	}
	err := e.db.GetContext(ctx, &link, `SELECT bill_date, expires_at FROM bill_links WHERE token=?`, r.PathValue("token"))
	if errors.Is(err, sql.ErrNoRows) || (err == nil && link.ExpiresAt <= e.nowMs()) {
		http.Error(w, "账单下载地址不存在或已过期", http.StatusNotFound)
		return
	}
	if err != nil {
		http.Error(w, "store failed", http.StatusInternalServerError)
		return
	}
	day, err := time.ParseInLocation("2006-01-02", link.Date, shanghai)
	if err != nil {
		http.Error(w, "bad bill", http.StatusInternalServerError)
		return
	}
	b, err := e.billZip(ctx, day)
	if err != nil {
		e.log.Error("sandbox: bill", "err", err)
		http.Error(w, "bill failed", http.StatusInternalServerError)
		return
	}
	name := e.billAccount() + "_" + day.Format("20060102") + ".csv.zip"
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"; filename*=UTF-8''`+url.PathEscape(name))
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(b)
}
