// Package storetest is the contract every Keygate storage backend must meet
// (store.Store), written once as tests so that store/sqlite, store/postgres
// and any later backend behave the same way and the packages above them
// (rotation, idp) can rely on that behaviour rather than on one backend's
// quirks. Everything a backend's behaviour is judged by lives here; a
// backend's own tests keep only what is specific to it.
//
// A backend's tests call Run once with constructors of fresh, empty stores:
//
//	func TestContract(t *testing.T) {
//		storetest.Run(t, storetest.Backend{
//			Open: func(t *testing.T) store.Store { return openTemp(t, filepath.Join(t.TempDir(), "k.db")) },
//			OpenPair: func(t *testing.T) (store.Store, store.Store) {
//				path := filepath.Join(t.TempDir(), "k.db")
//				return openTemp(t, path), openTemp(t, path)
//			},
//		})
//	}
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/stampede"
	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/internal/backendtest"
)

// keyTests is the signing-key contract.
var keyTests = []any{
	testEmpty, testRoundTrip, testOrder, testNilSealed, testVersion, testChanges, testCanceledContext,
	testConcurrentInsertNext, testConcurrentPromote,
}

// base is a time with nanoseconds, so backends that round are caught.
var base = time.Date(2031, time.May, 17, 9, 41, 12, 123456789, time.UTC)

// randomBytes returns n bytes from crypto/rand.
func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("random bytes: %v", err)
	}
	return b
}

// newKey returns a key in state with random key material and a random kid
// shaped like an RFC 7638 thumbprint, with the times a key in that state has.
func newKey(t *testing.T, state store.KeyState, created time.Time) store.Key {
	t.Helper()
	k := store.Key{
		KID:        base64.RawURLEncoding.EncodeToString(randomBytes(t, 32)),
		Algorithm:  "RS256",
		State:      state,
		PublicDER:  randomBytes(t, 294),
		Sealed:     randomBytes(t, 1245),
		CreatedAt:  created,
		ActivateAt: created.Add(time.Hour),
	}
	switch state {
	case store.KeyRetired:
		k.RetiredAt = created.Add(48 * time.Hour)
		k.RemoveAfter = created.Add(72 * time.Hour)
	case store.KeyRevoked:
		k.Sealed = nil
		k.RetiredAt = created.Add(48 * time.Hour)
		k.RemoveAfter = created.Add(49 * time.Hour)
		k.RevokedAt = created.Add(48 * time.Hour)
	}
	return k
}

// apply, list and version apply a key change, list the keys and read the
// key-set version, failing the test on error.
var (
	apply   = backendtest.MustApply
	list    = backendtest.MustList
	version = backendtest.MustVersion
)

// sortKeys orders keys as ListKeys must: by CreatedAt, then KID.
func sortKeys(keys []store.Key) []store.Key {
	keys = slices.Clone(keys)
	slices.SortStableFunc(keys, func(a, b store.Key) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.KID, b.KID)
	})
	return keys
}

// keyDiff describes how got differs from want, or returns "" if they are equal
// as stored keys: times equal as instants (and in UTC when read back), an empty
// Sealed equal to a nil one.
func keyDiff(got, want store.Key) string {
	var d []string
	if got.KID != want.KID {
		d = append(d, fmt.Sprintf("KID %q, want %q", got.KID, want.KID))
	}
	if got.Algorithm != want.Algorithm {
		d = append(d, fmt.Sprintf("Algorithm %q, want %q", got.Algorithm, want.Algorithm))
	}
	if got.State != want.State {
		d = append(d, fmt.Sprintf("State %q, want %q", got.State, want.State))
	}
	if !bytes.Equal(got.PublicDER, want.PublicDER) {
		d = append(d, fmt.Sprintf("PublicDER differs (%d bytes, want %d)", len(got.PublicDER), len(want.PublicDER)))
	}
	if !bytes.Equal(got.Sealed, want.Sealed) { // nil and empty are equal
		d = append(d, fmt.Sprintf("Sealed differs (%d bytes, want %d)", len(got.Sealed), len(want.Sealed)))
	}
	for _, f := range []struct {
		name      string
		got, want time.Time
	}{
		{"CreatedAt", got.CreatedAt, want.CreatedAt},
		{"ActivateAt", got.ActivateAt, want.ActivateAt},
		{"RetiredAt", got.RetiredAt, want.RetiredAt},
		{"RemoveAfter", got.RemoveAfter, want.RemoveAfter},
		{"RevokedAt", got.RevokedAt, want.RevokedAt},
	} {
		switch {
		case f.want.IsZero() && !f.got.IsZero():
			d = append(d, fmt.Sprintf("%s %v, want zero", f.name, f.got))
		case f.want.IsZero():
		case !f.got.Equal(f.want):
			d = append(d, fmt.Sprintf("%s %v, want %v", f.name, f.got, f.want))
		case f.got.Location() != time.UTC:
			d = append(d, fmt.Sprintf("%s in location %v, want UTC", f.name, f.got.Location()))
		}
	}
	return strings.Join(d, "; ")
}

