package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"
	"golang.org/x/crypto/bcrypt"

	"storefront/shanghai"
	"storefront/store"
)

// The back office's data, written straight into the SQLite file before the shop starts:
// users, a history of orders over bulkDays Beijing days with their items and refunds,
// the operator the scenarios log in as, and the first 20 goods of the catalogue (so the
// shop seeds no demo goods of its own).
const (
	bulkDays = 120
	// bulkTTL is the expiry the bench's shop gives unpaid orders (its ORDER_TTL): the few
	// unpaid orders of the history are recent and not yet due, so no worker touches them.
	bulkTTL = 240 * time.Hour
	// The export covers exportDays whole days holding exactly a tenth of the orders; the
	// order list's date filter covers listDays. Both are day indexes of the history.
	exportFirstDay, exportDays = 60, 12
	listFirstDay, listDays     = 95, 7
)

// bulkData is what the back-office scenarios need to know about the seeded history.
type bulkData struct {
	Orders      int     `json:"orders"`
	Users       int     `json:"users"`
	Refunds     int     `json:"refunds"`
	ToShip      int     `json:"paid_unshipped"`
	SeedSeconds float64 `json:"seed_seconds"`
	DBMB        float64 `json:"db_mb"`
	opEmail     string
	opPassword  string
	// The order list filtered by status=paid and [ListFrom, ListTo] (Beijing dates): its
	// first row is listNewest.
	ListFrom   string `json:"list_from"`
	ListTo     string `json:"list_to"`
	listNewest string
	// Searches: an order number, and a phone whose newest order is phoneNewest.
	searchNo, phone, phoneNewest string
	// The export's range (Beijing dates, both included) and its exact number of orders.
	ExportFrom string `json:"export_from"`
	ExportTo   string `json:"export_to"`
	ExportRows int    `json:"export_rows"`
}

// Word lists for people and addresses.
var (
	surnames = []struct{ zh, py string }{{"王", "wang"}, {"李", "li"}, {"张", "zhang"}, {"刘", "liu"}, {"陈", "chen"},
		{"杨", "yang"}, {"黄", "huang"}, {"赵", "zhao"}, {"吴", "wu"}, {"周", "zhou"}, {"徐", "xu"}, {"孙", "sun"},
		{"马", "ma"}, {"朱", "zhu"}, {"胡", "hu"}, {"郭", "guo"}, {"何", "he"}, {"高", "gao"}, {"林", "lin"}, {"罗", "luo"}}
	givenNames = []struct{ zh, py string }{{"伟", "wei"}, {"芳", "fang"}, {"娜", "na"}, {"秀英", "xiuying"}, {"敏", "min"},
		{"静", "jing"}, {"丽", "li"}, {"强", "qiang"}, {"磊", "lei"}, {"军", "jun"}, {"洋", "yang"}, {"勇", "yong"},
		{"艳", "yan"}, {"杰", "jie"}, {"涛", "tao"}, {"明", "ming"}, {"超", "chao"}, {"欣怡", "xinyi"}, {"子涵", "zihan"},
		{"浩然", "haoran"}, {"一诺", "yinuo"}, {"梓萱", "zixuan"}, {"宇航", "yuhang"}, {"思远", "siyuan"}}
	mailDomains = []string{"example.com", "example.net", "example.org"}
	regions     = []string{"北京市 北京市 朝阳区", "上海市 上海市 浦东新区", "广东省 广州市 天河区", "广东省 深圳市 南山区",
		"浙江省 杭州市 西湖区", "江苏省 南京市 鼓楼区", "四川省 成都市 武侯区", "湖北省 武汉市 洪山区", "陕西省 西安市 雁塔区",
		"山东省 青岛市 市南区", "福建省 厦门市 思明区", "重庆市 重庆市 渝中区", "天津市 天津市 南开区", "湖南省 长沙市 岳麓区"}
	streets  = []string{"中山路", "人民路", "解放路", "建设路", "文三路", "科技园南路", "长江路", "和平街", "新华路", "学府路"}
	carriers = []struct{ name, prefix string }{{"顺丰速运", "SF"}, {"中通快递", "ZT"}, {"圆通速递", "YT"},
		{"韵达快递", "YD"}, {"京东物流", "JD"}, {"EMS", "EM"}}
	refundReasons = []string{"不想要了", "商品与描述不符", "收到商品破损", "尺码不合适", "发货太慢", "重复下单"}
	// Orders by hour of the Beijing day: quiet at night, busiest in the evening.
	hourWeights = [24]float64{1, .6, .4, .3, .3, .4, .8, 1.5, 2.5, 3, 3.2, 3.5, 3.8, 3.2, 3, 3.2, 3.4, 3.6, 3.8, 4.2, 5, 5.5, 4.5, 2.5}
)

