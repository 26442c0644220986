package web

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"storefront/money"
	"storefront/payment"
	"storefront/store"
)

// userError is a message meant for the shopper, with its status.
type userError struct {
	status int
	msg    string
}

func (e *userError) Error() string { return e.msg }

// BadRequest is a 400 with a readable message.
func BadRequest(msg string) error { return &userError{http.StatusBadRequest, msg} }

// Conflict is a 409: the request was fine but the order or goods state forbids it.
func Conflict(msg string) error { return &userError{http.StatusConflict, msg} }

// ErrNotFound is the 404 for unknown or malformed ids and other shoppers' orders.
var ErrNotFound error = errNotFound

var errNotFound = &userError{http.StatusNotFound, "找不到这个页面，或者它不属于您。"}

// aboutOrder ties an error to one of the shopper's orders, so the error page can name
// it and lead back to it.
type aboutOrder struct {
	err error
	no  string
}

func (e *aboutOrder) Error() string { return e.err.Error() }
func (e *aboutOrder) Unwrap() error { return e.err }

// InOrder wraps err with the order it is about (no error stays no error).
func InOrder(err error, no string) error {
	if err == nil || no == "" {
		return err
	}
	return &aboutOrder{err: err, no: no}
}

// aboutGoods ties an error to goods, so the page leads back to them.
type aboutGoods struct {
	err error
	id  int64
}

func (e *aboutGoods) Error() string { return e.err.Error() }
func (e *aboutGoods) Unwrap() error { return e.err }

// AboutGoods wraps err with the goods it is about (no error stays no error).
func AboutGoods(err error, id int64) error {
	if err == nil {
		return nil
	}
	return &aboutGoods{err: err, id: id}
}

// Problem is what an error page tells its reader: what happened, what to do next, and
// what it is about. The technical reason never appears here; it goes to the log and the
// audit trail.
type Problem struct {
	Status    int
	Title     string
	Msg       string
	Next      string // what to do now, when there is more to say than the links
	OrderNo   string // the order it is about, if any
	GoodsID   int64  // the goods it is about, if any
	Payment   bool   // about a payment result (a failed return): lead to the orders
	RequestID string // for a server fault: the number to quote to support
}

// problem is classify's answer before the page's context is added.
type problem struct {
	status int
	title  string // "" = the status's title
	msg    string
	next   string
}

