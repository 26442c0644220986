package handlers

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"storefront/money"
	"storefront/payment"
	"storefront/store"
	"storefront/views"
)

// userError is a message meant for the shopper, with its status.
type userError struct {
	status int
	msg    string
}

func (e *userError) Error() string { return e.msg }

// badRequest is a 400 with a readable message.
func badRequest(msg string) error { return &userError{http.StatusBadRequest, msg} }

// conflict is a 409: the request was fine but the order or goods state forbids it.
func conflict(msg string) error { return &userError{http.StatusConflict, msg} }

// errNotFound is the 404 for unknown or malformed ids and other shoppers' orders.
var errNotFound = &userError{http.StatusNotFound, "找不到这个页面，或者它不属于您。"}

// classify maps any error to a status and a Chinese message: the one place where
// errors become HTTP.
func classify(err error) (int, string) {
	var ue *userError
	var he *echo.HTTPError
	var ge *store.GoodsError
	var full *store.CartLineFullError
	switch {
	case errors.As(err, &ue):
		return ue.status, ue.msg
	case errors.As(err, &ge) && errors.Is(err, store.ErrOutOfStock):
		return http.StatusConflict, "「" + ge.Name + "」库存不足，未生成订单。"
	case errors.As(err, &ge):
		return http.StatusConflict, "「" + ge.Name + "」已下架，未生成订单。"
	case errors.Is(err, store.ErrNotFound):
		return errNotFound.status, errNotFound.msg
	case errors.Is(err, store.ErrBadQuantity):
		return http.StatusBadRequest, "数量必须是 1 到 99 之间的整数。"
	case errors.As(err, &full):
		return http.StatusBadRequest, fmt.Sprintf("购物车中每种商品最多 99 件（已有 %d 件），未加入。", full.Have)
	case errors.Is(err, store.ErrAmountTooBig):
		return http.StatusBadRequest, "订单金额超过支付宝单笔限额 " + money.MaxAlipay.Yuan() + "，请减少数量。未生成订单。"
	case errors.Is(err, store.ErrTooManyInCart):
		return http.StatusBadRequest, "购物车里的商品太多了，请先结算或移除一些。"
	case errors.Is(err, store.ErrEmptyOrder):
		return http.StatusBadRequest, "购物车是空的。"
	case errors.Is(err, store.ErrNotUnpaid):
		return http.StatusConflict, "订单当前状态不能进行此操作。"
	case errors.Is(err, payment.ErrBadSignature):
		return http.StatusBadRequest, "验签失败：这不是支付宝签发的结果，订单未做任何改动。"
	case errors.Is(err, payment.ErrNotOurs):
		return http.StatusBadRequest, "这条支付结果属于其他商户，与本店订单无关，订单未做任何改动。"
	case errors.Is(err, payment.ErrGatewayDown):
		return http.StatusServiceUnavailable, "暂时无法连接支付宝，请稍后再试。订单未做任何改动。"
	case errors.As(err, &he):
		switch he.Code {
		case http.StatusNotFound:
			return he.Code, errNotFound.msg
		case http.StatusMethodNotAllowed:
			return he.Code, "不支持这种请求方式。"
		case http.StatusForbidden:
			return he.Code, "页面已过期或来源不明，请刷新后重试。"
		case http.StatusRequestEntityTooLarge:
			return he.Code, "提交的内容太大了。"
		case http.StatusTooManyRequests:
			return he.Code, "尝试次数过多，请稍后再试。"
		case http.StatusBadRequest:
			return he.Code, "请求格式不正确。"
		}
		if he.Code < 500 {
			return he.Code, http.StatusText(he.Code)
		}
	}
	return http.StatusInternalServerError, "服务器开小差了，请稍后再试。我们已记录这个问题。"
}

var titles = map[int]string{
	http.StatusBadRequest:            "请求有误",
	http.StatusForbidden:             "禁止访问",
	http.StatusNotFound:              "页面不存在",
	http.StatusMethodNotAllowed:      "请求方式不支持",
	http.StatusConflict:              "无法完成操作",
	http.StatusRequestEntityTooLarge: "内容过大",
	http.StatusTooManyRequests:       "请求过于频繁",
	http.StatusServiceUnavailable:    "服务暂不可用",
}

// handleError is Echo's HTTPErrorHandler: it logs server faults and renders the
// Chinese error page; a client never sees a stack trace or Go's error text.
func (h *Handler) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status, msg := classify(err)
	if status >= 500 {
		h.log.ErrorContext(c.Request().Context(), "request failed", "path", c.Request().URL.Path, "err", err)
	}
	if status == http.StatusTooManyRequests {
		c.Response().Header().Set("Retry-After", "60")
	}
	title, ok := titles[status]
	if !ok {
		title = "出错了"
	}
	l := h.layout(c, title)
	if rerr := render(c, status, views.Error(views.ErrorPage{Layout: l, Status: status, Message: msg})); rerr != nil {
		c.String(http.StatusInternalServerError, "服务器开小差了")
	}
}