type person struct {
	id                 int64
	name, phone, email string
	region, detail     string
}

// preseed prepares the database at dbPath before the shop starts: schema, the first 20
// goods, an operator, and users with n orders in one transaction.
func preseed(ctx context.Context, root, dbPath string, n int, now time.Time) (*bulkData, error) {
	t0 := time.Now()
	schema, err := os.ReadFile(filepath.Join(root, "schema.sql"))
	if err != nil {
		return nil, err
	}
	st, err := store.Open(dbPath, string(schema), nil)
	if err != nil {
		return nil, err
	}
	var goods []store.Goods
	for i := range 20 {
		g, err := st.AddGoods(ctx, catalogueGoods(i))
		if err != nil {
			st.Close()
			return nil, err
		}
		goods = append(goods, g)
	}
	bd := &bulkData{opEmail: "bench-operator@example.com", opPassword: randomPassword()}
	hash, err := bcrypt.GenerateFromPassword([]byte(bd.opPassword), bcrypt.MinCost)
	if err == nil {
		_, _, err = st.SaveOperator(ctx, bd.opEmail, string(hash))
	}
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	if n > 0 {
		// Nobody else has the file open yet: no journal to speak of, no fsync, a big page
		// cache for the seeding connection alone. The shop's own DSN puts WAL back.
		q := url.Values{"_journal_mode": {"MEMORY"}, "_synchronous": {"OFF"}, "_foreign_keys": {"on"},
			"_cache_size": {"-1048576"}, "_txlock": {"immediate"}}
		db, err := sqlx.Open("sqlite3", "file:"+dbPath+"?"+q.Encode())
		if err != nil {
			return nil, err
		}
		db.SetMaxOpenConns(1)
		err = bd.orders(ctx, db, n, goods, now)
		if err == nil {
			_, err = db.ExecContext(ctx, `PRAGMA journal_mode = WAL`)
		}
		if cerr := db.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("seeding %d orders: %w", n, err)
		}
	}
	if fi, err := os.Stat(dbPath); err == nil {
		bd.DBMB = float64(fi.Size()) / (1 << 20)
	}
	bd.SeedSeconds = time.Since(t0).Seconds()
	return bd, nil
}

