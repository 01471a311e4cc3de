package storetest

import (
	"context"
	"errors"
	"testing"

	"github.com/keygate/keygate/store"
)

// The generic helpers below are the one shape of "read a record and compare
// it" that every part of the contract suite needs; the per-record helpers
// (getClient, checkSession, …) are these with the record's method and diff.

// mustGet returns what get gives for key, failing the test now if it fails;
// call names the method in the message.
func mustGet[K, T any](t *testing.T, call string, get func(context.Context, K) (T, error), key K) T {
	t.Helper()
	v, err := get(t.Context(), key)
	if err != nil {
		t.Fatalf("%s(%v): %v", call, key, err)
	}
	return v
}

// mustList returns what list gives, failing the test now if it fails.
func mustList[T any](t *testing.T, call string, list func(context.Context) ([]T, error)) []T {
	t.Helper()
	v, err := list(t.Context())
	if err != nil {
		t.Fatalf("%s: %v", call, err)
	}
	return v
}

// checkStored fails the test unless get gives, for key, a record with no
// diff from want; what names the record in the message ("session s1"). A
// failed read is reported and the test goes on.
func checkStored[K, T any](t *testing.T, call string, get func(context.Context, K) (T, error), key K, want T, diff func(got, want T) string, what string) {
	t.Helper()
	got, err := get(t.Context(), key)
	if err != nil {
		t.Errorf("%s(%v): %v", call, key, err)
		return
	}
	if d := diff(got, want); d != "" {
		t.Errorf("%s: %s", what, d)
	}
}

// checkGone fails the test unless get answers ErrNotFound for key.
func checkGone[K, T any](t *testing.T, call string, get func(context.Context, K) (T, error), key K) {
	t.Helper()
	if _, err := get(t.Context(), key); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("%s(%v): %v, want ErrNotFound", call, key, err)
	}
}

// checkAll fails the test unless got holds exactly want, in order; what is
// the records' kind in messages ("client") and name gives one's name.
func checkAll[T any](t *testing.T, what string, got, want []T, diff func(got, want T) string, name func(T) string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d %ss, want %d", len(got), what, len(want))
	}
	for i := range got {
		if d := diff(got[i], want[i]); d != "" {
			t.Errorf("%s %d (%s): %s", what, i, name(want[i]), d)
		}
	}
}

// mustListOf returns what list gives for key, failing the test now if it
// fails and reporting a nil slice (the contract promises a non-nil one).
func mustListOf[K, T any](t *testing.T, call string, list func(context.Context, K) ([]T, error), key K) []T {
	t.Helper()
	v := mustGet(t, call, list, key)
	if v == nil {
		t.Errorf("%s(%v) = nil, want a non-nil slice", call, key)
	}
	return v
}
