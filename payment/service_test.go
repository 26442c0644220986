package payment

import (
	"context"
	"testing"

	"github.com/smartwalle/alipay/v3"

	"storefront/store"
)

// queryGateway answers every trade.query with rsp; the rest is the real client.
type queryGateway struct {
	Gateway
	rsp alipay.TradeQueryRsp
}

func (g queryGateway) TradeQuery(context.Context, alipay.TradeQuery) (*alipay.TradeQueryRsp, error) {
	r := g.rsp
	return &r, nil
}

// A signed query answer is only about the trade it names: a TRADE_SUCCESS for another
// out_trade_no (a mixed-up response, a proxy cache) must not pay the order asked about.
func TestReconcileIgnoresAnAnswerAboutAnotherTrade(t *testing.T) {
	fs := newFuzzShop(t)
	o := fs.orders[0]
	answer := alipay.TradeQueryRsp{OutTradeNo: fs.orders[1].OutTradeNo, TradeNo: "2026112222001400000000000009",
		TradeStatus: alipay.TradeStatusSuccess, TotalAmount: o.Total.String()}
	answer.Code = alipay.CodeSuccess
	svc := NewService(queryGateway{Gateway: fs.svc.gw, rsp: answer}, fs.st, fs.svc.cfg, nil, discardLogger())
	ev, err := svc.Reconcile(context.Background(), o, "test")
	if err != nil {
		t.Fatal(err)
	}
	if ev.Verdict != store.VerdictRejected {
		t.Fatalf("verdict %s, want rejected", ev.Verdict)
	}
	for _, no := range []string{o.OutTradeNo, fs.orders[1].OutTradeNo} {
		if got, _ := fs.st.OrderByNo(context.Background(), no); got.Status != store.StatusUnpaid {
			t.Fatalf("order %s became %s", no, got.Status)
		}
	}
	// The same answer about the right trade applies.
	answer.OutTradeNo = o.OutTradeNo
	svc = NewService(queryGateway{Gateway: fs.svc.gw, rsp: answer}, fs.st, fs.svc.cfg, nil, discardLogger())
	if ev, err := svc.Reconcile(context.Background(), o, "test"); err != nil || ev.Verdict != store.VerdictApplied {
		t.Fatalf("right trade: %s %v", ev.Verdict, err)
	}
}
