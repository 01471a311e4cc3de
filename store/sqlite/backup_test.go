package sqlite

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/internal/backendtest"
)

// TestBackupWhileWriting: a backup taken while another connection keeps
// writing is a whole database with mode 0600 that opens as a Store and holds
// the same key set; the copy is described from what it holds.
func TestBackupWhileWriting(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keygate.db")
	s := openTemp(t, path)
	backendtest.MustApply(t, s, store.KeyChange{Inserts: []store.Key{testKey(t, store.KeyActive, backendtest.T0)}})
	backendtest.MustApply(t, s, store.KeyChange{Inserts: []store.Key{testKey(t, store.KeyNext, backendtest.T0.Add(1))}})

	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // a server writing throughout
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			if err := s.CreateClient(ctx, store.Client{ID: fmt.Sprintf("c%05d", i), GrantTypes: []string{"client_credentials"},
				CreatedAt: backendtest.T0}); err != nil && ctx.Err() == nil {
				t.Errorf("CreateClient: %v", err)
				return
			}
		}
	}()
	dest := filepath.Join(dir, "backup.db")
	info, err := Backup(t.Context(), path, dest, false)
	cancel()
	wg.Wait()
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	fi, err := os.Stat(dest)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("backup has mode %v, want 0600", fi.Mode().Perm())
	}
	keys, err := s.ListKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.Path != dest || info.Size != fi.Size() || info.KeySetVersion != 2 || len(info.KIDs) != 2 ||
		info.KIDs[0] != keys[0].KID || info.KIDs[1] != keys[1].KID || info.SchemaVersion < 1 {
		t.Errorf("info = %+v, want %s, %d bytes, version 2, kids %s %s", info, dest, fi.Size(), keys[0].KID, keys[1].KID)
	}

	b := openTemp(t, dest)
	got, err := b.ListKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	sameKeys(t, got, keys)
	if v, err := b.KeySetVersion(t.Context()); err != nil || v != 2 {
		t.Errorf("backup KeySetVersion = %d, %v; want 2", v, err)
	}
	if _, err := b.ListClients(t.Context()); err != nil {
		t.Errorf("backup ListClients: %v", err)
	}
	noTempFiles(t, dir)
}

// TestBackupRefuses: an existing file is kept unless overwrite, the database
// itself is never a destination, and an absent database is not created.
func TestBackupRefuses(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keygate.db")
	s := openTemp(t, path)
	backendtest.MustApply(t, s, store.KeyChange{Inserts: []store.Key{testKey(t, store.KeyActive, backendtest.T0)}})

	dest := filepath.Join(dir, "existing")
	if err := os.WriteFile(dest, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Backup(t.Context(), path, dest, false); !errors.Is(err, fs.ErrExist) {
		t.Errorf("backup over an existing file: %v, want fs.ErrExist", err)
	}
	if b, _ := os.ReadFile(dest); string(b) != "keep me" {
		t.Errorf("existing file changed: %q", b)
	}
	if info, err := Backup(t.Context(), path, dest, true); err != nil || info.KeySetVersion != 1 {
		t.Errorf("backup with overwrite: %+v, %v", info, err)
	}

	if _, err := Backup(t.Context(), path, path, true); err == nil {
		t.Error("backup onto the database itself succeeded")
	}
	if v, err := s.KeySetVersion(t.Context()); err != nil || v != 1 {
		t.Errorf("database after backup onto itself: version %d, %v", v, err)
	}

	absent := filepath.Join(dir, "absent", "keygate.db")
	if _, err := Backup(t.Context(), absent, filepath.Join(dir, "b2"), false); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("backup of an absent database: %v, want fs.ErrNotExist", err)
	}
	for _, p := range []string{absent, filepath.Dir(absent), filepath.Join(dir, "b2")} {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s exists after backing up an absent database", p)
		}
	}

	notDB := filepath.Join(dir, "empty.db") // an empty file is an empty SQLite database
	if err := os.WriteFile(notDB, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Backup(t.Context(), notDB, filepath.Join(dir, "b3"), false); err == nil {
		t.Error("backup of a database without a key set succeeded")
	}
	if _, err := os.Stat(filepath.Join(dir, "b3")); !errors.Is(err, fs.ErrNotExist) {
		t.Error("a failed backup left its file")
	}
	noTempFiles(t, dir)
}

func noTempFiles(t *testing.T, dir string) {
	t.Helper()
	tmps, _ := filepath.Glob(filepath.Join(dir, ".*.tmp-*"))
	if len(tmps) != 0 {
		t.Errorf("temporary files left: %v", tmps)
	}
}
