package store_test

import (
	"context"
	"testing"
	"time"

	"storefront/money"
	"storefront/store"
	"storefront/store/storetest"
)

// An operator action and its log entry commit together or not at all: with the log
// refusing every entry, no action happens.
func TestActionAndLogCommitTogether(t *testing.T) {
	path := storetest.DSN(t)
	st := open(t, path)
	ctx := context.Background()
	u, _ := st.CreateUser(ctx, "a@example.com", "x")
	stock := int64(5)
	g, _ := st.AddGoods(ctx, store.Goods{Name: "g", Price: 100, Stock: &stock, Virtual: false})
	st.AddAddress(ctx, store.Address{UserID: u.ID, Name: "张三", Phone: "13800138000", Region: "杭州", Detail: "文三路 100 号"})
	o, _, err := st.CreateOrder(ctx, store.NewOrder{OutTradeNo: "LOG1", UserID: u.ID, Lines: []store.Line{{GoodsID: g.ID, Qty: 1}}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.ApplyPaid(ctx, store.Event{OutTradeNo: "LOG1", Source: store.SourceNotify, Raw: "{}"},
		store.Payment{TradeNo: "T1", Amount: money.Fen(100), PaidAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	op, _, _ := st.SaveOperator(ctx, "op@example.com", "h")
	by := store.Actor{OperatorID: op.ID}

	restore := storetest.Open(t, path).FailInserts(t, "operator_actions", "log refused")

	if err := st.ShipBy(ctx, by, "LOG1", "顺丰速运", "SF1"); err == nil {
		t.Fatal("shipped with the log refusing")
	}
	if got, _ := st.OrderByNo(ctx, "LOG1"); got.Fulfilment != store.Unshipped {
		t.Fatalf("the order shipped without its log entry: %s", got.Fulfilment)
	}
	if _, err := st.CreateRefund(ctx, store.NewRefund{OrderNo: "LOG1", Amount: 50, Source: store.RefundByOperator, By: by}); err == nil {
		t.Fatal("a refund was made with the log refusing")
	}
	if rs, _ := st.RefundsForOrder(ctx, o.ID); len(rs) != 0 {
		t.Fatal("a refund row exists without its log entry")
	}
	g.Price = 999
	if _, err := st.SaveGoods(ctx, by, g, store.StockSeen{}); err == nil {
		t.Fatal("goods saved with the log refusing")
	}
	if got, _ := st.AnyGoods(ctx, g.ID); got.Price != 100 {
		t.Fatal("the goods changed without its log entry")
	}
	if err := st.AddNote(ctx, by, "LOG1", "x"); err == nil {
		t.Fatal("a note without a log entry")
	}

	restore()
	if err := st.ShipBy(ctx, by, "LOG1", "顺丰速运", "SF1"); err != nil {
		t.Fatal(err)
	}
	as, _ := st.ActionsForOrder(ctx, o.ID)
	if len(as) != 1 || as[0].Action != store.ActShip || as[0].Operator != "op@example.com" || as[0].Before != "待发货" {
		t.Fatalf("log %+v", as)
	}
}
