package main

import (
	"storefront/money"
	"storefront/store"
)

func demoGoods() []store.Goods {
	stock := func(n int64) *int64 { return &n }
	return []store.Goods{
		{Name: "小米手环", Description: "心率、睡眠、运动记录，一次充电续航两周。", Price: money.Fen(19900), Image: "/static/img/band.svg"},
		{Name: "机械键盘", Description: "87 键茶轴，PBT 键帽，有线/蓝牙双模。", Price: money.Fen(39900), Image: "/static/img/keyboard.svg"},
		{Name: "降噪耳机", Description: "主动降噪，30 小时续航，支持快充。", Price: money.Fen(89900), Image: "/static/img/headphones.svg"},
		{Name: "保温杯", Description: "316 不锈钢内胆，保温 12 小时，500ml。", Price: money.Fen(8990), Image: "/static/img/cup.svg"},
		{Name: "帆布包", Description: "加厚帆布，可装 14 寸笔记本。", Price: money.Fen(5900), Image: "/static/img/bag.svg"},
		{Name: "限量版马克杯", Description: "限量发售，售完即止。", Price: money.Fen(4900), Image: "/static/img/mug.svg", Stock: stock(20)},
	}
}
