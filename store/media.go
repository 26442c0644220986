package store

import "context"

// SaveMedia keeps an uploaded image under name (its content hash: saving the same
// picture again changes nothing).
func (s *Store) SaveMedia(ctx context.Context, name string, data []byte) error {
	_, err := s.wdb.ExecContext(ctx, `INSERT INTO media (name, data, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING`,
		name, data, At(s.now()))
	return err
}

// Media reads the image stored under name; ErrNotFound if none.
func (s *Store) Media(ctx context.Context, name string) ([]byte, error) {
	var data []byte
	err := s.db.GetContext(ctx, &data, `SELECT data FROM media WHERE name = ?`, name)
	return data, notFound(err)
}
