package sandbox

import (
	"context"
	"strings"
)

// Faults injected on demand, each for the next event of one trade it applies to. Several
// may be pending at once; each is consumed by its own kind of event.
const (
	// The next notify delivery.
	faultDrop        = "drop"         // not sent (counted as a failed attempt)
	faultDuplicate   = "duplicate"    // sent twice at once
	faultDelay       = "delay"        // held back to the next step of the schedule
	faultForge       = "forge"        // signed with a key that is not Alipay's
	faultWrongAmount = "wrong_amount" // total_amount one fen more, validly signed
	faultEmptyParam  = "empty_param"  // an empty field rides along, signed by Alipay's rule
	faultGBK         = "gbk"          // GBK-encoded: charset=gbk, GBK bytes, signed over them
	faultV2Sign      = "v2_sign"      // sign_type inside the signed content (also the next return URL)

	// The payment of the trade.
	faultDiscount = "discount" // a coupon: receipt_amount below total_amount
	faultOpenID   = "open_id"  // buyer_open_id instead of buyer_id / buyer_user_id

	// The next server API answer about the trade that contains a "/".
	faultEscapedSlash = "escaped_slash"

	// The next alipay.trade.refund call for the trade.
	faultRefundTimeout         = "refund_timeout"           // refund made, answer withheld
	faultRefundSystemError     = "refund_system_error"      // ACQ.SYSTEM_ERROR, refund not made
	faultRefundSystemErrorMade = "refund_system_error_made" // ACQ.SYSTEM_ERROR, refund made
)

// allFaults is every valid fault, in the order the console shows them.
var allFaults = []string{
	faultDrop, faultDuplicate, faultDelay, faultForge, faultWrongAmount,
	faultEmptyParam, faultGBK, faultV2Sign,
	faultDiscount, faultOpenID, faultEscapedSlash,
	faultRefundTimeout, faultRefundSystemError, faultRefundSystemErrorMade,
}

// faultLabels are the console's Chinese names.
var faultLabels = map[string]string{
	faultDrop:                  "丢弃下一次通知",
	faultDuplicate:             "下一次通知重复发送",
	faultDelay:                 "下一次通知延后",
	faultForge:                 "下一次通知伪造签名",
	faultWrongAmount:           "下一次通知金额不符",
	faultEmptyParam:            "下一次通知带空参数",
	faultGBK:                   "下一次通知用 GBK 编码",
	faultV2Sign:                "下一次通知与同步返回用 V2 验签规则",
	faultDiscount:              "付款时使用优惠券",
	faultOpenID:                "付款买家只给 buyer_open_id",
	faultEscapedSlash:          "下一次接口应答转义斜杠",
	faultRefundTimeout:         "下一次退款应答超时（已退）",
	faultRefundSystemError:     "下一次退款系统错误（未退）",
	faultRefundSystemErrorMade: "下一次退款系统错误（已退）",
}

func validFault(f string) bool {
	for _, x := range allFaults {
		if x == f {
			return true
		}
	}
	return false
}

// transportFaults keep a notify from being sent at all; contentFaults change what is
// sent and combine with each other.
var (
	transportFaults = []string{faultDrop, faultDelay}
	contentFaults   = []string{faultDuplicate, faultForge, faultWrongAmount, faultEmptyParam, faultGBK, faultV2Sign}
)

func (e *Emulator) addFault(ctx context.Context, outTradeNo, fault string) error {
	_, err := e.db.ExecContext(ctx, `INSERT INTO faults (out_trade_no, fault, created_at) VALUES (?,?,?)`,
		outTradeNo, fault, e.nowMs())
	return err
}

func pendingFaults(ctx context.Context, q queryer, outTradeNo string) ([]faultRow, error) {
	var fs []faultRow
	err := q.SelectContext(ctx, &fs, `SELECT * FROM faults WHERE out_trade_no=? ORDER BY id`, outTradeNo)
	return fs, err
}

func hasFault(fs []faultRow, name string) bool {
	for _, f := range fs {
		if f.Fault == name {
			return true
		}
	}
	return false
}

// takeFaults consumes, in one step, the oldest pending fault of each named kind and
// returns the names it took.
func takeFaults(ctx context.Context, q queryer, outTradeNo string, kinds ...string) ([]string, error) {
	fs, err := pendingFaults(ctx, q, outTradeNo)
	if err != nil {
		return nil, err
	}
	var took []string
	for _, k := range kinds {
		for _, f := range fs {
			if f.Fault != k {
				continue
			}
			if _, err := q.ExecContext(ctx, `DELETE FROM faults WHERE id=?`, f.ID); err != nil {
				return nil, err
			}
			took = append(took, k)
			break
		}
	}
	return took, nil
}

// takeFault consumes one pending fault of the named kind, reporting whether there was one.
func (e *Emulator) takeFault(ctx context.Context, outTradeNo, kind string) (bool, error) {
	res, err := e.db.ExecContext(ctx, `DELETE FROM faults WHERE id = (SELECT MIN(id) FROM faults WHERE out_trade_no=? AND fault=?)`,
		outTradeNo, kind)
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// takeDeliveryFaults decides the faults of one delivery: a pending drop or delay (the
// older one) alone, since nothing is sent; otherwise every pending content fault, one
// of each kind, all applied to the same notify.
func (e *Emulator) takeDeliveryFaults(ctx context.Context, outTradeNo string) ([]string, error) {
	tx, err := e.db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	fs, err := pendingFaults(ctx, tx, outTradeNo)
	if err != nil {
		return nil, err
	}
	var took []string
	for _, f := range fs {
		if contains(transportFaults, f.Fault) {
			took, err = takeFaults(ctx, tx, outTradeNo, f.Fault)
			break
		}
	}
	if took == nil && err == nil {
		took, err = takeFaults(ctx, tx, outTradeNo, contentFaults...)
	}
	if err != nil {
		return nil, err
	}
	return took, tx.Commit()
}

func faultNames(fs []string) string { return strings.Join(fs, ",") }
