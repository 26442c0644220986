package store

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/jmoiron/sqlx"
)

// Backup writes a consistent copy of the SQLite database at path to dest while other
// processes keep using it: VACUUM INTO reads one snapshot (a WAL read transaction, so
// writers carry on) and writes a compact, self-contained file. dest must not exist.
// The copy is made ready to restore: its sessions are cleared and it gets a new
// installation token, so that once restored every cookie issued before is refused —
// those issued after the backup name users whose ids will be handed out again, and
// sessions ended after the backup would otherwise come back. Everyone logs in again.
// The copy is checked with integrity_check before Backup returns.
func Backup(ctx context.Context, path, dest string) error {
	if _, err := os.Stat(dest); err == nil {
		return fmt.Errorf("%s already exists: choose a new file name", dest)
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("database %s: %w", path, err)
	}
	src, err := sqlx.Open("sqlite3", DSN(path))
	if err != nil {
		return err
	}
	defer src.Close()
	if _, err := src.ExecContext(ctx, `VACUUM INTO ?`, dest); err != nil {
		os.Remove(dest)
		return fmt.Errorf("backing up %s: %w", path, err)
	}
	cp, err := sqlx.Open("sqlite3", "file:"+dest)
	if err != nil {
		return err
	}
	defer cp.Close()
	if _, err := cp.ExecContext(ctx, `DELETE FROM sessions; DELETE FROM operator_sessions; UPDATE installation SET token = `+expandTokens("{{random_token}}")); err != nil {
		return fmt.Errorf("preparing the copy %s: %w", dest, err)
	}
	var res string
	if err := cp.GetContext(ctx, &res, "PRAGMA integrity_check"); err != nil || res != "ok" {
		return fmt.Errorf("the copy %s failed its integrity check (%q, %v): keep the old backup", dest, res, err)
	}
	return nil
}