// checkKeys fails the test unless got holds exactly want, in ListKeys order.
func checkKeys(t *testing.T, got, want []store.Key) {
	t.Helper()
	want = sortKeys(want)
	if len(got) != len(want) {
		t.Errorf("got %d keys, want %d:\n got  %s\n want %s", len(got), len(want), kids(got), kids(want))
		return
	}
	for i := range got {
		if d := keyDiff(got[i], want[i]); d != "" {
			t.Errorf("key %d (%s): %s", i, want[i].KID, d)
		}
	}
}

// kids lists the keys' kids and states, for failure messages.
func kids(keys []store.Key) string {
	var s []string
	for _, k := range keys {
		s = append(s, fmt.Sprintf("%s(%s)", k.KID, k.State))
	}
	return "[" + strings.Join(s, " ") + "]"
}

func testEmpty(t *testing.T, s store.Store) {
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	checkNoKeys(t, s, "new store")
}

// checkNoKeys fails the test unless s holds no keys and is at version 0:
// nothing was ever applied to it.
func checkNoKeys(t *testing.T, s store.Store, when string) {
	t.Helper()
	if keys := list(t, s); len(keys) != 0 {
		t.Errorf("%s: keys %s, want none", when, kids(keys))
	}
	if v := version(t, s); v != 0 {
		t.Errorf("%s: version %d, want 0", when, v)
	}
}

func testRoundTrip(t *testing.T, s store.Store) {
	nyc := time.FixedZone("UTC-5", -5*60*60)
	cases := []struct {
		name string
		key  store.Key
	}{
		{"next, only created and activate set", newKey(t, store.KeyNext, base)},
		{"active, all times zero but created", func() store.Key {
			k := newKey(t, store.KeyActive, base.Add(time.Nanosecond))
			k.ActivateAt = time.Time{}
			return k
		}()},
		{"retired, every time set with distinct nanoseconds", func() store.Key {
			k := newKey(t, store.KeyRetired, base.Add(2*time.Nanosecond))
			k.ActivateAt = base.Add(time.Hour + 7)
			k.RetiredAt = base.Add(48*time.Hour + 11)
			k.RemoveAfter = base.Add(72*time.Hour + 13)
			k.RevokedAt = base.Add(96*time.Hour + 17)
			return k
		}()},
		{"revoked, times in another zone and far future", func() store.Key {
			k := newKey(t, store.KeyRevoked, base.Add(3*time.Nanosecond).In(nyc))
			k.RevokedAt = time.Date(2199, time.December, 31, 23, 59, 59, 999999999, nyc)
			k.RemoveAfter = time.Date(1999, time.January, 1, 0, 0, 0, 1, time.UTC)
			return k
		}()},
		{"zero created time", func() store.Key {
			k := newKey(t, store.KeyRetired, time.Time{})
			k.ActivateAt = time.Time{}
			k.RetiredAt, k.RemoveAfter = base.Add(time.Hour), base.Add(2*time.Hour)
			return k
		}()},
		{"large blobs", func() store.Key {
			k := newKey(t, store.KeyRetired, base.Add(4*time.Nanosecond))
			k.PublicDER = randomBytes(t, 64<<10)
			k.Sealed = randomBytes(t, 256<<10)
			return k
		}()},
		{"other algorithm", func() store.Key {
			k := newKey(t, store.KeyRetired, base.Add(5*time.Nanosecond))
			k.Algorithm = "ES256"
			return k
		}()},
	}
	var all []store.Key
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := version(t, s)
			apply(t, s, store.KeyChange{Inserts: []store.Key{c.key}})
			if v := version(t, s); v != before+1 {
				t.Errorf("version %d after insert, want %d", v, before+1)
			}
			all = append(all, c.key)
			checkKeys(t, list(t, s), all)
		})
	}
}