// classify maps any error to a status and Chinese text: the one place where errors
// become HTTP, for both rooms.
func classify(err error) problem {
	var ue *userError
	var he *echo.HTTPError
	var ge *store.GoodsError
	var full *store.CartLineFullError
	switch {
	case errors.As(err, &ue):
		return problem{status: ue.status, msg: ue.msg}
	case errors.As(err, &ge) && errors.Is(err, store.ErrOutOfStock):
		return problem{status: http.StatusConflict, msg: "「" + ge.Name + "」库存不足，未生成订单。", next: "请减少数量，或看看别的商品。"}
	case errors.As(err, &ge):
		return problem{status: http.StatusConflict, msg: "「" + ge.Name + "」已下架，未生成订单。"}
	case errors.Is(err, store.ErrNotFound):
		return problem{status: errNotFound.status, msg: errNotFound.msg}
	case errors.Is(err, store.ErrBadQuantity):
		return problem{status: http.StatusBadRequest, msg: "数量必须是 1 到 99 之间的整数。"}
	case errors.As(err, &full):
		return problem{status: http.StatusBadRequest, msg: fmt.Sprintf("购物车中每种商品最多 99 件（已有 %d 件），未加入。", full.Have)}
	case errors.Is(err, store.ErrAmountTooBig):
		return problem{status: http.StatusBadRequest, msg: "订单金额超过支付宝单笔限额 " + money.MaxAlipay.Yuan() + "，请减少数量。未生成订单。"}
	case errors.Is(err, store.ErrTooManyInCart):
		return problem{status: http.StatusBadRequest, msg: "购物车里的商品太多了，请先结算或移除一些。"}
	case errors.Is(err, store.ErrEmptyOrder):
		return problem{status: http.StatusBadRequest, msg: "购物车是空的。"}
	case errors.Is(err, store.ErrRefundTooMuch):
		return problem{status: http.StatusConflict, msg: "退款金额超过了这笔付款还能退的金额，没有发起退款。", next: "请查看已有的退款后再试。"}
	case errors.Is(err, store.ErrNotRefundable):
		return problem{status: http.StatusConflict, msg: "这笔订单没有可以退款的付款。"}
	case errors.Is(err, store.ErrRefundWindowOver):
		return problem{status: http.StatusConflict, msg: "这笔交易已超过支付宝的退款期限，支付宝不再受理退款。", next: "如需补偿，请通过其他方式与顾客联系。"}
	case errors.Is(err, store.ErrRequestWaiting):
		return problem{status: http.StatusConflict, msg: "已有一条退款申请在处理中。"}
	case errors.Is(err, store.ErrRequestDecided):
		return problem{status: http.StatusConflict, msg: "这条退款申请已经处理过了。"}
	case errors.Is(err, store.ErrReasonRequired):
		return problem{status: http.StatusBadRequest, msg: "请填写原因或说明。"}
	case errors.Is(err, store.ErrNotShippable):
		return problem{status: http.StatusConflict, msg: "只有已支付、未发货、需要发货的订单可以发货。"}
	case errors.Is(err, store.ErrNotShipped):
		return problem{status: http.StatusConflict, msg: "订单尚未发货，或已确认收货。"}
	case errors.Is(err, store.ErrNeedAddress):
		return problem{status: http.StatusBadRequest, msg: "请先填写收货地址。"}
	case errors.Is(err, store.ErrNoSuchAddress):
		return problem{status: http.StatusBadRequest, msg: "找不到这个收货地址，请重新选择。"}
	case errors.Is(err, store.ErrTooManyAddresses):
		return problem{status: http.StatusBadRequest, msg: "地址簿已满（最多 20 个），请先删除不用的地址。"}
	case errors.Is(err, store.ErrNotUnpaid):
		return problem{status: http.StatusConflict, msg: "订单状态已经变化，不能进行此操作。", next: "请查看订单的最新状态。"}
	case errors.Is(err, payment.ErrBadSignature):
		// A forged return is a 400 page "验签失败" — kept in the title, in plain words.
		return problem{status: http.StatusBadRequest, title: "支付结果未能确认（验签失败）", msg: "这次支付结果无法确认，订单未做任何改动。",
			next: "如果您已在支付宝付款，请勿重复支付：付款结果以支付宝的通知为准，稍后到「我的订单」查看状态。如有疑问，请凭订单号联系客服。"}
	case errors.Is(err, payment.ErrNotOurs):
		return problem{status: http.StatusBadRequest, msg: "这条支付结果属于其他商户，与本店的订单无关，订单未做任何改动。",
			next: "请到「我的订单」查看您的订单状态。如有疑问，请联系客服。"}
	case errors.Is(err, payment.ErrGatewayDown):
		return problem{status: http.StatusServiceUnavailable, msg: "暂时无法连接支付宝，订单未做任何改动。",
			next: "请稍后再试。如果您已经付款，请勿重复支付，付款结果会自动更新到订单上。"}
	case errors.As(err, &he):
		switch he.Code {
		case http.StatusNotFound:
			return problem{status: he.Code, msg: errNotFound.msg}
		case http.StatusMethodNotAllowed:
			return problem{status: he.Code, msg: "不支持这种请求方式。"}
		case http.StatusForbidden:
			return problem{status: he.Code, msg: "页面已过期或来源不明，请刷新后重试。"}
		case http.StatusRequestEntityTooLarge:
			return problem{status: he.Code, msg: "提交的内容太大了。"}
		case http.StatusTooManyRequests:
			return problem{status: he.Code, msg: "尝试次数过多，请稍后再试。"}
		case http.StatusBadRequest:
			return problem{status: he.Code, msg: "请求格式不正确。"}
		}
		if he.Code < 500 {
			return problem{status: he.Code, msg: http.StatusText(he.Code)}
		}
	}
	return problem{status: http.StatusInternalServerError, msg: "服务器开小差了，请稍后再试。我们已记录这个问题。"}
}

var titles = map[int]string{
	http.StatusBadRequest:            "请求有误",
	http.StatusUnauthorized:          "需要登录",
	http.StatusForbidden:             "禁止访问",
	http.StatusNotFound:              "页面不存在",
	http.StatusMethodNotAllowed:      "请求方式不支持",
	http.StatusConflict:              "无法完成操作",
	http.StatusRequestEntityTooLarge: "内容过大",
	http.StatusTooManyRequests:       "请求过于频繁",
	http.StatusServiceUnavailable:    "服务暂不可用",
}

// Classify is the Problem an error is, for pages that show one without failing.
func Classify(err error) Problem {
	p := classify(err)
	title, ok := titles[p.status]
	if !ok {
		title = "出错了"
	}
	if p.title != "" {
		title = p.title
	}
	out := Problem{Status: p.status, Title: title, Msg: p.msg, Next: p.next}
	var ao *aboutOrder
	var ag *aboutGoods
	if errors.As(err, &ao) {
		out.OrderNo = ao.no
	}
	if errors.As(err, &ag) {
		out.GoodsID = ag.id
	}
	out.Payment = errors.Is(err, payment.ErrBadSignature) || errors.Is(err, payment.ErrNotOurs)
	return out
}

// handleError is Echo's HTTPErrorHandler: it logs server faults and renders the room's
// error page; a client never sees a stack trace or Go's error text.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	p := Classify(err)
	if p.Status >= 500 {
		s.log.ErrorContext(c.Request().Context(), "request failed", "path", c.Request().URL.Path, "err", err)
		p.RequestID = RequestID(c.Request().Context())
	}
	if p.Status == http.StatusTooManyRequests {
		c.Response().Header().Set("Retry-After", "60")
	}
	var page ErrorPage
	best := -1
	for _, r := range s.rooms {
		if strings.HasPrefix(c.Request().URL.Path, r.prefix) && len(r.prefix) > best {
			page, best = r.page, len(r.prefix)
		}
	}
	if page == nil {
		c.String(p.Status, p.Msg)
		return
	}
	if rerr := Render(c, p.Status, page(c, p)); rerr != nil {
		c.String(http.StatusInternalServerError, "服务器开小差了")
	}
}
