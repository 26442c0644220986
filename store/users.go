package store

import (
	"context"
	"strings"

	"github.com/mattn/go-sqlite3"
)

// User is a shopper account.
type User struct {
	ID           int64  `db:"id"`
	Email        string `db:"email"`
	PasswordHash string `db:"password_hash"`
	CreatedAt    Time   `db:"created_at"`
}

// NormalizeEmail is the one spelling of an address used for storage and lookups.
func NormalizeEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// CreateUser stores a new user; ErrEmailTaken if the address is registered.
func (s *Store) CreateUser(ctx context.Context, email, passwordHash string) (User, error) {
	u := User{Email: NormalizeEmail(email), PasswordHash: passwordHash, CreatedAt: At(s.now())}
	res, err := s.wdb.ExecContext(ctx,
		`INSERT INTO users (email, password_hash, created_at) VALUES (?, ?, ?)`,
		u.Email, u.PasswordHash, u.CreatedAt)
	if err != nil {
		if se, ok := err.(sqlite3.Error); ok && se.ExtendedCode == sqlite3.ErrConstraintUnique {
			return User{}, ErrEmailTaken
		}
		return User{}, err
	}
	u.ID, err = res.LastInsertId()
	return u, err
}

// UserByEmail finds a user by address; ErrNotFound if none.
func (s *Store) UserByEmail(ctx context.Context, email string) (User, error) {
	var u User
	err := s.db.GetContext(ctx, &u, `SELECT id, email, password_hash, created_at FROM users WHERE email = ?`,
		NormalizeEmail(email))
	return u, notFound(err)
}
