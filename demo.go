package main

import (
	"storefront/money"
	"storefront/store"
)

// demoGoods is the catalogue a local or sandbox shop starts with (production starts
// empty): a dozen goods in three categories, two of them virtual, each with its image.
// The first six keep the ids the earlier releases gave them.
func demoGoods() []store.Goods {
	stock := func(n int64) *int64 { return &n }
	const digital, home, virtual = "数码", "家居", "课程与礼品卡"
	return []store.Goods{
		{Name: "小米手环", Description: "心率、睡眠、运动记录，一次充电续航两周。", Price: money.Fen(19900), Image: "/static/img/band.svg", Category: digital},
		{Name: "机械键盘", Description: "87 键茶轴，PBT 键帽，有线/蓝牙双模。", Price: money.Fen(39900), Image: "/static/img/keyboard.svg", Category: digital},
		{Name: "降噪耳机", Description: "主动降噪，30 小时续航，支持快充。", Price: money.Fen(89900), Image: "/static/img/headphones.svg", Category: digital},
		{Name: "保温杯", Description: "316 不锈钢内胆，保温 12 小时，500ml。", Price: money.Fen(8990), Image: "/static/img/cup.svg", Category: home},
		{Name: "帆布包", Description: "加厚帆布，可装 14 寸笔记本。", Price: money.Fen(5900), Image: "/static/img/bag.svg", Category: home},
		{Name: "限量版马克杯", Description: "限量发售，售完即止。", Price: money.Fen(4900), Image: "/static/img/mug.svg", Stock: stock(20), Category: home},
		{Name: "充电宝", Description: "10000mAh，双向快充，可带上飞机。", Price: money.Fen(12900), Image: "/static/img/powerbank.svg", Category: digital},
		{Name: "蓝牙音箱", Description: "防水防尘，户外续航 12 小时，附挂绳。", Price: money.Fen(25900), Image: "/static/img/speaker.svg", Stock: stock(8), Category: digital},
		{Name: "护眼台灯", Description: "无频闪，三档色温，阅读写字不累眼。", Price: money.Fen(15900), Image: "/static/img/lamp.svg", Category: home},
		{Name: "摄影入门课", Description: "12 节视频课，手机也能拍出好照片。付款后在「我的订单」里查看课程。", Price: money.Fen(9900), Image: "/static/img/photo-course.svg", Category: virtual, Virtual: true},
		{Name: "Go 语言入门课", Description: "从安装到写出一个小网站，20 节视频课，附练习。", Price: money.Fen(19900), Image: "/static/img/go-course.svg", Category: virtual, Virtual: true},
		{Name: "小店礼品卡 ¥100", Description: "电子礼品卡，付款后在订单里查看卡号，送人自用都方便。", Price: money.Fen(10000), Image: "/static/img/giftcard.svg", Category: virtual, Virtual: true},
	}
}
