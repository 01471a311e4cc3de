package idp

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/keygate/keygate/jwks"
	"github.com/keygate/keygate/store/sqlite"
)

// TempStore opens a new SQLite store in a file under t.TempDir, failing the
// test if it cannot, and closes it when the test and its cleanups are done.
func TempStore(t *testing.T) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "k.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// StubSigner stands in for the key set in tests of what signs nothing
// (passwords, sessions, the directory): every signature fails.
var StubSigner Signer = stubSigner{}

type stubSigner struct{}

func (stubSigner) Sign([]byte, string) (string, error) {
	return "", errors.New("no signing key in this test")
}
func (stubSigner) KeySet() *jwks.Document { return nil }

// ClientCacheLen is how many stored clients d's cache holds.
func ClientCacheLen(d *Directory) int {
	if d.cache == nil {
		return -1
	}
	d.cache.mu.Lock()
	defer d.cache.mu.Unlock()
	return len(d.cache.m)
}
