package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/store"
)

// Backend is what the contract needs from a backend's tests.
type Backend struct {
	// Open returns a new store that is empty and shares nothing with any
	// other; it is responsible for cleaning it up (t.Cleanup).
	Open func(t *testing.T) store.Store
	// OpenPair returns two stores on one new, empty database, standing for
	// two processes (replicas, or the server and the CLI) sharing it.
	OpenPair func(t *testing.T) (store.Store, store.Store)
}

// runTests runs each of tests, in order, as a subtest named after the
// function without its "test" prefix. A test is either a
// func(*testing.T, store.Store), given one new, empty store, or a
// func(*testing.T, func(*testing.T) store.Store), given open to call for as
// many stores as it needs. Each call to open must return a new store that is
// empty and shares nothing with any other; open is responsible for cleaning
// it up (t.Cleanup).
func runTests(t *testing.T, open func(t *testing.T) store.Store, tests ...any) {
	for _, test := range tests {
		full := runtime.FuncForPC(reflect.ValueOf(test).Pointer()).Name()
		name := strings.TrimPrefix(full[strings.LastIndex(full, ".")+1:], "test")
		t.Run(name, func(t *testing.T) {
			switch f := test.(type) {
			case func(*testing.T, store.Store):
				f(t, open(t))
			case func(*testing.T, func(*testing.T) store.Store):
				f(t, open)
			default:
				t.Fatalf("storetest: %s is not a contract test", full)
			}
		})
	}
}

// Run runs the whole storage contract against b: every behaviour of
// store.Store that callers rely on, whatever the backend. A backend's own
// tests call it once and keep only what is specific to the backend
// (migrations, driver settings, crash safety, notifications).
func Run(t *testing.T, b Backend) {
	t.Run("KeyStore", func(t *testing.T) { runTests(t, b.Open, keyTests...) })
	t.Run("IdentityStore", func(t *testing.T) { runTests(t, b.Open, identityTests...) })
	t.Run("BrowserStore", func(t *testing.T) { runTests(t, b.Open, browserTests...) })
	t.Run("ConsentStore", func(t *testing.T) { runTests(t, b.Open, consentTests...) })
	t.Run("DeviceStore", func(t *testing.T) { runTests(t, b.Open, deviceTests...) })
	t.Run("PasskeyStore", func(t *testing.T) { runTests(t, b.Open, passkeyTests...) })
	t.Run("SecondFactorStore", func(t *testing.T) { runTests(t, b.Open, secondFactorTests...) })
	t.Run("UnstorableKeys", func(t *testing.T) { testUnstorableKeys(t, b.Open(t)) })
	t.Run("UnstorableIdentityInput", func(t *testing.T) { testUnstorableIdentityInput(t, b.Open(t)) })
	t.Run("RedeemTellsExpiryFromReuse", func(t *testing.T) { testRedeemTellsExpiryFromReuse(t, b.Open(t)) })
	t.Run("Lease", func(t *testing.T) { testLease(t, b.Open(t)) })
	t.Run("LeaseConcurrent", func(t *testing.T) { testLeaseConcurrent(t, pair(b.OpenPair(t))) })
	t.Run("KeysAcrossStores", func(t *testing.T) { testKeysAcrossStores(t, pair(b.OpenPair(t))) })
	t.Run("RotateAcrossStores", func(t *testing.T) { testRotateAcrossStores(t, pair(b.OpenPair(t))) })
	t.Run("RedeemAcrossStores", func(t *testing.T) { testRedeemAcrossStores(t, pair(b.OpenPair(t))) })
	t.Run("TouchAcrossStores", func(t *testing.T) { testTouchAcrossStores(t, pair(b.OpenPair(t))) })
	t.Run("DPoPProofAcrossStores", func(t *testing.T) { testDPoPProofAcrossStores(t, pair(b.OpenPair(t))) })
	t.Run("LastAdminConcurrent", func(t *testing.T) { testLastAdminConcurrent(t, b.OpenPair) })
	t.Run("CheckWritable", func(t *testing.T) { testCheckWritable(t, pair(b.OpenPair(t))) })
}

func pair(a, b store.Store) []store.Store { return []store.Store{a, b} }

