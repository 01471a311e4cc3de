// Package backendtest holds the test helpers that the SQL backends' own tests
// (store/sqlite and store/postgres) share; the shared storage contract itself
// is store/storetest.
package backendtest

import (
	"io"
	"testing"
	"time"

	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/internal/migrations"
)

// T0 is a fixed instant with a nonzero nanosecond part, the base time of the
// backends' key tests.
var T0 = time.Date(2030, time.January, 2, 3, 4, 5, 6, time.UTC)

// Open opens a store with open, failing the test if that fails, and closes it
// when the test ends, failing the test if closing fails.
func Open[S io.Closer](t *testing.T, open func() (S, error)) S {
	t.Helper()
	s, err := open()
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// MustApply applies c to s, failing the test if that fails.
func MustApply(t *testing.T, s store.Store, c store.KeyChange) {
	t.Helper()
	if err := s.ApplyKeyChange(t.Context(), c); err != nil {
		t.Fatalf("ApplyKeyChange: %v", err)
	}
}

// MustList returns s's keys, failing the test if listing fails.
func MustList(t *testing.T, s store.Store) []store.Key {
	t.Helper()
	keys, err := s.ListKeys(t.Context())
	return Must(t, "ListKeys", keys, err)
}

// MustVersion returns s's key-set version, failing the test if reading it
// fails.
func MustVersion(t *testing.T, s store.Store) int64 {
	t.Helper()
	v, err := s.KeySetVersion(t.Context())
	return Must(t, "KeySetVersion", v, err)
}

// Must returns v, failing the test with call and err if err is not nil.
func Must[T any](t *testing.T, call string, v T, err error) T {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", call, err)
	}
	return v
}

// Versions returns the versions of ms, in order: 1..N for a well-formed set.
func Versions(ms []migrations.Migration) []int64 {
	var vs []int64
	for _, m := range ms {
		vs = append(vs, m.Version)
	}
	return vs
}