func randomPassword() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// orders writes the users and n orders (one item each, refunds for the refunded ones),
// over bulkDays Beijing days ending 3 hours before now, so that the orders the later
// seeding and the scenarios make are newer: ids grow with created_at, as the back
// office's date filter expects. Within each day the times follow hourWeights.
func (bd *bulkData) orders(ctx context.Context, db *sqlx.DB, n int, goods []store.Goods, now time.Time) error {
	bj := shanghai.Location()
	rng := mrand.New(mrand.NewPCG(20261122, uint64(n)))
	end := now.Add(-3 * time.Hour)
	endDay := midnightBJ(end)
	day0 := endDay.AddDate(0, 0, -(bulkDays - 1))
	counts := dayCounts(day0, end, n)
	bd.Orders, bd.ExportRows = n, n/10
	bd.ExportFrom = day0.AddDate(0, 0, exportFirstDay).In(bj).Format("2006-01-02")
	bd.ExportTo = day0.AddDate(0, 0, exportFirstDay+exportDays-1).In(bj).Format("2006-01-02")
	bd.ListFrom = day0.AddDate(0, 0, listFirstDay).In(bj).Format("2006-01-02")
	bd.ListTo = day0.AddDate(0, 0, listFirstDay+listDays-1).In(bj).Format("2006-01-02")

	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var maxUser, maxOrder int64
	if err := tx.GetContext(ctx, &maxUser, `SELECT COALESCE(MAX(id), 0) FROM users`); err != nil {
		return err
	}
	if err := tx.GetContext(ctx, &maxOrder, `SELECT COALESCE(MAX(id), 0) FROM orders`); err != nil {
		return err
	}

	// The tables' secondary indexes are dropped for the inserts and made again after them
	// from their own definitions: building an index from all its rows at once is much
	// faster than keeping it up to date row by row. The file ends with the same schema.
	var indexes []string
	if err := tx.SelectContext(ctx, &indexes, `SELECT sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL
		AND tbl_name IN ('users', 'orders', 'order_items', 'refunds')`); err != nil {
		return err
	}
	var names []string
	if err := tx.SelectContext(ctx, &names, `SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL
		AND tbl_name IN ('users', 'orders', 'order_items', 'refunds')`); err != nil {
		return err
	}
	for _, name := range names {
		if _, err := tx.ExecContext(ctx, `DROP INDEX "`+name+`"`); err != nil {
			return err
		}
	}
	// The inserts run without a context: with one, the driver starts a goroutine per
	// statement to watch it (ctx is checked every few thousand orders instead).
	bg := context.Background()

	// Users: one for every ten orders, each with a name, a phone and an address.
	bd.Users = max(100, n/10)
	people := make([]person, bd.Users)
	insU, err := tx.PrepareContext(ctx, `INSERT INTO users (id, email, password_hash, created_at) VALUES (?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer insU.Close()
	for i := range people {
		sn, gn := surnames[rng.IntN(len(surnames))], givenNames[rng.IntN(len(givenNames))]
		p := person{id: maxUser + 1 + int64(i), name: sn.zh + gn.zh, phone: mobile(rng),
			email:  fmt.Sprintf("%s.%s%d@%s", gn.py, sn.py, i+1, mailDomains[i%len(mailDomains)]),
			region: regions[rng.IntN(len(regions))], detail: address(rng)}
		people[i] = p
		joined := day0.Add(-time.Duration(rng.IntN(700*24)) * time.Hour)
		if _, err := insU.ExecContext(bg, p.id, p.email, "$2a$10$bench.user.without.a.password.bench.user.without.a.pass",
			joined.UTC().Format(timeLayout)); err != nil {
			return err
		}
	}

	insO, err := tx.PrepareContext(ctx, `INSERT INTO orders (id, out_trade_no, user_id, subject, total_fen, status,
		trade_no, buyer_id, buyer_logon_id, refunded_fen, created_at, expires_at, paid_at, closed_at, cashier_at,
		reconcile_at, needs_shipping, ship_name, ship_phone, ship_region, ship_detail, fulfilment, carrier, tracking_no,
		shipped_at, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer insO.Close()
	insI, err := tx.PrepareContext(ctx, `INSERT INTO order_items (order_id, goods_id, name, unit_fen, qty) VALUES (?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer insI.Close()
	insR, err := tx.PrepareContext(ctx, `INSERT INTO refunds (order_id, trade_no, out_request_no, amount_fen, reason,
		source, status, created_at, settled_at) VALUES (?, ?, ?, ?, ?, ?, 'succeeded', ?, ?)`)
	if err != nil {
		return err
	}
	defer insR.Close()

	ts := func(t time.Time) any {
		if t.IsZero() {
			return nil
		}
		return t.UTC().Format(timeLayout)
	}
	i := 0
	offs := make([]int64, 0, 4*n/bulkDays+16)
	for d, c := range counts {
		start := day0.AddDate(0, 0, d)
		length := min(24*time.Hour, end.Sub(start))
		offs = offs[:0]
		for len(offs) < c {
			h := rng.IntN(24)
			if rng.Float64()*5.5 >= hourWeights[h] {
				continue
			}
			off := time.Duration(h)*time.Hour + time.Duration(rng.Int64N(int64(time.Hour)))
			if off < length {
				offs = append(offs, int64(off))
			}
		}
		slices.Sort(offs)
		for _, off := range offs {
			if i%4096 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			created := start.Add(time.Duration(off))
			age := end.Sub(created)
			id := maxOrder + 1 + int64(i)
			p := people[int(float64(len(people))*math.Pow(rng.Float64(), 1.3))]
			g := goods[int(float64(len(goods))*math.Pow(rng.Float64(), 1.5))]
			qty := int64(1)
			if r := rng.Float64(); r < 0.03 {
				qty = 3
			} else if r < 0.15 {
				qty = 2
			}
			subject := g.Name
			if qty > 1 {
				subject = fmt.Sprintf("%s ×%d", g.Name, qty)
			}
			total := int64(g.Price) * qty
			// 13 random-looking digits after the Beijing time, unique by construction.
			no := created.In(bj).Format("20060102150405") + fmt.Sprintf("%012d", (int64(i)*7919+104729)%1_000_000_000_000)
			shipName, shipPhone, region, detail := p.name, p.phone, p.region, p.detail
			if rng.Float64() < 0.1 { // a present, or to the office
				sn, gn := surnames[rng.IntN(len(surnames))], givenNames[rng.IntN(len(givenNames))]
				shipName, shipPhone, region, detail = sn.zh+gn.zh, mobile(rng), regions[rng.IntN(len(regions))], address(rng)
			}

			status, fulfilment := store.StatusPaid, store.Unshipped
			var paid, closed, shipped, received, refundAt time.Time
			var refunded int64
			expires := created.Add(30 * time.Minute) // the TTL the shop had then
			var reconcile time.Time
			switch r := rng.Float64(); {
			case r < 0.02:
				status, closed = store.StatusCancelled, created.Add(time.Duration(1+rng.IntN(20))*time.Minute)
			case r < 0.08:
				status, closed = store.StatusClosed, expires
			case r < 0.12 && age < 24*time.Hour: // still payable
				status, expires, reconcile = store.StatusUnpaid, created.Add(bulkTTL), created.Add(bulkTTL)
			}
			var tradeNo, buyerID, buyerLogon, carrier, tracking string
			if status == store.StatusPaid {
				paid = created.Add(time.Duration(10+rng.IntN(290)) * time.Second)
				tradeNo = paid.In(bj).Format("20060102") + fmt.Sprintf("2200%016d", int64(i)+1)
				buyerID = fmt.Sprintf("2088%012d", 102100000000+p.id)
				buyerLogon = p.email[:min(3, len(p.email))] + "***@" + mailDomains[int(p.id)%len(mailDomains)]
				if rng.Float64() >= 0.0005 { // a few are never shipped: lost in the warehouse
					if s := paid.Add(time.Hour + time.Duration(rng.Int64N(int64(29*time.Hour)))); s.Before(end) {
						shipped, fulfilment = s, store.Shipped
						c := carriers[rng.IntN(len(carriers))]
						carrier, tracking = c.name, fmt.Sprintf("%s%012d", c.prefix, 300000000000+int64(i))
						wait := 10 * 24 * time.Hour // received automatically
						if rng.Float64() < 0.4 {
							wait = 24*time.Hour + time.Duration(rng.Int64N(int64(9*24*time.Hour)))
						}
						if r := shipped.Add(wait); r.Before(end) {
							received, fulfilment = r, store.Received
						}
					}
				}
				switch r := rng.Float64(); {
				case age > 8*24*time.Hour && r < 0.03: // refunded in full: before shipping, or returned
					status, refunded = store.StatusRefunded, total
					if fulfilment == store.Received && rng.IntN(2) == 0 {
						refundAt = received.Add(time.Duration(1+rng.IntN(48)) * time.Hour)
					} else {
						fulfilment, shipped, received, carrier, tracking = store.Unshipped, time.Time{}, time.Time{}, "", ""
						refundAt = paid.Add(time.Duration(10+rng.IntN(600)) * time.Minute)
					}
				case fulfilment == store.Received && r < 0.04: // part refunded (a missing piece)
					refunded = max(1, total/3)
					refundAt = received.Add(time.Duration(1+rng.IntN(48)) * time.Hour)
				}
			}
			if _, err := insO.ExecContext(bg, id, no, p.id, subject, total, status, tradeNo, buyerID, buyerLogon, refunded,
				ts(created), ts(expires), ts(paid), ts(closed), ts(created), ts(reconcile), shipName, shipPhone, region,
				detail, fulfilment, carrier, tracking, ts(shipped), ts(received)); err != nil {
				return err
			}
			if _, err := insI.ExecContext(bg, id, g.ID, g.Name, int64(g.Price), qty); err != nil {
				return err
			}
			if refunded > 0 {
				if refundAt.After(end) {
					refundAt = end
				}
				source := "operator"
				if rng.IntN(3) > 0 {
					source = "shopper"
				}
				if _, err := insR.ExecContext(bg, id, tradeNo, no+"R1", refunded, refundReasons[rng.IntN(len(refundReasons))],
					source, ts(refundAt), ts(refundAt.Add(3*time.Second))); err != nil {
					return err
				}
				bd.Refunds++
			}
			if status == store.StatusPaid && fulfilment == store.Unshipped {
				bd.ToShip++
			}
			// What the scenarios look for.
			if status == store.StatusPaid && d >= listFirstDay && d < listFirstDay+listDays {
				bd.listNewest = no // ids grow: the last one seen is the newest
			}
			if i == n/3 {
				bd.searchNo = no
			}
			if i == n/2 {
				bd.phone = shipPhone
			}
			if i >= n/2 && shipPhone == bd.phone {
				bd.phoneNewest = no
			}
			i++
		}
	}
	if i != n {
		return fmt.Errorf("generated %d orders, not %d", i, n)
	}
	for _, q := range indexes {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	// The export's range must hold exactly a tenth of the orders.
	from, _ := time.ParseInLocation("2006-01-02", bd.ExportFrom, bj)
	to, _ := time.ParseInLocation("2006-01-02", bd.ExportTo, bj)
	var got int
	if err := db.GetContext(ctx, &got, `SELECT COUNT(*) FROM orders WHERE created_at >= ? AND created_at < ?`,
		from.UTC().Format(timeLayout), to.AddDate(0, 0, 1).UTC().Format(timeLayout)); err != nil {
		return err
	}
	if got != bd.ExportRows {
		return fmt.Errorf("export range %s..%s holds %d orders, want %d", bd.ExportFrom, bd.ExportTo, got, bd.ExportRows)
	}
	if bd.listNewest == "" || bd.searchNo == "" || bd.phoneNewest == "" {
		return fmt.Errorf("too few orders (%d) for the back-office scenarios", n)
	}
	return nil
}

// dayCounts splits n orders over bulkDays days from day0: a tenth exactly in the export's
// days, the rest over the others, each day by its weight (a slow growth, busier
// weekends, and the last day only up to end).
func dayCounts(day0, end time.Time, n int) []int {
	w := make([]float64, bulkDays)
	var fullDay float64
	for _, hw := range hourWeights {
		fullDay += hw
	}
	for d := range w {
		start := day0.AddDate(0, 0, d)
		w[d] = 0.8 + 0.4*float64(d)/bulkDays
		if wd := start.In(shanghai.Location()).Weekday(); wd == time.Saturday || wd == time.Sunday {
			w[d] *= 1.3
		}
		if length := end.Sub(start); length < 24*time.Hour {
			var covered float64
			for h, hw := range hourWeights {
				covered += hw * math.Max(0, math.Min(1, (length-time.Duration(h)*time.Hour).Hours()))
			}
			w[d] *= covered / fullDay
		}
	}
	inExport := func(d int) bool { return d >= exportFirstDay && d < exportFirstDay+exportDays }
	counts := make([]int, bulkDays)
	split := func(total int, pick func(int) bool) {
		var sum float64
		var days []int
		for d := range w {
			if pick(d) {
				sum += w[d]
				days = append(days, d)
			}
		}
		left := total
		type rem struct {
			d int
			r float64
		}
		var rems []rem
		for _, d := range days {
			exact := float64(total) * w[d] / sum
			counts[d] = int(exact)
			left -= counts[d]
			rems = append(rems, rem{d, exact - float64(counts[d])})
		}
		slices.SortFunc(rems, func(a, b rem) int {
			if a.r > b.r {
				return -1
			}
			if a.r < b.r {
				return 1
			}
			return a.d - b.d
		})
		for k := 0; left > 0; k++ {
			counts[rems[k%len(rems)].d]++
			left--
		}
	}
	split(n/10, inExport)
	split(n-n/10, func(d int) bool { return !inExport(d) })
	return counts
}

// midnightBJ is the start of t's Beijing day.
func midnightBJ(t time.Time) time.Time {
	b := t.In(shanghai.Location())
	return time.Date(b.Year(), b.Month(), b.Day(), 0, 0, 0, 0, shanghai.Location())
}

// mobile is a mainland mobile number: 1, [3-9], nine digits.
func mobile(rng *mrand.Rand) string {
	return fmt.Sprintf("1%d%09d", 3+rng.IntN(7), rng.IntN(1_000_000_000))
}

func address(rng *mrand.Rand) string {
	return fmt.Sprintf("%s%d号%d栋%d室", streets[rng.IntN(len(streets))], 1+rng.IntN(300), 1+rng.IntN(20), 101+rng.IntN(2800))
}
