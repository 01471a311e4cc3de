package sqlite

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/internal/backendtest"
)

// TestUpgradeFrom0001 checks that a database created by a binary that only
// knew migration 0001, holding keys, is brought up to date by Open with its
// keys intact and the identity tables usable.
func TestUpgradeFrom0001(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keygate.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	keys := []store.Key{testKey(t, store.KeyActive, backendtest.T0), testKey(t, store.KeyNext, backendtest.T0.Add(time.Second))}
	backendtest.MustApply(t, s, store.KeyChange{Inserts: keys})

	// Turn it into what 0001 alone leaves: drop every table a later
	// migration created and forget those migrations.
	later := queryColumn[string](t, s, `SELECT name FROM sqlite_schema
		WHERE type = 'table' AND name NOT IN ('signing_keys', 'key_set_meta', 'schema_migrations')
		AND name NOT LIKE 'sqlite_%'`)
	if len(later) == 0 {
		t.Fatal("no tables beyond 0001's: is 0002 applied?")
	}
	for _, name := range later {
		if _, err := s.db.ExecContext(t.Context(), `DROP TABLE "`+name+`"`); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.db.ExecContext(t.Context(), `DELETE FROM schema_migrations WHERE version > 1`); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTemp(t, path)
	if got, want := appliedVersions(t, s), wantVersions(t); !equalInts(got, want) {
		t.Errorf("schema_migrations after upgrade %v, want %v", got, want)
	}
	sameKeys(t, backendtest.MustList(t, s), keys)
	if v := backendtest.MustVersion(t, s); v != 1 {
		t.Errorf("version %d after upgrade, want 1", v)
	}
	u := store.User{ID: "u1", Username: "alice", CreatedAt: backendtest.T0, UpdatedAt: backendtest.T0}
	if err := s.CreateUser(t.Context(), u); err != nil {
		t.Fatalf("CreateUser after upgrade: %v", err)
	}
	if _, err := s.GetUserByLogin(t.Context(), "ALICE"); err != nil {
		t.Errorf("GetUserByLogin after upgrade: %v", err)
	}
}
