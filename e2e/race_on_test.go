//go:build race

package e2e

// raceEnabled: the test runs under -race, so the shop binary is built with -race too.
// It shares the build cache with the test's own packages and checks the server for
// data races during a real browser session.
const raceEnabled = true