// testUnstorableKeys checks that keys the schema cannot hold faithfully are
// refused with a plain error (not a conflict) and write nothing.
func testUnstorableKeys(t *testing.T, s store.Store) {
	good := newKey(t, store.KeyRetired, base)
	cases := map[string]func(k *store.Key){
		"time before 1678": func(k *store.Key) { k.RetiredAt = time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC) },
		"time after 2262":  func(k *store.Key) { k.RemoveAfter = time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC) },
		"the Unix epoch":   func(k *store.Key) { k.RevokedAt = time.Unix(0, 0) },
		"empty kid":        func(k *store.Key) { k.KID = "" },
		"unknown state":    func(k *store.Key) { k.State = "pending" },
		"empty public key": func(k *store.Key) { k.PublicDER = nil },
	}
	for name, edit := range cases {
		t.Run(name, func(t *testing.T) {
			bad := newKey(t, store.KeyRetired, base)
			edit(&bad)
			err := s.ApplyKeyChange(t.Context(), store.KeyChange{Inserts: []store.Key{good, bad}})
			if err == nil || errors.Is(err, store.ErrConflict) {
				t.Fatalf("ApplyKeyChange: %v, want a non-conflict error", err)
			}
			checkNoKeys(t, s, "after a refused change")
		})
	}
}

// testUnstorableIdentityInput checks that identity values the schema cannot
// hold faithfully are refused with a plain error and write nothing.
func testUnstorableIdentityInput(t *testing.T, s store.Store) {
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
			return s.CreateRefreshToken(t.Context(), store.RefreshToken{ID: "r", FamilyID: "f", ExpiresAt: base, Audience: []string{"\xff"}})
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
	if cs := listClients(t, s); len(cs) != 0 {
		t.Errorf("%d clients after refused writes", len(cs))
	}
	if us := listUsers(t, s); len(us) != 0 {
		t.Errorf("%d users after refused writes", len(us))
	}
	checkNoLink(t, s, "r")
	if isRevoked(t, s, "j") {
		t.Error("access token j on the deny list after a refused revocation")
	}
}

// testRedeemTellsExpiryFromReuse checks the reasons a redemption fails, which
// the caller acts on: a used code is a conflict that names its use, an
// expired one a conflict that names its expiry.
func testRedeemTellsExpiryFromReuse(t *testing.T, s store.Store) {
	ctx := t.Context()
	used, expired := newCode(t, base), newCode(t, base)
	for _, c := range []store.AuthCode{used, expired} {
		createCode(t, s, c)
	}
	now := base.Add(time.Second)
	if _, err := s.RedeemAuthCode(ctx, used.ID, now, "", "jti-1", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		which, id, want string
		now             time.Time
	}{
		{"used", used.ID, "already used", now},
		{"expired", expired.ID, "expired at", expired.ExpiresAt},
	} {
		_, err := s.RedeemAuthCode(ctx, tc.id, tc.now, "", "jti-2", tc.now.Add(time.Hour))
		if !errors.Is(err, store.ErrConflict) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("RedeemAuthCode of the %s code: %v, want ErrConflict saying %q", tc.which, err, tc.want)
		}
	}
}

