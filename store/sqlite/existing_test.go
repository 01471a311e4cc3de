package sqlite

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestOpenExistingCreatesNothing: OpenExisting refuses a missing file (and
// its missing directory) and a file without Keygate's schema, with
// ErrNoDatabase and nothing written; it opens what Open created.
func TestOpenExistingCreatesNothing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "data", "keygate.db")
	if _, err := OpenExisting(ctx, path); !errors.Is(err, ErrNoDatabase) {
		t.Fatalf("missing file: %v", err)
	}
	if _, err := os.Stat(filepath.Dir(path)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("OpenExisting created the directory: %v", err)
	}
	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenExisting(ctx, empty); !errors.Is(err, ErrNoDatabase) {
		t.Fatalf("empty file: %v", err)
	}
	if fi, err := os.Stat(empty); err != nil || fi.Size() != 0 {
		t.Fatalf("OpenExisting wrote to the empty file: %v %v", fi, err)
	}
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = OpenExisting(ctx, path)
	if err != nil {
		t.Fatalf("OpenExisting after Open: %v", err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Error(err)
	}
	s.Close()
}
