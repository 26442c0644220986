package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"storefront/money"
	"storefront/store"
)

// catalogueSize is the number of goods on sale for the large-catalogue scenarios.
const catalogueSize = 5000

// The catalogue's three categories.
var categories = []string{"数码", "家居", "服饰"}

// Word lists for goods names and descriptions. No noun but those in earphones contains
// 耳机, so the search for it finds only the few goods meant to match.
var (
	nouns = [][]string{
		{"充电器", "数据线", "机械键盘", "无线鼠标", "显示器支架", "移动电源", "智能手表", "路由器", "U 盘", "平板保护套",
			"蓝牙音箱", "手机壳", "游戏手柄", "摄像头", "读卡器", "扩展坞"},
		{"保温杯", "护眼台灯", "收纳盒", "抱枕", "纯棉毛巾", "餐具套装", "香薰蜡烛", "四件套", "拖鞋", "晾衣架",
			"马克杯", "砧板", "玻璃花瓶", "地垫", "挂钟", "置物架"},
		{"纯棉T恤", "牛仔裤", "羽绒服", "卫衣", "帆布鞋", "运动袜", "针织开衫", "棒球帽", "羊毛围巾", "衬衫",
			"休闲短裤", "双肩包", "皮带", "防晒衣", "连衣裙", "风衣"},
	}
	earphones  = []string{"蓝牙耳机", "降噪耳机", "头戴式耳机", "运动耳机"}
	adjectives = []string{"轻薄", "经典", "简约", "加厚", "便携", "复古", "北欧风", "升级款", "大容量", "静音", "撞色", "多功能"}
	brands     = []string{"木森", "青禾", "星野", "拾光", "南山", "白鹭", "云朵", "山海", "知行", "小满"}
	features   = []string{"做工扎实", "手感细腻", "出差旅行都方便", "送礼自用两相宜", "七天无理由退换", "全国包邮",
		"耐用不易变形", "经过质检", "颜色与图片一致", "适合日常使用", "支持以旧换新", "附赠收纳袋"}
	images = []string{"/static/img/band.svg", "/static/img/keyboard.svg", "/static/img/cup.svg", "/static/img/bag.svg",
		"/static/img/lamp.svg", "/static/img/mug.svg", "/static/img/powerbank.svg", "/static/img/speaker.svg"}
)

// noMatch is a search that matches no goods of the catalogue.
const noMatch = "量子速读仪"

// catalogueGoods is the i-th goods of the bench catalogue (deterministic): a Chinese name
// and description, one of three categories, a price, and for some a stock. The first 20
// have unlimited stock (purchases never run out). Names of every 200th goods (and the
// descriptions of every 500th) contain 耳机.
func catalogueGoods(i int) store.Goods {
	cat := i % len(categories)
	noun := nouns[cat][(i/3)%len(nouns[cat])]
	if i%200 == 7 {
		cat, noun = 0, earphones[(i/200)%len(earphones)]
	}
	name := fmt.Sprintf("%s %s%s %d", brands[(i/7)%len(brands)], adjectives[(i/11)%len(adjectives)], noun, 100+i)
	desc := fmt.Sprintf("%s，%s，%s。型号 %s-%04d。", noun, features[i%len(features)], features[(i/5+3)%len(features)],
		strings.ToUpper(string(rune('A'+i%26))), i)
	if i%500 == 13 {
		desc += "可搭配耳机使用。"
	}
	yuan := 9 + (i*37)%990
	g := store.Goods{Name: name, Description: desc, Price: money.Fen(yuan*100 + 90), Image: images[i%len(images)],
		Category: categories[cat]}
	if i >= 20 {
		switch i % 10 {
		case 3:
			n := int64((i * 13) % 200) // 0 shows 已售罄
			g.Stock = &n
		case 5:
			n := int64(1 + i%10) // 仅剩 N 件
			g.Stock = &n
		}
	}
	return g
}

// categoryPages is the number of pages of perPage goods of each category at catalogueSize.
func categoryPages(perPage int) []int {
	n := make([]int, len(categories))
	for i := range catalogueSize {
		for c, name := range categories {
			if catalogueGoods(i).Category == name {
				n[c]++
			}
		}
	}
	for c := range n {
		n[c] = (n[c] + perPage - 1) / perPage
	}
	return n
}

// seedCatalogue adds goods, in one transaction, until catalogueSize are on sale, and
// waits until the shop's catalogue (cached in memory, re-read at least every second for
// changes made by another process) shows them all.
func (b *bench) seedCatalogue(ctx context.Context) (added int, err error) {
	db, err := b.openDB()
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var have int
	if err := db.GetContext(ctx, &have, `SELECT COUNT(*) FROM goods WHERE active`); err != nil {
		return 0, err
	}
	if have < catalogueSize {
		if err := insertGoods(ctx, db, have, catalogueSize); err != nil {
			return 0, err
		}
		added = catalogueSize - have
	}
	want := fmt.Sprintf("共 %d 件", catalogueSize)
	c := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(15 * time.Second)
	for {
		body, code, err := get(ctx, c, b.srv.base+"/", "")
		if err == nil && code == 200 && strings.Contains(body, want) {
			return added, nil
		}
		if time.Now().After(deadline) {
			return added, fmt.Errorf("the goods list does not show %q 15s after seeding (status %d, err %v)", want, code, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// insertGoods inserts catalogueGoods(from) … catalogueGoods(to-1) in one transaction.
func insertGoods(ctx context.Context, db *sqlx.DB, from, to int) error {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	// TRUE/FALSE: booleans on PostgreSQL, 1/0 on SQLite, as before.
	ins, err := tx.PrepareContext(ctx, tx.Rebind(`INSERT INTO goods (name, description, price_fen, image, stock, active,
		category, virtual, created_at) VALUES (?, ?, ?, ?, ?, TRUE, ?, FALSE, ?)`))
	if err != nil {
		return err
	}
	defer ins.Close()
	now := time.Now().UTC().Format(timeLayout)
	for i := from; i < to; i++ {
		g := catalogueGoods(i)
		if _, err := ins.ExecContext(ctx, g.Name, g.Description, int64(g.Price), g.Image, g.Stock, g.Category, now); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// get fetches u (loopback only) with an optional Cookie header.
func get(ctx context.Context, c *http.Client, u, cookie string) (string, int, error) {
	if err := mustLoopback(u); err != nil {
		return "", 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", 0, err
	}
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return string(body), resp.StatusCode, err
}
