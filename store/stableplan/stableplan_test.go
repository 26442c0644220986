package stableplan

import "testing"

// TestACachedStatementIsNotPreparedAgain shows the reason for the package in SQLite
// itself: used the way the driver's statement cache uses it, a statement with bound
// values is prepared again on every use without the guarantee, and never with it.
func TestACachedStatementIsNotPreparedAgain(t *testing.T) {
	_, without, err := probe(false)
	if err != nil {
		t.Fatal(err)
	}
	if without < 2 {
		t.Errorf("without the guarantee, 3 uses prepared the statement again %d times; the premise (2 or more) no longer holds", without)
	}
	_, with, err := probe(true)
	if err != nil {
		t.Fatal(err)
	}
	if with != 0 {
		t.Errorf("with the guarantee, 3 uses prepared the statement again %d times, want 0", with)
	}
}

// TestConnectionsOpenedAfterRegisterHaveTheGuarantee: before Register a new connection
// plans by bound values (SQLite's default), after it every new one has the guarantee.
func TestConnectionsOpenedAfterRegisterHaveTheGuarantee(t *testing.T) {
	before, _, err := probe(false)
	if err != nil {
		t.Fatal(err)
	}
	if before {
		t.Fatal("a connection had the guarantee before Register: the test can't tell Register's doing")
	}
	if err := Register(); err != nil {
		t.Fatal(err)
	}
	if err := Register(); err != nil { // a second call is harmless
		t.Fatal(err)
	}
	after, _, err := probe(false)
	if err != nil {
		t.Fatal(err)
	}
	if !after {
		t.Error("a connection opened after Register came without the guarantee")
	}
}