// testLease checks taking, renewing, expiring and releasing leases, and the
// refusal of invalid arguments.
func testLease(t *testing.T, s store.Store) {
	ctx := t.Context()
	const ttl = time.Minute
	t0 := base
	acquire := func(name, holder string, now time.Time, want bool) {
		t.Helper()
		got, err := s.AcquireLease(ctx, name, holder, ttl, now)
		if err != nil {
			t.Fatalf("AcquireLease(%q, %q, %v): %v", name, holder, now, err)
		}
		if got != want {
			t.Errorf("AcquireLease(%q, %q, %v) = %v, want %v", name, holder, now, got, want)
		}
	}
	release := func(name, holder string) {
		t.Helper()
		if err := s.ReleaseLease(ctx, name, holder); err != nil {
			t.Fatalf("ReleaseLease(%q, %q): %v", name, holder, err)
		}
	}

	acquire("rotate", "a", t0, true)
	acquire("rotate", "b", t0.Add(time.Second), false)
	acquire("other", "b", t0.Add(time.Second), true) // leases are independent
	acquire("rotate", "a", t0.Add(30*time.Second), true)
	// a's renewal moved the expiry to t0+90s.
	acquire("rotate", "b", t0.Add(ttl), false)
	acquire("rotate", "b", t0.Add(90*time.Second-1), false)
	acquire("rotate", "b", t0.Add(90*time.Second), true) // expired: taken over
	acquire("rotate", "a", t0.Add(91*time.Second), false)
	release("rotate", "a") // not a's any more: nothing happens
	acquire("rotate", "a", t0.Add(92*time.Second), false)
	release("rotate", "b")
	acquire("rotate", "a", t0.Add(93*time.Second), true)
	release("rotate", "a")
	release("rotate", "a") // again: no error
	release("never", "a")

	for name, do := range map[string]func() error{
		"empty name":   func() error { _, err := s.AcquireLease(ctx, "", "a", ttl, t0); return err },
		"empty holder": func() error { _, err := s.AcquireLease(ctx, "x", "", ttl, t0); return err },
		"zero ttl":     func() error { _, err := s.AcquireLease(ctx, "x", "a", 0, t0); return err },
		"negative ttl": func() error { _, err := s.AcquireLease(ctx, "x", "a", -time.Second, t0); return err },
		"zero now":     func() error { _, err := s.AcquireLease(ctx, "x", "a", ttl, time.Time{}); return err },
		"release without holder": func() error {
			return s.ReleaseLease(ctx, "x", "")
		},
	} {
		if err := do(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	acquire("x", "b", t0, true) // the refused calls left nothing behind
}

// testLeaseConcurrent races acquirers on two stores: each round exactly one
// wins.
func testLeaseConcurrent(t *testing.T, stores []store.Store) {
	acquire := func(now time.Time) []bool {
		won := make([]bool, racers)
		errs := race(racers, func(i int) (err error) {
			won[i], err = stores[i%2].AcquireLease(t.Context(), "rotate", fmt.Sprint("holder-", i), time.Minute, now)
			return err
		})
		for i, err := range errs {
			if err != nil {
				t.Errorf("acquirer %d: %v", i, err)
			}
		}
		return won
	}
	winners := func(won []bool) (n int) {
		for _, w := range won {
			if w {
				n++
			}
		}
		return n
	}
	for round := range 5 {
		now := base.Add(time.Duration(round) * time.Hour) // each round, the last lease has expired
		if n := winners(acquire(now)); n != 1 {
			t.Errorf("round %d: %d acquirers won, want exactly 1", round, n)
		}
	}
}

// testKeysAcrossStores plays a server and the CLI holding the same database
// open: each sees the other's changes, and of one rotation decided by both
// at once exactly one is applied.
func testKeysAcrossStores(t *testing.T, stores []store.Store) {
	server, cli := stores[0], stores[1]
	t0 := base
	active := newKey(t, store.KeyActive, t0)
	apply(t, cli, store.KeyChange{Inserts: []store.Key{active}})
	if v := version(t, server); v != 1 {
		t.Errorf("server sees version %d after the CLI's change, want 1", v)
	}
	checkKeys(t, list(t, server), []store.Key{active})

	next := newKey(t, store.KeyNext, t0.Add(time.Second))
	apply(t, server, store.KeyChange{Inserts: []store.Key{next}})
	if v := version(t, cli); v != 2 {
		t.Errorf("CLI sees version %d after the server's change, want 2", v)
	}
	checkKeys(t, list(t, cli), []store.Key{active, next})

	// Both decide the same rotation at once: one wins, the other conflicts.
	retired := active
	retired.State, retired.RetiredAt, retired.RemoveAfter = store.KeyRetired, t0.Add(time.Hour), t0.Add(2*time.Hour)
	promoted := next
	promoted.State = store.KeyActive
	change := store.KeyChange{Updates: []store.KeyUpdate{
		{Key: retired, From: store.KeyActive}, {Key: promoted, From: store.KeyNext},
	}}
	errs := race(len(stores), func(i int) error { return stores[i].ApplyKeyChange(t.Context(), change) })
	if (errs[0] == nil) == (errs[1] == nil) {
		t.Fatalf("want exactly one rotation to succeed, got errors %v and %v", errs[0], errs[1])
	}
	for _, err := range errs {
		if err != nil && !errors.Is(err, store.ErrConflict) {
			t.Errorf("losing rotation: %v, want store.ErrConflict", err)
		}
	}
	for name, s := range map[string]store.Store{"server": server, "cli": cli} {
		if v := version(t, s); v != 3 {
			t.Errorf("%s: version %d, want 3", name, v)
		}
		checkKeys(t, list(t, s), []store.Key{retired, promoted})
	}
}

// testRotateAcrossStores plays replicas redeeming the same refresh token at
// once through two stores: exactly one may succeed, and exactly its
// successor is stored beside the spent link.
func testRotateAcrossStores(t *testing.T, stores []store.Store) {
	for round := range 5 {
		old := newLink(t, "family-"+fmt.Sprint(round), base)
		createLink(t, stores[0], old)
		now := base.Add(time.Hour)
		nexts := make([]store.RefreshToken, racers)
		for i := range nexts {
			nexts[i] = nextLink(t, old, now)
		}
		winner := checkOneWinner(t, race(racers, func(i int) error {
			return stores[i%2].RotateRefreshToken(t.Context(), old.ID, now, nexts[i])
		}))
		for i, next := range nexts {
			_, err := stores[1].GetRefreshToken(t.Context(), next.ID)
			if i == winner && err != nil {
				t.Errorf("round %d: the winner's next link: %v", round, err)
			}
			if i != winner && !errors.Is(err, store.ErrNotFound) {
				t.Errorf("round %d: loser %d's next link: %v, want ErrNotFound", round, i, err)
			}
		}
		got, err := stores[1].GetRefreshToken(t.Context(), old.ID)
		if err != nil || !got.UsedAt.Equal(now) {
			t.Errorf("round %d: old link UsedAt %v, err %v; want %v", round, got.UsedAt, err, now)
		}
	}
}

// testRedeemAcrossStores races redemptions of one code through two stores,
// as two replicas would: exactly one wins, the others are conflicts, and the
// stored code records what the winner issued.
func testRedeemAcrossStores(t *testing.T, stores []store.Store) {
	for round := range 5 {
		c := newCode(t, base)
		createCode(t, stores[0], c)
		now := base.Add(time.Second)
		jtis := make([]string, racers)
		for i := range jtis {
			jtis[i] = randomID(t)
		}
		got := make([]store.AuthCode, racers)
		winner := checkOneWinner(t, race(racers, func(i int) (err error) {
			got[i], err = stores[i%2].RedeemAuthCode(t.Context(), c.ID, now, "family-"+jtis[i], jtis[i], now.Add(time.Hour))
			return err
		}))
		if got[winner].AccessJTI != jtis[winner] || !got[winner].UsedAt.Equal(now) {
			t.Errorf("round %d: winner got jti %q used at %v, want %q at %v",
				round, got[winner].AccessJTI, got[winner].UsedAt, jtis[winner], now)
		}
		stored, err := stores[1].GetAuthCode(t.Context(), c.ID)
		switch {
		case err != nil:
			t.Errorf("round %d: GetAuthCode: %v", round, err)
		case stored.AccessJTI != jtis[winner] || stored.FamilyID != "family-"+jtis[winner] ||
			!stored.UsedAt.Equal(now) || !stored.AccessExpiresAt.Equal(now.Add(time.Hour)):
			t.Errorf("round %d: stored code records jti %q, family %q, used at %v, access expiry %v; want the winner's %q",
				round, stored.AccessJTI, stored.FamilyID, stored.UsedAt, stored.AccessExpiresAt, jtis[winner])
		}
	}
}

// testTouchAcrossStores touches one session through two stores at once with
// different times: LastSeen ends at the latest of them, whatever order the
// updates ran in.
func testTouchAcrossStores(t *testing.T, stores []store.Store) {
	ss := newSession(t, "user", base)
	createSession(t, stores[0], ss)
	const touches = 16
	errs := race(touches, func(i int) error {
		return stores[i%2].TouchSession(t.Context(), ss.ID, base.Add(time.Duration(i)*time.Minute))
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("TouchSession %d: %v", i, err)
		}
	}
	got, err := stores[1].GetSession(t.Context(), ss.ID)
	if want := base.Add((touches - 1) * time.Minute); err != nil || !got.LastSeen.Equal(want) {
		t.Errorf("GetSession: LastSeen %v, err %v; want %v", got.LastSeen, err, want)
	}
}

// testDPoPProofAcrossStores records one DPoP proof through two stores at
// once, as replicas receiving the same replayed proof would: exactly one
// record succeeds, every other one is a conflict.
func testDPoPProofAcrossStores(t *testing.T, stores []store.Store) {
	for round := range 5 {
		jti := fmt.Sprintf("proof-%d", round)
		checkOneWinner(t, race(racers, func(i int) error {
			return stores[i%2].RecordDPoPProof(t.Context(), "jkt", jti, base.Add(5*time.Minute), base)
		}))
	}
}
