// Command storefront is a server-rendered shop that takes payment through Alipay, with a
// local Alipay gateway emulator for development.
//
//	go run .               the shop (local mode: emulator mounted at /sandbox)
//	go run . help          every setting, its default and meaning
//	go run . sandbox       the emulator alone, on its own address
//	go run . backup FILE   a consistent copy of the live database
//	go run . operator add EMAIL   a back-office operator
//	go run . reconcile [DATE]     compare a day's Alipay trade bill with the shop
//	go run . migrate-to postgres://…   move the shop's SQLite data to PostgreSQL
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"storefront/web"
)

func main() {
	tuneGC(os.Getenv)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(web.NewLogHandler(slog.NewTextHandler(os.Stderr, nil)))
	if err := run(ctx, os.Args[1:], os.Getenv, log); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

// run dispatches to the command named by args (none: the shop).
func run(ctx context.Context, args []string, getenv func(string) string, log *slog.Logger) error {
	if len(args) == 0 {
		return runShop(ctx, getenv, os.Stdout, log)
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		return runHelp(os.Stdout)
	case "sandbox":
		return runSandbox(ctx, getenv, os.Stdout, log)
	case "backup":
		return runBackup(ctx, args[1:], getenv, os.Stdout)
	case "reconcile":
		return runReconcile(ctx, args[1:], getenv, os.Stdout, log)
	case "operator":
		return runOperator(ctx, args[1:], getenv, os.Stdin, os.Stdout)
	case "migrate-to":
		return runMigrateTo(ctx, args[1:], getenv, os.Stdout)
	}
	return fmt.Errorf("unknown command %q: run \"go run . help\" for the commands and settings", args[0])
}

// tuneGC trades memory the shop doesn't need for CPU it does: a page allocates a few
// KiB that die at once, and at Go's default GOGC=100 collection took about a tenth of
// a busy server's CPU. GOGC=200 halves that work; the soft memory limit makes the
// collector work harder again before the heap could reach it. Either can be overridden
// with the usual GOGC / GOMEMLIMIT variables.
func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(200)
	}
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(64 << 20)
	}
}
