package handlers

import (
	"strings"

	"github.com/labstack/echo/v4"

	"storefront/payment"
)

// phoneMarks are what a phone's browser puts in its User-Agent (an iPad asks for the
// desktop site, and gets page pay like a computer).
var phoneMarks = []string{"iphone", "ipod", "android", "mobile", "windows phone", "harmonyos", "micromessenger"}

// product is how the device asking pays at Alipay: WAP pay for a phone's browser (every
// Alipay shop sends phones to the mobile cashier), page pay for a computer.
func product(c echo.Context) string {
	ua := strings.ToLower(c.Request().UserAgent())
	for _, m := range phoneMarks {
		if strings.Contains(ua, m) {
			return payment.WapPay
		}
	}
	return payment.PagePay
}
