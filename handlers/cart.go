package handlers

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"storefront/money"
	"storefront/store"
	"storefront/views"
	"storefront/web"
)

// A visitor's cart lives in the session cookie as "goods:qty:seen_fen,…" until they log
// in or sign up, when it joins their account's cart (store.MergeCart).
const visitorCartKey = "cart"

// maxVisitorLines bounds the visitor's cart, which rides in a cookie.
const maxVisitorLines = 30

type visitorLine struct {
	goodsID, qty int64
	seen         money.Fen
}

func visitorCart(c echo.Context) []visitorLine {
	raw, _ := session(c).Values[visitorCartKey].(string)
	var ls []visitorLine
	for _, part := range strings.Split(raw, ",") {
		f := strings.Split(part, ":")
		if len(f) != 3 {
			continue
		}
		id, e1 := strconv.ParseInt(f[0], 10, 64)
		q, e2 := strconv.ParseInt(f[1], 10, 64)
		seen, e3 := strconv.ParseInt(f[2], 10, 64)
		if e1 == nil && e2 == nil && e3 == nil && id > 0 && q >= 1 && q <= 99 && len(ls) < maxVisitorLines {
			ls = append(ls, visitorLine{id, q, money.Fen(seen)})
		}
	}
	return ls
}

func (h *Handler) saveVisitorCart(c echo.Context, ls []visitorLine) error {
	parts := make([]string, len(ls))
	for i, l := range ls {
		parts[i] = strconv.FormatInt(l.goodsID, 10) + ":" + strconv.FormatInt(l.qty, 10) + ":" + strconv.FormatInt(int64(l.seen), 10)
	}
	s := session(c)
	if len(parts) == 0 {
		delete(s.Values, visitorCartKey)
	} else {
		s.Values[visitorCartKey] = strings.Join(parts, ",")
	}
	return h.saveSession(c, s)
}

// cartCount is the number of pieces in the cart of whoever is asking, for the nav badge.
func (h *Handler) cartCount(c echo.Context) int64 {
	if u, ok := currentUser(c); ok {
		n, err := h.st.CartCount(c.Request().Context(), u.ID)
		if err != nil {
			h.log.WarnContext(c.Request().Context(), "cart count", "err", err)
		}
		return n
	}
	var n int64
	for _, l := range visitorCart(c) {
		n += l.qty
	}
	return n
}

// cartLines is the cart of whoever is asking, with the goods' current state.
func (h *Handler) cartLines(c echo.Context) ([]store.CartLine, error) {
	if u, ok := currentUser(c); ok {
		return h.st.Cart(c.Request().Context(), u.ID)
	}
	vs := visitorCart(c)
	ids := make([]int64, len(vs))
	for i, v := range vs {
		ids[i] = v.goodsID
	}
	gs, err := h.st.GoodsOnSale(c.Request().Context(), ids)
	if err != nil {
		return nil, err
	}
	ls := make([]store.CartLine, 0, len(vs))
	for _, v := range vs {
		l := store.CartLine{GoodsID: v.goodsID, Qty: v.qty, SeenFen: v.seen, Name: "已下架的商品"}
		if g, ok := gs[v.goodsID]; ok {
			l.Name, l.Image, l.Price, l.Active, l.Stock = g.Name, g.Image, g.Price, true, g.Stock
		}
		ls = append(ls, l)
	}
	return ls, nil
}

func (h *Handler) cart(c echo.Context) error {
	lines, err := h.cartLines(c)
	if err != nil {
		return err
	}
	// The layout is built first: it takes the flash, which the cart page may be showing
	// after a checkout refused for a price change.
	p := views.CartPage{Layout: h.layout(c, "购物车"), Lines: lines, Ready: len(lines) > 0}
	_, p.LoggedIn = currentUser(c)
	for _, l := range lines {
		if l.Active {
			p.Total += l.Subtotal()
		}
		if !l.Active || (l.Stock != nil && *l.Stock < l.Qty) {
			p.Ready = false
		}
	}
	if p.Total > money.MaxAlipay {
		p.Ready, p.OverLimit = false, true
	}
	return web.Render(c, http.StatusOK, views.Cart(p))
}