func testOrder(t *testing.T, s store.Store) {
	// Inserted out of order: later creation first, and kids in reverse among
	// keys created at the same instant.
	var keys []store.Key
	for i := range 6 {
		k := newKey(t, store.KeyRetired, base.Add(time.Duration(2-i/2)*time.Nanosecond))
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b store.Key) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(b.KID, a.KID)
	})
	apply(t, s, store.KeyChange{Inserts: keys})
	got := list(t, s)
	checkKeys(t, got, keys) // checkKeys expects ListKeys order
}

func testNilSealed(t *testing.T, s store.Store) {
	revoked := newKey(t, store.KeyRevoked, base)
	revoked.Sealed = nil
	emptySealed := newKey(t, store.KeyRevoked, base.Add(time.Second))
	emptySealed.Sealed = []byte{}
	apply(t, s, store.KeyChange{Inserts: []store.Key{revoked, emptySealed}})
	for _, k := range list(t, s) {
		if len(k.Sealed) != 0 {
			t.Errorf("key %s: Sealed is %d bytes, want none", k.KID, len(k.Sealed))
		}
	}

	// Revoking erases the sealed private half through an update.
	active := newKey(t, store.KeyActive, base.Add(2*time.Second))
	apply(t, s, store.KeyChange{Inserts: []store.Key{active}})
	gone := active
	gone.State = store.KeyRevoked
	gone.Sealed = nil
	gone.RevokedAt = base.Add(3 * time.Second)
	apply(t, s, store.KeyChange{Updates: []store.KeyUpdate{{Key: gone, From: store.KeyActive}}})
	checkKeys(t, list(t, s), []store.Key{revoked, emptySealed, gone})
}

func testVersion(t *testing.T, s store.Store) {
	active := newKey(t, store.KeyActive, base)
	next := newKey(t, store.KeyNext, base.Add(time.Second))
	retire := active
	retire.State, retire.RetiredAt, retire.RemoveAfter = store.KeyRetired, base.Add(time.Hour), base.Add(2*time.Hour)
	promote := next
	promote.State = store.KeyActive
	newNext := newKey(t, store.KeyNext, base.Add(2*time.Second))

	steps := []struct {
		name   string
		change store.KeyChange
		bump   int64
	}{
		{"empty change", store.KeyChange{}, 0},
		{"empty non-nil slices", store.KeyChange{Updates: []store.KeyUpdate{}, Deletes: []store.KeyDelete{}, Inserts: []store.Key{}}, 0},
		{"insert two keys", store.KeyChange{Inserts: []store.Key{active, next}}, 1},
		{"rotate: retire, promote, insert", store.KeyChange{
			Updates: []store.KeyUpdate{{Key: retire, From: store.KeyActive}, {Key: promote, From: store.KeyNext}},
			Inserts: []store.Key{newNext},
		}, 1},
		{"delete retired", store.KeyChange{Deletes: []store.KeyDelete{{KID: retire.KID, From: store.KeyRetired}}}, 1},
		{"empty change again", store.KeyChange{}, 0},
	}
	for _, st := range steps {
		before := version(t, s)
		apply(t, s, st.change)
		if v := version(t, s); v != before+st.bump {
			t.Errorf("%s: version %d -> %d, want %d", st.name, before, v, before+st.bump)
		}
	}
	checkKeys(t, list(t, s), []store.Key{promote, newNext})
}

// fixture is a store holding one key in each state.
type fixture struct {
	active, next, retired, revoked store.Key
}

// seed fills s with one key in each state.
func seed(t *testing.T, s store.Store) fixture {
	t.Helper()
	f := fixture{
		retired: newKey(t, store.KeyRetired, base),
		revoked: newKey(t, store.KeyRevoked, base.Add(time.Minute)),
		active:  newKey(t, store.KeyActive, base.Add(2*time.Minute)),
		next:    newKey(t, store.KeyNext, base.Add(3*time.Minute)),
	}
	apply(t, s, store.KeyChange{Inserts: f.all()})
	return f
}

