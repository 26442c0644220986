package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// commands are what `go run . help` lists first.
var commands = []struct{ usage, meaning string }{
	{"go run .", "run the shop (local mode: the Alipay emulator is mounted at /sandbox)"},
	{"go run . help", "this list (also -h, --help)"},
	{"go run . sandbox", "run the Alipay emulator alone on SANDBOX_ADDR, so its notifies keep retrying while the shop restarts"},
	{"go run . operator add EMAIL", "create a back-office operator, or set a new password (read from the terminal, or OPERATOR_PASSWORD)"},
	{"go run . reconcile [DATE]", "compare Alipay's trade bill of DATE (yyyy-mm-dd, Beijing; default yesterday) with the shop's payments and refunds, and list the differences"},
	{"go run . backup FILE", "write a consistent copy of the live SQLite database to FILE while the shop serves"},
	{"go run . migrate-to postgres://…", "copy the shop's SQLite data (DB) into an empty PostgreSQL database, every table's count checked; stop the shop first"},
}

// runHelp prints every command and every setting with its default and meaning.
func runHelp(out io.Writer) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %s\t%s\n", c.usage, c.meaning)
	}
	fmt.Fprintln(w, "\nSettings (environment variables):")
	fmt.Fprintln(w, "  NAME\tDEFAULT\tMEANING")
	for _, s := range settings {
		fmt.Fprintf(w, "  %s\t%s\t%s\n", s.name, s.def, s.meaning)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(out, "\n"+strings.TrimSpace(`
In sandbox and production mode the shop refuses to start on settings that would fail
later or weaken it, and says what to do; docs/operations.md covers deploying.`))
	return err
}
