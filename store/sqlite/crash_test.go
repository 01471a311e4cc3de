//go:build keygate_faults

package sqlite

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/faults"
	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/internal/backendtest"
)

// crashChildEnv names the database a re-executed test binary works on.
const crashChildEnv = "KEYGATE_SQLITE_CRASH_DB"

// crashRotation is the change the child applies: retire the active key, promote
// the next one, insert a new next key, all derived from what is stored.
func crashRotation(t *testing.T, s *Store) store.KeyChange {
	t.Helper()
	var c store.KeyChange
	for _, k := range backendtest.MustList(t, s) {
		switch k.State {
		case store.KeyActive:
			k.State, k.RetiredAt, k.RemoveAfter = store.KeyRetired, backendtest.T0.Add(time.Hour), backendtest.T0.Add(2*time.Hour)
			c.Updates = append([]store.KeyUpdate{{Key: k, From: store.KeyActive}}, c.Updates...)
		case store.KeyNext:
			k.State = store.KeyActive
			c.Updates = append(c.Updates, store.KeyUpdate{Key: k, From: store.KeyNext})
		}
	}
	c.Inserts = []store.Key{testKey(t, store.KeyNext, backendtest.T0.Add(time.Minute))}
	return c
}

// TestCrashBeforeCommit kills a process applying a key change just before it
// commits, and checks that the database reopens with the change wholly absent;
// then that the same change applies cleanly without the fault.
func TestCrashBeforeCommit(t *testing.T) {
	if path := os.Getenv(crashChildEnv); path != "" {
		s, err := Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		backendtest.MustApply(t, s, crashRotation(t, s))
		return // reached only when no fault is set
	}

	path := filepath.Join(t.TempDir(), "keygate.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	backendtest.MustApply(t, s, store.KeyChange{Inserts: []store.Key{
		testKey(t, store.KeyActive, backendtest.T0), testKey(t, store.KeyNext, backendtest.T0.Add(time.Second)),
	}})
	before := backendtest.MustList(t, s)
	// Keep this Store open, as a server would, while the CLI dies.

	child := func(fault string) error {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashBeforeCommit$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+path, faults.EnvVar+"="+fault)
		out, err := cmd.CombinedOutput()
		if err != nil && len(out) > 0 {
			t.Logf("child output:\n%s", out)
		}
		return err
	}

	err = child(FaultBeforeCommit)
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) {
		t.Fatalf("child with fault: %v, want death by SIGKILL", err)
	}
	if ws, ok := exitErr.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child with fault: %v, want death by SIGKILL", exitErr)
	}

	// The surviving Store sees nothing of the change and can still write.
	sameKeys(t, backendtest.MustList(t, s), before)
	if v := backendtest.MustVersion(t, s); v != 1 {
		t.Errorf("version %d after a crashed change, want 1", v)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// A fresh Open (recovery from the dead process's WAL) agrees.
	s = openTemp(t, path)
	sameKeys(t, backendtest.MustList(t, s), before)

	if err := child(""); err != nil {
		t.Fatalf("child without fault: %v", err)
	}
	if v := backendtest.MustVersion(t, s); v != 2 {
		t.Errorf("version %d after the change, want 2", v)
	}
	keys := backendtest.MustList(t, s)
	states := map[store.KeyState]int{}
	for _, k := range keys {
		states[k.State]++
	}
	if len(keys) != 3 || states[store.KeyActive] != 1 || states[store.KeyNext] != 1 || states[store.KeyRetired] != 1 {
		t.Errorf("after rotation: %d keys with states %v, want one each of active, next, retired", len(keys), states)
	}
}