func (f fixture) all() []store.Key { return []store.Key{f.retired, f.revoked, f.active, f.next} }

// with returns k changed to state with the given times set; other fields keep.
func with(k store.Key, state store.KeyState, edit func(*store.Key)) store.Key {
	k.State = state
	if edit != nil {
		edit(&k)
	}
	return k
}

// retireActive is the update that retires f.active.
func (f fixture) retireActive() store.KeyUpdate {
	return store.KeyUpdate{From: store.KeyActive, Key: with(f.active, store.KeyRetired, func(k *store.Key) {
		k.RetiredAt, k.RemoveAfter = base.Add(time.Hour), base.Add(25*time.Hour)
	})}
}

// promoteNext is the update that makes f.next the active key.
func (f fixture) promoteNext() store.KeyUpdate {
	return store.KeyUpdate{From: store.KeyNext, Key: with(f.next, store.KeyActive, func(k *store.Key) {
		k.ActivateAt = base.Add(time.Hour)
	})}
}

// insertNew is the change that inserts a new key in state st.
func insertNew(st store.KeyState) func(t *testing.T, f fixture) store.KeyChange {
	return func(t *testing.T, f fixture) store.KeyChange {
		return store.KeyChange{Inserts: []store.Key{newKey(t, st, base)}}
	}
}

// retiredTo is the change that moves the fixture's retired key to state st.
func retiredTo(st store.KeyState) func(t *testing.T, f fixture) store.KeyChange {
	return func(t *testing.T, f fixture) store.KeyChange {
		return store.KeyChange{Updates: []store.KeyUpdate{{Key: with(f.retired, st, nil), From: store.KeyRetired}}}
	}
}

