package sqlite

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckWritableReadOnly checks that the write probe fails on a database
// that can be read but not written, whoever runs the test (root ignores file
// modes, so the refusal comes from SQLite: PRAGMA query_only), and that
// reads keep working there.
func TestCheckWritableReadOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keygate.db")
	rw := openTemp(t, path)
	if err := rw.CheckWritable(t.Context()); err != nil {
		t.Fatalf("CheckWritable: %v", err)
	}
	ro, err := Open(t.Context(), path, QueryOnly())
	if err != nil {
		t.Fatalf("Open QueryOnly: %v", err)
	}
	defer ro.Close()
	if err := ro.Ping(t.Context()); err != nil {
		t.Errorf("Ping on a read-only store: %v", err)
	}
	err = ro.CheckWritable(t.Context())
	if err == nil || !strings.Contains(err.Error(), "readonly") {
		t.Errorf("CheckWritable on a read-only store: %v, want SQLite's readonly error", err)
	}
	if err := rw.CheckWritable(t.Context()); err != nil {
		t.Errorf("CheckWritable on the writable store afterwards: %v", err)
	}
}

// TestQueryOnlyNeedsMigratedDatabase: a query-only open cannot create the
// schema, so it fails on a new file instead of half-working.
func TestQueryOnlyNeedsMigratedDatabase(t *testing.T) {
	if s, err := Open(t.Context(), filepath.Join(t.TempDir(), "new.db"), QueryOnly()); err == nil {
		s.Close()
		t.Fatal("Open QueryOnly on a new file succeeded")
	}
}
