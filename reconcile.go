package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"storefront/money"
	"storefront/payment"
	"storefront/shanghai"
	"storefront/store"
)

// runReconcile is `go run . reconcile [DATE]`: fetch Alipay's trade bill of DATE
// (yyyy-mm-dd, Beijing; default yesterday), compare it with the shop's books, save and
// print the differences. In local mode the emulator answers, so the shop must be running.
func runReconcile(ctx context.Context, args []string, getenv func(string) string, out io.Writer, log *slog.Logger) error {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	day := time.Now().In(shanghai.Location()).AddDate(0, 0, -1)
	if len(args) > 1 || (len(args) == 1 && strings.HasPrefix(args[0], "-")) {
		return errors.New("usage: go run . reconcile [yyyy-mm-dd] (default: yesterday, Beijing time)")
	}
	if len(args) == 1 {
		if day, err = time.ParseInLocation("2006-01-02", args[0], shanghai.Location()); err != nil {
			return fmt.Errorf("%q is not a date (yyyy-mm-dd)", args[0])
		}
	}
	keys, client, err := alipayClient(cfg, log, out)
	if err != nil {
		return err
	}
	st, err := store.Open(cfg.DB, schemaSQL, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	rec, diffs, err := paymentService(cfg, keys, client, st, log).ReconcileDay(ctx, day)
	if errors.Is(err, payment.ErrBillNotReady) {
		return fmt.Errorf("Alipay has no trade bill for %s yet (bills are made the next morning)", day.Format("2006-01-02"))
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s: %s and %s in Alipay's bill", rec.BillDate, count(rec.Payments, "payment"), count(rec.Refunds, "refund"))
	if len(diffs) == 0 {
		fmt.Fprintln(out, " — clean: the shop's books agree.")
		return nil
	}
	fmt.Fprintf(out, " — %s:\n", count(len(diffs), "difference"))
	for _, d := range diffs {
		fmt.Fprintf(out, "  %-17s %-7s order %s trade %s", d.Kind, d.What, d.OutTradeNo, d.TradeNo)
		if d.OutRequestNo != "" {
			fmt.Fprintf(out, " request %s", d.OutRequestNo)
		}
		if d.ShopFen.Valid {
			fmt.Fprintf(out, " shop ¥%s", money.Fen(d.ShopFen.Int64))
		}
		if d.AlipayFen.Valid {
			fmt.Fprintf(out, " alipay ¥%s", money.Fen(d.AlipayFen.Int64))
		}
		fmt.Fprintf(out, " — %s\n", d.Note)
	}
	return nil
}

// count is "1 payment", "2 payments".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
