// Package e2e drives the shop with a real browser, end to end: the built binary with
// zero configuration (local mode, the Alipay emulator mounted at /sandbox), and
// Debian's chromium through chromedp.
//
//	go test -race -count=1 -v ./e2e/
//
// Without a browser the test skips (and fails when CI=true). It needs the Debian
// packages chromium and fonts-noto-cjk (without a CJK font the screenshots show boxes
// in place of Chinese text). Screenshots go to e2e/screenshots/ (git-ignored); run with
// UPDATE_SCREENSHOTS=1 to also refresh the README's copies in docs/screenshots/, and
// with E2E_LOGS=1 to see the shop's log even when the test passes.
package e2e
