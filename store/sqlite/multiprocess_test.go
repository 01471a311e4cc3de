package sqlite

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/internal/backendtest"
)

// multiChildEnv names the database a re-executed test binary works on.
const multiChildEnv = "KEYGATE_SQLITE_MULTI_DB"

// Exit codes of the child in TestMultiProcess.
const (
	exitInserted = 0
	exitConflict = 3
	exitFailed   = 4
)

// TestMultiProcess starts several real processes on one new database file at
// once, as a server and CLI invocations would: each opens it (so migrations race)
// and tries to insert a next key. Every Open must succeed and exactly one insert
// must win, the others failing with store.ErrConflict.
func TestMultiProcess(t *testing.T) {
	if path := os.Getenv(multiChildEnv); path != "" {
		os.Exit(multiChild(t, path))
	}
	if testing.Short() {
		t.Skip("starts processes")
	}

	path := filepath.Join(t.TempDir(), "keygate.db")
	const n = 4
	codes := make([]int, n)
	outs := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			cmd := exec.Command(os.Args[0], "-test.run=^TestMultiProcess$", "-test.count=1")
			cmd.Env = append(os.Environ(), multiChildEnv+"="+path)
			out, err := cmd.CombinedOutput()
			outs[i] = out
			var exitErr *exec.ExitError
			switch {
			case err == nil:
				codes[i] = exitInserted
			case errors.As(err, &exitErr):
				codes[i] = exitErr.ExitCode()
			default:
				codes[i] = -1
				outs[i] = fmt.Appendf(out, "\nstart: %v", err)
			}
		})
	}
	wg.Wait()

	inserted := 0
	for i, code := range codes {
		switch code {
		case exitInserted:
			inserted++
		case exitConflict:
		default:
			t.Errorf("child %d: exit code %d, output:\n%s", i, code, outs[i])
		}
	}
	if inserted != 1 {
		t.Errorf("%d children inserted a next key, want exactly 1", inserted)
	}
	s := openTemp(t, path)
	if got, want := appliedVersions(t, s), wantVersions(t); !equalInts(got, want) {
		t.Errorf("schema_migrations %v, want %v", got, want)
	}
	if keys := backendtest.MustList(t, s); len(keys) != 1 {
		t.Errorf("%d keys stored, want 1", len(keys))
	}
	if v := backendtest.MustVersion(t, s); v != 1 {
		t.Errorf("version %d, want 1", v)
	}
}

// multiChild is the child process of TestMultiProcess; it returns its exit code.
func multiChild(t *testing.T, path string) int {
	s, err := Open(t.Context(), path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return exitFailed
	}
	defer s.Close()
	err = s.ApplyKeyChange(t.Context(), store.KeyChange{Inserts: []store.Key{testKey(t, store.KeyNext, backendtest.T0)}})
	switch {
	case err == nil:
		return exitInserted
	case errors.Is(err, store.ErrConflict):
		return exitConflict
	default:
		fmt.Fprintln(os.Stderr, err)
		return exitFailed
	}
}
