package web

import (
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestPasswordMatches(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("正确的密码 1"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if !PasswordMatches(string(hash), "正确的密码 1") {
		t.Error("the right password does not match")
	}
	if PasswordMatches(string(hash), "wrong") {
		t.Error("a wrong password matches")
	}
	// An unknown account: never a match, and it pays a real comparison at the cost
	// real passwords are hashed with by default.
	if PasswordMatches("", "") || PasswordMatches("", "no account has this password") {
		t.Error("an account without a hash matched")
	}
	if cost, err := bcrypt.Cost([]byte(dummyHash)); err != nil || cost != bcrypt.DefaultCost {
		t.Errorf("dummy hash: cost %d, %v", cost, err)
	}
}
