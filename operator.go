package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"os"
	"strings"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/term"

	"storefront/store"
)

// devOperatorEmail is the back-office account a local shop makes on its first start.
const devOperatorEmail = "operator@example.com"

// devOperator creates, in local mode, the dev operator when there is no operator at all,
// and prints its login once.
func devOperator(ctx context.Context, st *store.Store, out io.Writer) error {
	n, err := st.CountOperators(ctx)
	if err != nil || n > 0 {
		return err
	}
	password := randomHex(8)
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return err
	}
	if created, err := st.CreateFirstOperator(ctx, devOperatorEmail, string(hash)); err != nil || !created {
		return err // or another instance made the first operator just now
	}
	fmt.Fprintf(out, "dev operator for the back office: %s / %s (shown once; `go run . operator add %s` sets a new password)\n",
		devOperatorEmail, password, devOperatorEmail)
	return nil
}

// runOperator is `go run . operator add EMAIL`: it creates a back-office operator, or
// sets the password of one that exists (ending their sessions). The password is read
// from the terminal (twice), or from OPERATOR_PASSWORD when stdin is not a terminal.
func runOperator(ctx context.Context, args []string, getenv func(string) string, in *os.File, out io.Writer) error {
	if len(args) != 2 || args[0] != "add" {
		return errors.New("usage: go run . operator add EMAIL (password from the terminal, or OPERATOR_PASSWORD)")
	}
	email := store.NormalizeEmail(args[1])
	if a, err := mail.ParseAddress(email); err != nil || a.Address != email {
		return fmt.Errorf("%q is not an e-mail address", args[1])
	}
	password, err := readPassword(getenv, in, out)
	if err != nil {
		return err
	}
	if n := len([]rune(password)); n < 10 || len(password) > 72 {
		return errors.New("an operator's password needs 10 to 72 characters")
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return err
	}
	st, err := openStore(getenv)
	if err != nil {
		return err
	}
	defer st.Close()
	_, created, err := st.SaveOperator(ctx, email, string(hash))
	if err != nil {
		return err
	}
	if created {
		fmt.Fprintf(out, "operator %s created: log in at /admin/login\n", email)
	} else {
		fmt.Fprintf(out, "operator %s: password changed, their back-office sessions ended (a shop running on the same SQLite file lets go of them within 30 s)\n", email)
	}
	return nil
}

func readPassword(getenv func(string) string, in *os.File, out io.Writer) (string, error) {
	if !term.IsTerminal(int(in.Fd())) {
		if p := getenv("OPERATOR_PASSWORD"); p != "" {
			return p, nil
		}
		// A pipe: the first line is the password.
		line, err := bufio.NewReader(in).ReadString('\n')
		if p := strings.TrimRight(line, "\r\n"); p != "" {
			return p, nil
		}
		if err != nil {
			return "", errors.New("no password: set OPERATOR_PASSWORD, or run this in a terminal")
		}
	}
	fmt.Fprint(out, "password: ")
	p1, err := term.ReadPassword(int(in.Fd()))
	fmt.Fprintln(out)
	if err != nil {
		return "", err
	}
	fmt.Fprint(out, "again: ")
	p2, err := term.ReadPassword(int(in.Fd()))
	fmt.Fprintln(out)
	if err != nil {
		return "", err
	}
	if string(p1) != string(p2) {
		return "", errors.New("the two passwords differ")
	}
	return string(p1), nil
}

// openStore opens the database DB names, as the shop would (migrating it if needed).
func openStore(getenv func(string) string) (*store.Store, error) {
	db := strings.TrimSpace(getenv("DB"))
	if db == "" {
		db = defaultOf("DB")
	}
	return store.Open(db, schemaSQL, nil)
}
