// Package e2e drives the shop with a real browser, end to end: the built binary with
// zero configuration (local mode, the Alipay emulator mounted at /sandbox), and
// Debian's chromium through chromedp.
//
//	go test -race -count=1 -v ./e2e/
//
// TestBrowser has two runs, each a new shopper on a fresh shop:
//
//   - phone: 390×844, an iPhone's User-Agent, mobile viewport and touch (taps, not
//     clicks), JavaScript disabled in every page; the cart as a visitor, sign-up from
//     去结算, the first address on 确认订单, WAP pay, 取消 on the phone cashier, the bottom
//     tab bar. Every page it opens, the emulator's included, is checked for layout
//     faults (layout_test.go): sideways scrolling, controls off the screen or wrapped
//     onto several lines, text squeezed to a character per line. The check is first
//     run on a fixture page to show it finds each fault.
//   - desktop: 1366×900, a Windows Chrome User-Agent; 立即购买, page pay, addresses
//     chosen from the book, the page-pay cashier's 取消 → 返回商户. Then the back office
//     (operator_test.go), in a second browser context with its own cookies: the dev
//     operator logs in with the login the shop printed on its first start, reads the
//     dashboard, filters 订单 by 待发货, ships one of the shopper's two paid orders and
//     refunds ¥10.00 of the other (seen on the emulator's console too); the shopper sees
//     both on their order pages and is sent to /admin/login from /admin. The back-office
//     pages are checked for layout faults at 1366 px and, three of them, at 390 px.
//
// Without a browser the test skips (and fails when CI=true). It needs the Debian
// packages chromium and fonts-noto-cjk (without a CJK font the screenshots show boxes
// in place of Chinese text). Screenshots go to e2e/screenshots/ (git-ignored) as
// phone-N-name.png and desktop-N-name.png; run with UPDATE_SCREENSHOTS=1 to also
// refresh the README's copies in docs/screenshots/, and with E2E_LOGS=1 to see the
// shop's log even when the test passes.
package e2e