func testChanges(t *testing.T, open func(t *testing.T) store.Store) {
	cases := []struct {
		name   string
		change func(t *testing.T, f fixture) store.KeyChange
		// want is the key set after a successful change; nil means the change
		// must fail with store.ErrConflict and leave the store untouched.
		want func(f fixture, c store.KeyChange) []store.Key
	}{
		{
			name: "rotate: retire active, promote next, insert new next",
			change: func(t *testing.T, f fixture) store.KeyChange {
				return store.KeyChange{
					Updates: []store.KeyUpdate{f.retireActive(), f.promoteNext()},
					Inserts: []store.Key{newKey(t, store.KeyNext, base.Add(time.Hour))},
				}
			},
			want: func(f fixture, c store.KeyChange) []store.Key {
				return []store.Key{f.retired, f.revoked, c.Updates[0].Key, c.Updates[1].Key, c.Inserts[0]}
			},
		},
		{
			name: "update replaces every mutable field and no immutable one",
			change: func(t *testing.T, f fixture) store.KeyChange {
				k := f.retired
				k.State = store.KeyRevoked
				k.Sealed = randomBytes(t, 99) // a backend stores what it is given
				k.ActivateAt = time.Time{}    // non-zero to zero
				k.RetiredAt = base.Add(11 * time.Nanosecond)
				k.RemoveAfter = base.Add(12 * time.Nanosecond)
				k.RevokedAt = base.Add(13 * time.Nanosecond) // zero to non-zero
				// Immutable fields: must be ignored.
				k.Algorithm = "none"
				k.PublicDER = randomBytes(t, 10)
				k.CreatedAt = base.Add(-time.Hour)
				return store.KeyChange{Updates: []store.KeyUpdate{{Key: k, From: store.KeyRetired}}}
			},
			want: func(f fixture, c store.KeyChange) []store.Key {
				k := c.Updates[0].Key
				k.Algorithm, k.PublicDER, k.CreatedAt = f.retired.Algorithm, f.retired.PublicDER, f.retired.CreatedAt
				return []store.Key{k, f.revoked, f.active, f.next}
			},
		},
		{
			name: "updates applied in order, same key twice",
			change: func(t *testing.T, f fixture) store.KeyChange {
				first := with(f.retired, store.KeyNext, func(k *store.Key) { k.RetiredAt = time.Time{} })
				second := with(first, store.KeyRevoked, func(k *store.Key) { k.Sealed, k.RevokedAt = nil, base.Add(2*time.Hour) })
				// Each update relies on the one before it: the first frees the
				// next slot the second takes, and the third finds the state the
				// second left.
				return store.KeyChange{Updates: []store.KeyUpdate{
					{Key: with(f.next, store.KeyRetired, nil), From: store.KeyNext},
					{Key: first, From: store.KeyRetired},
					{Key: second, From: store.KeyNext},
				}}
			},
			want: func(f fixture, c store.KeyChange) []store.Key {
				return []store.Key{c.Updates[2].Key, f.revoked, f.active, c.Updates[0].Key}
			},
		},
		{
			name: "delete from the right state",
			change: func(t *testing.T, f fixture) store.KeyChange {
				return store.KeyChange{Deletes: []store.KeyDelete{
					{KID: f.retired.KID, From: store.KeyRetired},
					{KID: f.revoked.KID, From: store.KeyRevoked},
				}}
			},
			want: func(f fixture, c store.KeyChange) []store.Key { return []store.Key{f.active, f.next} },
		},
		{
			name: "delete then reinsert the same kid",
			change: func(t *testing.T, f fixture) store.KeyChange {
				return store.KeyChange{
					Deletes: []store.KeyDelete{{KID: f.retired.KID, From: store.KeyRetired}},
					Inserts: []store.Key{with(f.retired, store.KeyRevoked, func(k *store.Key) {
						k.Sealed, k.RevokedAt = nil, base.Add(time.Hour)
					})},
				}
			},
			want: func(f fixture, c store.KeyChange) []store.Key {
				return []store.Key{c.Inserts[0], f.revoked, f.active, f.next}
			},
		},
		{
			name: "update from the wrong state",
			change: func(t *testing.T, f fixture) store.KeyChange {
				u := f.promoteNext()
				u.From = store.KeyRetired
				return store.KeyChange{Updates: []store.KeyUpdate{u}}
			},
		},
		{
			name: "update of a missing key",
			change: func(t *testing.T, f fixture) store.KeyChange {
				return store.KeyChange{Updates: []store.KeyUpdate{{Key: newKey(t, store.KeyRetired, base), From: store.KeyActive}}}
			},
		},
		{
			name: "good update then bad update",
			change: func(t *testing.T, f fixture) store.KeyChange {
				bad := f.promoteNext()
				bad.From = store.KeyActive
				return store.KeyChange{Updates: []store.KeyUpdate{f.retireActive(), bad}}
			},
		},
		{
			name: "good update then bad delete",
			change: func(t *testing.T, f fixture) store.KeyChange {
				return store.KeyChange{
					Updates: []store.KeyUpdate{f.retireActive(), f.promoteNext()},
					Deletes: []store.KeyDelete{{KID: f.retired.KID, From: store.KeyActive}},
				}
			},
		},
		{
			name: "good update and delete then duplicate insert",
			change: func(t *testing.T, f fixture) store.KeyChange {
				return store.KeyChange{
					Updates: []store.KeyUpdate{f.retireActive()},
					Deletes: []store.KeyDelete{{KID: f.revoked.KID, From: store.KeyRevoked}},
					Inserts: []store.Key{newKey(t, store.KeyRetired, base), f.next},
				}
			},
		},
		{
			name: "delete from the wrong state",
			change: func(t *testing.T, f fixture) store.KeyChange {
				return store.KeyChange{Deletes: []store.KeyDelete{{KID: f.active.KID, From: store.KeyRetired}}}
			},
		},
		{
			name: "delete of a missing key",
			change: func(t *testing.T, f fixture) store.KeyChange {
				return store.KeyChange{Deletes: []store.KeyDelete{{KID: newKey(t, store.KeyRetired, base).KID, From: store.KeyRetired}}}
			},
		},
		{
			name: "same key deleted twice",
			change: func(t *testing.T, f fixture) store.KeyChange {
				d := store.KeyDelete{KID: f.retired.KID, From: store.KeyRetired}
				return store.KeyChange{Deletes: []store.KeyDelete{d, d}}
			},
		},
		{name: "insert a second active key", change: insertNew(store.KeyActive)},
		{name: "update a retired key to a second active key", change: retiredTo(store.KeyActive)},
		{name: "insert a second next key", change: insertNew(store.KeyNext)},
		{name: "update a retired key to a second next key", change: retiredTo(store.KeyNext)},
		{
			name: "insert a duplicate kid",
			change: func(t *testing.T, f fixture) store.KeyChange {
				dup := newKey(t, store.KeyRetired, base)
				dup.KID = f.revoked.KID
				return store.KeyChange{Inserts: []store.Key{dup}}
			},
		},
		{
			name: "insert the same new key twice",
			change: func(t *testing.T, f fixture) store.KeyChange {
				k := newKey(t, store.KeyRetired, base)
				return store.KeyChange{Inserts: []store.Key{k, k}}
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := open(t)
			f := seed(t, s)
			change := c.change(t, f)
			before := version(t, s)
			err := s.ApplyKeyChange(t.Context(), change)
			if c.want == nil {
				if !errors.Is(err, store.ErrConflict) {
					t.Fatalf("ApplyKeyChange: got error %v, want store.ErrConflict", err)
				}
				checkKeys(t, list(t, s), f.all())
				if v := version(t, s); v != before {
					t.Errorf("version %d after a failed change, want %d", v, before)
				}
				return
			}
			if err != nil {
				t.Fatalf("ApplyKeyChange: %v", err)
			}
			checkKeys(t, list(t, s), c.want(f, change))
			if v := version(t, s); v != before+1 {
				t.Errorf("version %d after a change, want %d", v, before+1)
			}
		})
	}
}

