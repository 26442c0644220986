package admin

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	views "storefront/views/admin"
	"storefront/web"
)

func (h *Handler) audit(c echo.Context) error {
	before, _ := strconv.ParseInt(c.QueryParam("before"), 10, 64)
	as, more, err := h.st.Actions(c.Request().Context(), before, 100)
	if err != nil {
		return err
	}
	p := views.AuditPage{Layout: h.layout(c, "操作日志", views.NavAudit), Actions: as, Pager: views.Pager{Path: "/admin/audit"}}
	if more {
		p.Pager.Before = as[len(as)-1].ID
	}
	return web.Render(c, http.StatusOK, views.Audit(p))
}
