package store

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxAddresses bounds one shopper's address book.
const MaxAddresses = 20

// Address is one entry of a shopper's address book.
type Address struct {
	ID        int64  `db:"id"`
	UserID    int64  `db:"user_id"`
	Name      string `db:"name"`   // 收货人
	Phone     string `db:"phone"`  // 手机号: 11 digits, mainland mobile
	Region    string `db:"region"` // 所在地区: province, city, district as text
	Detail    string `db:"detail"` // 详细地址
	Default   bool   `db:"is_default"`
	CreatedAt Time   `db:"created_at"`
}

// Errors of the address book.
var (
	ErrTooManyAddresses = errors.New("address book full")
	ErrNeedAddress      = errors.New("physical goods need a delivery address")
	ErrNoSuchAddress    = errors.New("no such address in the shopper's book")
)

// AddressError names the field of an address that fails its rule, for the form.
type AddressError struct{ Field, Msg string }

func (e *AddressError) Error() string { return e.Field + ": " + e.Msg }

var mobileRE = regexp.MustCompile(`^1[3-9][0-9]{9}$`)

// clean trims s and turns any run of spaces, tabs or line breaks into one space.
func clean(s string) string { return strings.Join(strings.FieldsFunc(s, unicode.IsSpace), " ") }

// Validate normalises the fields and checks the rules: 收货人 1–20 characters, 手机号 a
// mainland mobile number (1[3-9] and 9 more digits), 所在地区 1–40 characters, 详细地址
// 5–120 characters, and no control characters anywhere.
func (a *Address) Validate() error {
	a.Name, a.Region, a.Detail = clean(a.Name), clean(a.Region), clean(a.Detail)
	a.Phone = strings.NewReplacer(" ", "", "-", "").Replace(strings.TrimSpace(a.Phone))
	a.Phone = strings.TrimPrefix(strings.TrimPrefix(a.Phone, "+86"), "86")
	for _, f := range []struct {
		name, v, msg string
		min, max     int
	}{
		{"name", a.Name, "请填写收货人姓名（1–20 个字）。", 1, 20},
		{"region", a.Region, "请填写所在地区（省、市、区，1–40 个字）。", 1, 40},
		{"detail", a.Detail, "详细地址需为 5–120 个字（街道、门牌号等）。", 5, 120},
	} {
		n := utf8.RuneCountInString(f.v)
		if n < f.min || n > f.max || !utf8.ValidString(f.v) || strings.IndexFunc(f.v, unicode.IsControl) >= 0 {
			return &AddressError{Field: f.name, Msg: f.msg}
		}
	}
	if !mobileRE.MatchString(a.Phone) {
		return &AddressError{Field: "phone", Msg: "请填写 11 位手机号码（1 开头）。"}
	}
	return nil
}

const addressColumns = `id, user_id, name, phone, region, detail, is_default, created_at`

// Addresses returns userID's address book, the default first.
func (s *Store) Addresses(ctx context.Context, userID int64) ([]Address, error) {
	var as []Address
	err := s.db.SelectContext(ctx, &as,
		`SELECT `+addressColumns+` FROM addresses WHERE user_id = ? ORDER BY is_default DESC, id DESC`, userID)
	return as, err
}

// AddAddress validates a and adds it to a.UserID's book. The first address, or one
// asked to be, becomes the default.
func (s *Store) AddAddress(ctx context.Context, a Address) (Address, error) {
	if err := a.Validate(); err != nil {
		return Address{}, err
	}
	a.CreatedAt = At(s.now())
	err := s.inTx(ctx, func(tx txn) error {
		if err := s.lockAddressBook(ctx, tx, a.UserID); err != nil {
			return err
		}
		var n int
		if err := tx.GetContext(ctx, &n, `SELECT COUNT(*) FROM addresses WHERE user_id = ?`, a.UserID); err != nil {
			return err
		}
		if n >= MaxAddresses {
			return ErrTooManyAddresses
		}
		if n == 0 {
			a.Default = true
		}
		if a.Default {
			if _, err := tx.ExecContext(ctx, `UPDATE addresses SET is_default = ? WHERE user_id = ? AND is_default`, false, a.UserID); err != nil {
				return err
			}
		}
		return tx.GetContext(ctx, &a.ID,
			`INSERT INTO addresses (user_id, name, phone, region, detail, is_default, created_at)
			 VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			a.UserID, a.Name, a.Phone, a.Region, a.Detail, a.Default, a.CreatedAt)
	})
	return a, err
}

// SetDefaultAddress makes userID's address id the default; ErrNotFound if it isn't theirs.
func (s *Store) SetDefaultAddress(ctx context.Context, userID, id int64) error {
	return s.inTx(ctx, func(tx txn) error {
		if err := s.lockAddressBook(ctx, tx, userID); err != nil {
			return err
		}
		var n int
		if err := tx.GetContext(ctx, &n, `SELECT COUNT(*) FROM addresses WHERE id = ? AND user_id = ?`, id, userID); err != nil {
			return err
		}
		if n == 0 {
			return ErrNotFound
		}
		if _, err := tx.ExecContext(ctx, `UPDATE addresses SET is_default = ? WHERE user_id = ? AND is_default`, false, userID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE addresses SET is_default = ? WHERE id = ?`, true, id)
		return err
	})
}

// DeleteAddress removes userID's address id (ErrNotFound if it isn't theirs); if it was
// the default, the newest remaining address becomes the default. Orders keep their own
// copy, so nothing else changes.
func (s *Store) DeleteAddress(ctx context.Context, userID, id int64) error {
	return s.inTx(ctx, func(tx txn) error {
		if err := s.lockAddressBook(ctx, tx, userID); err != nil {
			return err
		}
		var a Address
		if err := tx.GetContext(ctx, &a, `SELECT `+addressColumns+` FROM addresses WHERE id = ? AND user_id = ?`, id, userID); err != nil {
			return notFound(err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM addresses WHERE id = ?`, id); err != nil {
			return err
		}
		if !a.Default {
			return nil
		}
		_, err := tx.ExecContext(ctx, `UPDATE addresses SET is_default = ?
			WHERE id = (SELECT MAX(id) FROM addresses WHERE user_id = ?)`, true, userID)
		return err
	})
}

// lockAddressBook makes tx the only one changing userID's addresses until it ends (the
// user's row is locked; SQLite's single writer needs nothing), so the count limit and
// "exactly one default" hold with writers on several instances.
func (s *Store) lockAddressBook(ctx context.Context, tx txn, userID int64) error {
	var id int64
	return notFound(tx.GetContext(ctx, &id, `SELECT id FROM users WHERE id = ?`+s.dl.forUpdate, userID))
}

// addressFor reads the address an order will ship to: userID's address id, or with id 0
// their default. ErrNotFound if id isn't theirs; ErrNeedAddress if they have none.
func addressFor(ctx context.Context, q querier, userID, id int64) (Address, error) {
	var a Address
	var err error
	if id != 0 {
		err = q.GetContext(ctx, &a, `SELECT `+addressColumns+` FROM addresses WHERE id = ? AND user_id = ?`, id, userID)
		return a, notFound(err)
	}
	err = q.GetContext(ctx, &a, `SELECT `+addressColumns+` FROM addresses WHERE user_id = ? AND is_default`, userID)
	if notFound(err) == ErrNotFound {
		return a, ErrNeedAddress
	}
	return a, err
}
