package store

import (
	"context"
	"database/sql"
	"strings"
)

// Operator is a back-office account (店铺运营). Operators are not shoppers.
type Operator struct {
	ID           int64  `db:"id"`
	Email        string `db:"email"`
	PasswordHash string `db:"password_hash"`
	CreatedAt    Time   `db:"created_at"`
}

// SaveOperator creates the operator email with passwordHash, or sets the password of
// the one that exists; created says which.
func (s *Store) SaveOperator(ctx context.Context, email, passwordHash string) (op Operator, created bool, err error) {
	email = NormalizeEmail(email)
	err = s.inTx(ctx, func(tx txn) error {
		res, err := tx.ExecContext(ctx, `UPDATE operators SET password_hash = ? WHERE email = ?`, passwordHash, email)
		if err != nil {
			return err
		}
		if affected(res) == 0 {
			created = true
			if _, err := tx.ExecContext(ctx, `INSERT INTO operators (email, password_hash, created_at) VALUES (?, ?, ?)`,
				email, passwordHash, At(s.now())); err != nil {
				return err
			}
		} else {
			// A new password ends the operator's sessions: whoever had the old one is out.
			if _, err := tx.ExecContext(ctx, `DELETE FROM operator_sessions WHERE operator_id = (SELECT id FROM operators WHERE email = ?)`, email); err != nil {
				return err
			}
			if err := s.announce(ctx, tx, changeSessions); err != nil {
				return err
			}
		}
		return tx.GetContext(ctx, &op, `SELECT id, email, password_hash, created_at FROM operators WHERE email = ?`, email)
	})
	if err == nil && !created {
		s.opSessions.clear()
	}
	return op, created, err
}

// CreateFirstOperator creates the operator email with passwordHash if there is no
// operator at all yet, and reports whether it did: of instances starting together on
// an empty database, one creates it (a second insert of the same email does nothing).
func (s *Store) CreateFirstOperator(ctx context.Context, email, passwordHash string) (bool, error) {
	res, err := s.wdb.ExecContext(ctx, `INSERT INTO operators (email, password_hash, created_at)
		SELECT CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT) WHERE NOT EXISTS (SELECT 1 FROM operators)
		ON CONFLICT (email) DO NOTHING`, NormalizeEmail(email), passwordHash, At(s.now()))
	if err != nil {
		return false, err
	}
	return affected(res) == 1, nil
}

// OperatorByEmail finds an operator; ErrNotFound if none.
func (s *Store) OperatorByEmail(ctx context.Context, email string) (Operator, error) {
	var op Operator
	err := s.db.GetContext(ctx, &op, `SELECT id, email, password_hash, created_at FROM operators WHERE email = ?`, NormalizeEmail(email))
	return op, notFound(err)
}

// OperatorByID finds an operator; ErrNotFound if none.
func (s *Store) OperatorByID(ctx context.Context, id int64) (Operator, error) {
	var op Operator
	err := s.db.GetContext(ctx, &op, `SELECT id, email, password_hash, created_at FROM operators WHERE id = ?`, id)
	return op, notFound(err)
}

// CountOperators is how many operators exist (a local shop makes a dev one at 0).
func (s *Store) CountOperators(ctx context.Context) (int, error) {
	var n int
	err := s.db.GetContext(ctx, &n, `SELECT COUNT(*) FROM operators`)
	return n, err
}

// Actor is who does something: an operator, or the shop itself (OperatorID 0: an
// automatic refund, the refund worker).
type Actor struct{ OperatorID int64 }

// System is the shop acting on its own.
var System = Actor{}

func (a Actor) id() sql.NullInt64 {
	return sql.NullInt64{Int64: a.OperatorID, Valid: a.OperatorID != 0}
}

// Operator actions, as the log names them.
const (
	ActShip          = "ship"
	ActNote          = "note"
	ActCancel        = "cancel"
	ActRefund        = "refund"
	ActRefundSettled = "refund_settled"
	ActRequestRefund = "refund_request"
	ActApprove       = "refund_approve"
	ActRefuse        = "refund_refuse"
	ActResolve       = "resolve_payment"
	ActGoodsCreate   = "goods_create"
	ActGoodsUpdate   = "goods_update"
)

// Action is one entry of the operator-actions log.
type Action struct {
	ID         int64         `db:"id"`
	OperatorID sql.NullInt64 `db:"operator_id"`
	Operator   string        `db:"operator"` // the operator's e-mail; "" for the shop itself
	Action     string        `db:"action"`
	Target     string        `db:"target"`
	OrderID    sql.NullInt64 `db:"order_id"`
	Before     string        `db:"before"`
	After      string        `db:"after"`
	Note       string        `db:"note"`
	CreatedAt  Time          `db:"created_at"`
}

// logAction writes a to the log inside tx, the transaction of the action itself: the
// action and its entry commit together or not at all.
func (s *Store) logAction(ctx context.Context, tx txn, by Actor, a Action) error {
	_, err := tx.ExecContext(ctx,
		`INSERT INTO operator_actions (operator_id, action, target, order_id, before, after, note, created_at)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		by.id(), a.Action, a.Target, a.OrderID, a.Before, a.After, a.Note, At(s.now()))
	return err
}

// orderRef is an action's order: its id for the timeline, its number as the target.
func orderRef(o Order) (sql.NullInt64, string) {
	return sql.NullInt64{Int64: o.ID, Valid: true}, "order " + o.OutTradeNo
}

const actionColumns = `a.id, a.operator_id, COALESCE(op.email, '') AS operator, a.action, a.target, a.order_id,
	a.before, a.after, a.note, a.created_at`

// Actions returns one page of the log, newest first, entries older than the id
// before (0 = from the newest), and whether more follow.
func (s *Store) Actions(ctx context.Context, before int64, limit int) ([]Action, bool, error) {
	q := `SELECT ` + actionColumns + ` FROM operator_actions a LEFT JOIN operators op ON op.id = a.operator_id`
	args := []any{}
	if before > 0 {
		q += ` WHERE a.id < ?`
		args = append(args, before)
	}
	q += ` ORDER BY a.id DESC LIMIT ?`
	args = append(args, limit+1)
	var as []Action
	err := s.db.SelectContext(ctx, &as, q, args...)
	if len(as) > limit {
		return as[:limit], true, err
	}
	return as, false, err
}

// ActionsForOrder returns the log entries about one order, oldest first.
func (s *Store) ActionsForOrder(ctx context.Context, orderID int64) ([]Action, error) {
	var as []Action
	err := s.db.SelectContext(ctx, &as, `SELECT `+actionColumns+` FROM operator_actions a
		LEFT JOIN operators op ON op.id = a.operator_id WHERE a.order_id = ? ORDER BY a.id`, orderID)
	return as, err
}

// changes renders pairs of (field, value) as one line for the log: "价格 ¥199.00，库存 20".
func changes(pairs ...string) string {
	var parts []string
	for i := 0; i+1 < len(pairs); i += 2 {
		parts = append(parts, pairs[i]+" "+pairs[i+1])
	}
	return strings.Join(parts, "，")
}
