package web

import "golang.org/x/crypto/bcrypt"

// dummyHash is a bcrypt hash (default cost) of a password nobody has: checked for an
// unknown account, so a login for an e-mail that isn't registered costs the same bcrypt
// comparison and response times don't say which addresses exist.
const dummyHash = "$2a$10$tludzO6vblyGMKNWuCtKWO71r7Jpv6znlC179QrlQXjTP7SAwlShu"

// PasswordMatches reports whether password is the one hash was made from; hash is ""
// for an account that doesn't exist (never a match, at the same cost).
func PasswordMatches(hash, password string) bool {
	if hash == "" {
		_ = bcrypt.CompareHashAndPassword([]byte(dummyHash), []byte(password))
		return false
	}
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
}
