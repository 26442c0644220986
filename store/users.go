package store

import (
	"context"
	"strings"
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
	err := s.wdb.GetContext(ctx, &u.ID,
		`INSERT INTO users (email, password_hash, created_at) VALUES (?, ?, ?) RETURNING id`,
		u.Email, u.PasswordHash, u.CreatedAt)
	if s.dl.isUnique(err) {
		return User{}, ErrEmailTaken
	}
	return u, err
}

// UserByEmail finds a user by address; ErrNotFound if none.
func (s *Store) UserByEmail(ctx context.Context, email string) (User, error) {
	var u User
	err := s.db.GetContext(ctx, &u, `SELECT id, email, password_hash, created_at FROM users WHERE email = ?`,
		NormalizeEmail(email))
	return u, notFound(err)
}

// UserByID finds a user by id; ErrNotFound if none.
func (s *Store) UserByID(ctx context.Context, id int64) (User, error) {
	var u User
	err := s.db.GetContext(ctx, &u, `SELECT id, email, password_hash, created_at FROM users WHERE id = ?`, id)
	return u, notFound(err)
}

// SetPassword replaces userID's password hash.
func (s *Store) SetPassword(ctx context.Context, userID int64, hash string) error {
	res, err := s.wdb.ExecContext(ctx, `UPDATE users SET password_hash = ? WHERE id = ?`, hash, userID)
	if err != nil {
		return err
	}
	if affected(res) == 0 {
		return ErrNotFound
	}
	return nil
}