func testCanceledContext(t *testing.T, s store.Store) {
	f := seed(t, s)
	before := version(t, s)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := s.ApplyKeyChange(ctx, store.KeyChange{Updates: []store.KeyUpdate{f.retireActive(), f.promoteNext()}})
	if err == nil {
		t.Fatal("ApplyKeyChange with a canceled context succeeded, want an error")
	}
	checkKeys(t, list(t, s), f.all())
	if v := version(t, s); v != before {
		t.Errorf("version %d after a canceled change, want %d", v, before)
	}
}

// race runs n copies of do at once and returns their errors.
func race(n int, do func(i int) error) []error { return stampede.Run(n, do) }

// checkOneWinner fails the test unless exactly one of errs is nil and every
// other is store.ErrConflict, and returns the winner's index.
func checkOneWinner(t *testing.T, errs []error) int {
	t.Helper()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("appliers %d and %d both succeeded, want exactly one", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, store.ErrConflict):
			t.Errorf("applier %d: got error %v, want store.ErrConflict", i, err)
		}
	}
	if winner < 0 {
		t.Fatalf("no applier succeeded, want exactly one")
	}
	return winner
}

const racers = 8

func testConcurrentInsertNext(t *testing.T, s store.Store) {
	keys := make([]store.Key, racers)
	for i := range keys {
		keys[i] = newKey(t, store.KeyNext, base.Add(time.Duration(i)*time.Second))
	}
	errs := race(racers, func(i int) error {
		return s.ApplyKeyChange(t.Context(), store.KeyChange{Inserts: []store.Key{keys[i]}})
	})
	w := checkOneWinner(t, errs)
	checkKeys(t, list(t, s), []store.Key{keys[w]})
	if v := version(t, s); v != 1 {
		t.Errorf("version %d after one successful change, want 1", v)
	}
}

func testConcurrentPromote(t *testing.T, s store.Store) {
	f := seed(t, s)
	before := version(t, s)
	news := make([]store.Key, racers)
	for i := range news {
		news[i] = newKey(t, store.KeyNext, base.Add(time.Duration(i)*time.Hour))
	}
	// Every racer read the same key set and decides the same rotation, each
	// with its own new next key: only one rotation may happen.
	errs := race(racers, func(i int) error {
		return s.ApplyKeyChange(t.Context(), store.KeyChange{
			Updates: []store.KeyUpdate{f.retireActive(), f.promoteNext()},
			Inserts: []store.Key{news[i]},
		})
	})
	w := checkOneWinner(t, errs)
	checkKeys(t, list(t, s), []store.Key{f.retired, f.revoked, f.retireActive().Key, f.promoteNext().Key, news[w]})
	if v := version(t, s); v != before+1 {
		t.Errorf("version %d after one successful change, want %d", v, before+1)
	}
}
