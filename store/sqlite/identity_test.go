package sqlite

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/store"
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
	keys := []store.Key{testKey(t, store.KeyActive, t0), testKey(t, store.KeyNext, t0.Add(time.Second))}
	mustApply(t, s, store.KeyChange{Inserts: keys})

	// Turn it into what 0001 alone leaves: drop every table a later
	// migration created and forget those migrations.
	rows, err := s.db.QueryContext(t.Context(), `SELECT name FROM sqlite_schema
		WHERE type = 'table' AND name NOT IN ('signing_keys', 'key_set_meta', 'schema_migrations')
		AND name NOT LIKE 'sqlite_%'`)
	if err != nil {
		t.Fatal(err)
	}
	var later []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		later = append(later, name)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
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
	sameKeys(t, mustList(t, s), keys)
	if v := mustVersion(t, s); v != 1 {
		t.Errorf("version %d after upgrade, want 1", v)
	}
	u := store.User{ID: "u1", Username: "alice", CreatedAt: t0, UpdatedAt: t0}
	if err := s.CreateUser(t.Context(), u); err != nil {
		t.Fatalf("CreateUser after upgrade: %v", err)
	}
	if _, err := s.GetUserByLogin(t.Context(), "ALICE"); err != nil {
		t.Errorf("GetUserByLogin after upgrade: %v", err)
	}
}

// TestRotateAcrossStores plays replicas, each with its own Store on one file,
// all redeeming the same refresh token at once: exactly one may succeed.
func TestRotateAcrossStores(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keygate.db")
	const n = 4
	stores := make([]*Store, n)
	for i := range stores {
		stores[i] = openTemp(t, path)
	}
	old := store.RefreshToken{ID: "old", FamilyID: "fam", ClientID: "app", Subject: "u1",
		CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	if err := stores[0].CreateRefreshToken(t.Context(), old); err != nil {
		t.Fatal(err)
	}
	now := t0.Add(time.Minute)
	errs := make([]error, 2*n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range errs {
		next := old
		next.ID, next.CreatedAt, next.ExpiresAt = fmt.Sprintf("next-%d", i), now, now.Add(time.Hour)
		wg.Go(func() {
			<-start
			errs[i] = stores[i%n].RotateRefreshToken(t.Context(), old.ID, now, next)
		})
	}
	close(start)
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, store.ErrConflict):
			t.Errorf("rotation %d: %v, want store.ErrConflict", i, err)
		}
	}
	if won != 1 {
		t.Errorf("%d rotations succeeded, want exactly 1", won)
	}
	var links int
	if err := stores[n-1].db.QueryRowContext(t.Context(), `SELECT count(*) FROM refresh_tokens`).Scan(&links); err != nil {
		t.Fatal(err)
	}
	if links != 2 {
		t.Errorf("%d links stored, want 2 (the spent one and one successor)", links)
	}
}

// TestUnstorableIdentityInput checks that values the schema cannot hold
// faithfully are refused with a plain error and write nothing.
func TestUnstorableIdentityInput(t *testing.T) {
	s := openTemp(t, filepath.Join(t.TempDir(), "keygate.db"))
	far := time.Date(2300, time.January, 1, 0, 0, 0, 0, time.UTC)
	cases := map[string]func() error{
		"client created after 2262": func() error {
			return s.CreateClient(t.Context(), store.Client{ID: "c", CreatedAt: far})
		},
		"client scope not UTF-8": func() error {
			return s.CreateClient(t.Context(), store.Client{ID: "c", Scopes: []string{"ok", "b\xffd"}})
		},
		"user updated at the Unix epoch": func() error {
			return s.CreateUser(t.Context(), store.User{ID: "u", Username: "u", UpdatedAt: time.Unix(0, 0)})
		},
		"refresh token expiring after 2262": func() error {
			return s.CreateRefreshToken(t.Context(), store.RefreshToken{ID: "r", FamilyID: "f", ExpiresAt: far})
		},
		"refresh token audience not UTF-8": func() error {
			return s.CreateRefreshToken(t.Context(), store.RefreshToken{ID: "r", FamilyID: "f", ExpiresAt: t0, Audience: []string{"\xff"}})
		},
		"access token expiring after 2262": func() error {
			return s.RevokeAccessToken(t.Context(), "j", far)
		},
	}
	for name, do := range cases {
		t.Run(name, func(t *testing.T) {
			if err := do(); err == nil || errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
				t.Fatalf("got error %v, want a plain error", err)
			}
		})
	}
	for _, table := range []string{"clients", "users", "refresh_tokens", "revoked_access_tokens", "seen_assertions"} {
		var n int
		if err := s.db.QueryRowContext(t.Context(), `SELECT count(*) FROM `+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("%d rows in %s after refused writes", n, table)
		}
	}
}
