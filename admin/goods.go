package admin

import (
	"cmp"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"storefront/money"
	"storefront/store"
	views "storefront/views/admin"
	"storefront/web"
)

func (h *Handler) goods(c echo.Context) error {
	return h.renderGoods(c, http.StatusOK, views.GoodsForm{Active: true})
}

func (h *Handler) renderGoods(c echo.Context, status int, form views.GoodsForm) error {
	before, _ := strconv.ParseInt(c.QueryParam("before"), 10, 64)
	gs, more, err := h.st.AllGoods(c.Request().Context(), before, 50)
	if err != nil {
		return err
	}
	p := views.GoodsPage{Layout: h.layout(c, "商品", views.NavGoods), Goods: gs, Form: form, Pager: views.Pager{Path: "/admin/goods"}}
	if more {
		p.Pager.Before = gs[len(gs)-1].ID
	}
	return web.Render(c, status, views.Goods(p))
}

func formOf(g store.Goods) views.GoodsForm {
	f := views.GoodsForm{ID: g.ID, Name: g.Name, Description: g.Description, Price: g.Price.String(),
		Category: g.Category, Virtual: g.Virtual, Active: g.Active, Image: g.Image}
	if g.Stock != nil {
		f.Stock = strconv.FormatInt(*g.Stock, 10)
		f.StockWas = f.Stock
	}
	return f
}

func (h *Handler) editGoods(c echo.Context) error {
	id, err := web.IDParam(c, "id")
	if err != nil {
		return err
	}
	g, err := h.st.AnyGoods(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return web.Render(c, http.StatusOK, views.GoodsEdit(views.GoodsEditPage{Layout: h.layout(c, g.Name, views.NavGoods), Form: formOf(g)}))
}

func (h *Handler) createGoods(c echo.Context) error { return h.saveGoods(c, 0) }

func (h *Handler) updateGoods(c echo.Context) error {
	id, err := web.IDParam(c, "id")
	if err != nil {
		return err
	}
	if _, err := h.st.AnyGoods(c.Request().Context(), id); err != nil {
		return err
	}
	return h.saveGoods(c, id)
}

// saveGoods reads the goods form (multipart, with an optional picture) and saves it;
// a form that breaks a rule is shown again with what was typed and why.
func (h *Handler) saveGoods(c echo.Context, id int64) error {
	form := views.GoodsForm{ID: id, Name: c.FormValue("name"), Description: c.FormValue("description"),
		Price: strings.TrimSpace(c.FormValue("price")), Stock: strings.TrimSpace(c.FormValue("stock")),
		Category: c.FormValue("category"), Virtual: c.FormValue("virtual") == "1", Active: c.FormValue("active") == "1",
		StockWas: strings.TrimSpace(c.FormValue("stock_was"))}
	again := func(field, msg string) error {
		form.Field, form.Error = field, msg
		if id != 0 {
			return web.Render(c, http.StatusBadRequest, views.GoodsEdit(views.GoodsEditPage{Layout: h.layout(c, "编辑商品", views.NavGoods), Form: form}))
		}
		return h.renderGoods(c, http.StatusBadRequest, form)
	}
	g := store.Goods{ID: id, Name: form.Name, Description: form.Description, Category: form.Category,
		Virtual: form.Virtual, Active: form.Active}
	price, err := parseYuan(form.Price)
	if err != nil {
		return again("price", "价格需为 0.01 到 "+money.MaxAlipay.Yuan()+" 之间、最多两位小数的金额。")
	}
	g.Price = price
	if form.Stock != "" {
		n, err := strconv.ParseInt(form.Stock, 10, 64)
		if err != nil {
			return again("stock", "库存需为 0 到 1000000 的整数，留空表示不限。")
		}
		g.Stock = &n
	}
	if err := store.ValidateGoods(&g); err != nil {
		var fe *store.GoodsFieldError
		if errors.As(err, &fe) {
			return again(fe.Field, fe.Msg)
		}
		return err
	}
	mf, _ := c.MultipartForm()
	if fh, err := formImage(mf); err == nil {
		path, err := saveImage(c.Request().Context(), h.st, h.cfg.MediaDir, fh)
		if err != nil {
			return again("image", web.Classify(err).Msg)
		}
		g.Image = path
	} else if id == 0 {
		g.Image = "/static/img/placeholder.svg"
	}
	var seen store.StockSeen
	if _, ok := c.Request().Form["stock_was"]; ok && id != 0 {
		seen.Known = true
		if form.StockWas != "" {
			n, err := strconv.ParseInt(form.StockWas, 10, 64)
			if err != nil {
				return web.BadRequest("表单已损坏，请刷新后重新编辑。")
			}
			seen.Stock = &n
		}
	}
	g, err = h.st.SaveGoods(c.Request().Context(), actor(c), g, seen)
	var fe *store.GoodsFieldError
	if errors.Is(err, store.ErrStockMoved) {
		now, err := h.st.AnyGoods(c.Request().Context(), id)
		if err != nil {
			return err
		}
		cur := formOf(now)
		form.Stock, form.StockWas = cur.Stock, cur.StockWas
		shown := cmp.Or(cur.Stock, "不限")
		return again("stock", "打开表单后库存已变化（有订单下单或取消），现为 "+shown+"。请确认库存后再保存。")
	}
	if errors.As(err, &fe) {
		return again(fe.Field, fe.Msg)
	} else if err != nil {
		return err
	}
	h.flash(c, "已保存「"+g.Name+"」。")
	return c.Redirect(http.StatusSeeOther, "/admin/goods/"+strconv.FormatInt(g.ID, 10))
}

// parseYuan reads a price typed by an operator: "199", "199.5" or "199.50".
func parseYuan(s string) (money.Fen, error) {
	if i := strings.IndexByte(s, '.'); i < 0 {
		s += ".00"
	} else if len(s)-i == 2 {
		s += "0"
	}
	f, err := money.Parse(s)
	if err != nil || f <= 0 || f > money.MaxAlipay {
		return 0, errors.New("bad price")
	}
	return f, nil
}