// addToCart adds goods to the cart — the account's, or a visitor's in the session. The
// goods page's 立即购买 posts here too (buy_now=1): then nothing is added and the shopper
// goes to 确认订单 for that goods alone (one form, one quantity box, the token in the body).
func (h *Handler) addToCart(c echo.Context) error {
	id, err := strconv.ParseInt(c.FormValue("goods_id"), 10, 64)
	if err != nil || id <= 0 {
		return web.BadRequest("请选择要加入购物车的商品。")
	}
	qty, err := qtyValue(c.FormValue("qty"), 1)
	if err != nil {
		return web.AboutGoods(err, id)
	}
	ctx := c.Request().Context()
	g, err := h.st.GoodsByID(ctx, id)
	if err != nil {
		return err
	}
	if c.FormValue("buy_now") != "" {
		if !g.InStock(qty) {
			return web.AboutGoods(&store.GoodsError{Err: store.ErrOutOfStock, Name: g.Name}, id)
		}
		return c.Redirect(http.StatusSeeOther, checkoutURL(id, qty))
	}
	if u, ok := currentUser(c); ok {
		if err := h.st.AddToCart(ctx, u.ID, id, qty); err != nil {
			return web.AboutGoods(err, id)
		}
	} else {
		ls := visitorCart(c)
		found := false
		for i := range ls {
			if ls[i].goodsID == id {
				if ls[i].qty+qty > 99 {
					return web.AboutGoods(&store.CartLineFullError{Have: ls[i].qty}, id)
				}
				ls[i].qty, ls[i].seen, found = ls[i].qty+qty, g.Price, true
			}
		}
		if !found {
			if len(ls) >= maxVisitorLines {
				return web.AboutGoods(store.ErrTooManyInCart, id)
			}
			ls = append(ls, visitorLine{id, qty, g.Price})
		}
		if err := h.saveVisitorCart(c, ls); err != nil {
			return err
		}
	}
	h.flash(c, "「"+g.Name+"」已加入购物车。")
	return c.Redirect(http.StatusSeeOther, "/cart")
}

// checkoutURL is 确认订单 for one goods (立即购买).
func checkoutURL(goodsID, qty int64) string {
	return "/checkout?" + url.Values{"goods_id": {strconv.FormatInt(goodsID, 10)}, "qty": {strconv.FormatInt(qty, 10)}}.Encode()
}

func (h *Handler) removeFromCart(c echo.Context) error {
	id, err := web.IDParam(c, "goods_id")
	if err != nil {
		return err
	}
	if u, ok := currentUser(c); ok {
		if err := h.st.RemoveFromCart(c.Request().Context(), u.ID, id); err != nil {
			return err
		}
		return c.Redirect(http.StatusSeeOther, "/cart")
	}
	ls := visitorCart(c)
	kept := ls[:0]
	for _, l := range ls {
		if l.goodsID != id {
			kept = append(kept, l)
		}
	}
	if err := h.saveVisitorCart(c, kept); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/cart")
}

// setCartQty sets one line's quantity (1–99) from the cart page.
func (h *Handler) setCartQty(c echo.Context) error {
	id, err := web.IDParam(c, "goods_id")
	if err != nil {
		return err
	}
	qty, err := qtyValue(c.FormValue("qty"), 0)
	if err != nil {
		return err
	}
	if qty == 0 {
		return web.BadRequest("数量必须是 1 到 99 之间的整数。")
	}
	if u, ok := currentUser(c); ok {
		if err := h.st.SetCartQty(c.Request().Context(), u.ID, id, qty); err != nil {
			return err
		}
		return c.Redirect(http.StatusSeeOther, "/cart")
	}
	ls := visitorCart(c)
	found := false
	for i := range ls {
		if ls[i].goodsID == id {
			ls[i].qty, found = qty, true
		}
	}
	if !found {
		return web.ErrNotFound
	}
	if err := h.saveVisitorCart(c, ls); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/cart")
}

// mergeVisitorCart moves the visitor's cart into the account that just logged in or
// signed up, and clears it from the session (the caller saves the session).
func (h *Handler) mergeVisitorCart(c echo.Context, userID int64) error {
	vs := visitorCart(c)
	if len(vs) == 0 {
		return nil
	}
	lines := make([]store.Line, len(vs))
	for i, v := range vs {
		lines[i] = store.Line{GoodsID: v.goodsID, Qty: v.qty}
	}
	_, err := h.st.MergeCart(c.Request().Context(), userID, lines)
	return err
}
