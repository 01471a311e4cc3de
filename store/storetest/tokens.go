package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/keygate/keygate/store"
)

// newLink returns the first link of a family, created at created and
// expiring a day later.
func newLink(t *testing.T, family string, created time.Time) store.RefreshToken {
	t.Helper()
	return store.RefreshToken{
		ID:        randomID(t),
		FamilyID:  family,
		ClientID:  "app",
		Subject:   "user-1",
		Scope:     "openid offline_access",
		Audience:  []string{"https://api.example"},
		AuthTime:  created.Add(-time.Minute),
		AMR:       []string{"pwd", "otp", "mfa"},
		CreatedAt: created,
		ExpiresAt: created.Add(24 * time.Hour),
	}
}

// nextLink returns the link that replaces prev when it is spent at now.
func nextLink(t *testing.T, prev store.RefreshToken, now time.Time) store.RefreshToken {
	t.Helper()
	next := prev
	next.ID = randomID(t)
	next.CreatedAt, next.ExpiresAt = now, now.Add(24*time.Hour)
	next.UsedAt, next.RevokedAt = time.Time{}, time.Time{}
	return next
}

func createLink(t *testing.T, s store.Store, rt store.RefreshToken) {
	t.Helper()
	if err := s.CreateRefreshToken(t.Context(), rt); err != nil {
		t.Fatalf("CreateRefreshToken(%s): %v", rt.ID, err)
	}
}

func refreshDiff(got, want store.RefreshToken) string {
	var d differ
	d.text("ID", got.ID, want.ID)
	d.text("FamilyID", got.FamilyID, want.FamilyID)
	d.text("ClientID", got.ClientID, want.ClientID)
	d.text("Subject", got.Subject, want.Subject)
	d.text("Scope", got.Scope, want.Scope)
	d.list("Audience", got.Audience, want.Audience)
	d.instant("AuthTime", got.AuthTime, want.AuthTime)
	d.list("AMR", got.AMR, want.AMR)
	d.instant("CreatedAt", got.CreatedAt, want.CreatedAt)
	d.instant("ExpiresAt", got.ExpiresAt, want.ExpiresAt)
	d.instant("UsedAt", got.UsedAt, want.UsedAt)
	d.instant("RevokedAt", got.RevokedAt, want.RevokedAt)
	d.text("DPoPJKT", got.DPoPJKT, want.DPoPJKT)
	return d.String()
}

// checkLink fails the test unless the stored link with want's ID equals want.
func checkLink(t *testing.T, s store.Store, want store.RefreshToken) {
	t.Helper()
	checkStored(t, "GetRefreshToken", s.GetRefreshToken, want.ID, want, refreshDiff, "refresh token "+want.ID)
}

// checkNoLink fails the test unless no link with the ID is stored.
func checkNoLink(t *testing.T, s store.Store, id string) {
	t.Helper()
	checkGone(t, "GetRefreshToken", s.GetRefreshToken, id)
}

func testRefreshRoundTrip(t *testing.T, s store.Store) {
	nyc := time.FixedZone("UTC-5", -5*60*60)
	cases := []struct {
		name string
		link func(t *testing.T) store.RefreshToken
	}{
		{"first link", func(t *testing.T) store.RefreshToken { return newLink(t, "fam-1", base) }},
		{"every time set, several audiences", func(t *testing.T) store.RefreshToken {
			rt := newLink(t, "fam-2", base.Add(1))
			rt.Audience = []string{"a", "b", `c"d`, "é"}
			rt.UsedAt = base.Add(time.Hour + 3)
			rt.RevokedAt = base.Add(2*time.Hour + 5)
			rt.DPoPJKT = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
			rt.ExpiresAt = time.Date(2199, time.December, 31, 23, 59, 59, 999999999, nyc)
			return rt
		}},
		{"minimal: nil audience, empty scope, zero auth and creation times", func(t *testing.T) store.RefreshToken {
			return store.RefreshToken{ID: randomID(t), FamilyID: "fam-3", ClientID: "c", Subject: "client:c", ExpiresAt: base}
		}},
		{"empty audience, times in another zone", func(t *testing.T) store.RefreshToken {
			rt := newLink(t, "fam-4", base.In(nyc))
			rt.Audience = []string{}
			return rt
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rt := c.link(t)
			createLink(t, s, rt)
			checkLink(t, s, rt)

			dup := newLink(t, "other-family", base)
			dup.ID = rt.ID
			checkErr(t, "CreateRefreshToken with a taken ID", s.CreateRefreshToken(t.Context(), dup), store.ErrConflict)
			checkLink(t, s, rt)
		})
	}
	checkNoLink(t, s, randomID(t))
}

func testRotate(t *testing.T, s store.Store) {
	ctx := t.Context()
	first := newLink(t, "family", base)
	createLink(t, s, first)

	now := base.Add(time.Hour + 1)
	second := nextLink(t, first, now)
	checkErr(t, "RotateRefreshToken", s.RotateRefreshToken(ctx, first.ID, now, second), nil)
	spent := first
	spent.UsedAt = now
	checkLink(t, s, spent)
	checkLink(t, s, second)

	later := now.Add(time.Minute)
	third := nextLink(t, second, later)
	checkErr(t, "RotateRefreshToken of the new link", s.RotateRefreshToken(ctx, second.ID, later, third), nil)
	second.UsedAt = later
	checkLink(t, s, second)
	checkLink(t, s, third)

	// Presenting the first link again is reuse: refused, and nothing changes.
	reuse := nextLink(t, first, later)
	checkErr(t, "RotateRefreshToken of a spent link", s.RotateRefreshToken(ctx, first.ID, later, reuse), store.ErrConflict)
	checkNoLink(t, s, reuse.ID)
	checkLink(t, s, spent)

	// The link's last instant: it expires after now, so it can be spent.
	last := third.ExpiresAt.Add(-1)
	fourth := nextLink(t, third, last)
	checkErr(t, "RotateRefreshToken one nanosecond before expiry", s.RotateRefreshToken(ctx, third.ID, last, fourth), nil)
	checkLink(t, s, fourth)
}

func testRotateFailures(t *testing.T, open func(t *testing.T) store.Store) {
	now := base.Add(time.Hour)
	cases := []struct {
		name string
		// old edits the link to be rotated before it is stored.
		old func(rt *store.RefreshToken)
		// unknown rotates an ID that is not stored instead of the old link's.
		unknown bool
		// next edits the link to store in the old one's place; taken is
		// another stored link of the family, for cases that need one.
		next func(next *store.RefreshToken, old, taken store.RefreshToken)
		want error // nil: an invalid-input error
	}{
		{name: "spent", old: func(rt *store.RefreshToken) { rt.UsedAt = now.Add(-time.Minute) }, want: store.ErrConflict},
		{name: "spent at the same instant", old: func(rt *store.RefreshToken) { rt.UsedAt = now }, want: store.ErrConflict},
		{name: "revoked", old: func(rt *store.RefreshToken) { rt.RevokedAt = now.Add(-time.Minute) }, want: store.ErrConflict},
		{name: "revoked after now", old: func(rt *store.RefreshToken) { rt.RevokedAt = now.Add(time.Minute) }, want: store.ErrConflict},
		{name: "expired", old: func(rt *store.RefreshToken) { rt.ExpiresAt = now.Add(-time.Nanosecond) }, want: store.ErrConflict},
		{name: "expires exactly now", old: func(rt *store.RefreshToken) { rt.ExpiresAt = now }, want: store.ErrConflict},
		{name: "unknown", unknown: true, want: store.ErrNotFound},
		{
			name: "next takes another link's ID",
			next: func(next *store.RefreshToken, _, taken store.RefreshToken) { next.ID = taken.ID },
			want: store.ErrConflict,
		},
		{
			name: "next takes the old link's ID",
			next: func(next *store.RefreshToken, old, _ store.RefreshToken) { next.ID = old.ID },
			want: store.ErrConflict,
		},
		{
			name: "next in another family",
			next: func(next *store.RefreshToken, _, _ store.RefreshToken) { next.FamilyID = "another" },
		},
		{
			name: "next without expiry",
			next: func(next *store.RefreshToken, _, _ store.RefreshToken) { next.ExpiresAt = time.Time{} },
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := open(t)
			old := newLink(t, "family", base)
			if c.old != nil {
				c.old(&old)
			}
			createLink(t, s, old)
			taken := newLink(t, "family", base)
			createLink(t, s, taken)

			oldID, next := old.ID, nextLink(t, old, now)
			if c.unknown {
				oldID = randomID(t)
			}
			if c.next != nil {
				c.next(&next, old, taken)
			}
			err := s.RotateRefreshToken(t.Context(), oldID, now, next)
			if c.want == nil {
				checkInvalid(t, "RotateRefreshToken", err)
			} else {
				checkErr(t, "RotateRefreshToken", err, c.want)
			}
			// Nothing written: the old link is as it was, and next is
			// absent (or, if its ID was taken, that link is unchanged).
			checkLink(t, s, old)
			checkLink(t, s, taken)
			if next.ID != old.ID && next.ID != taken.ID {
				checkNoLink(t, s, next.ID)
			}
		})
	}
}

func testConcurrentRotate(t *testing.T, s store.Store) {
	old := newLink(t, "family", base)
	createLink(t, s, old)
	now := base.Add(time.Hour)
	nexts := make([]store.RefreshToken, racers)
	for i := range nexts {
		nexts[i] = nextLink(t, old, now)
	}
	errs := race(racers, func(i int) error {
		return s.RotateRefreshToken(t.Context(), old.ID, now, nexts[i])
	})
	w := checkOneWinner(t, errs)
	old.UsedAt = now
	checkLink(t, s, old)
	for i, next := range nexts {
		if i == w {
			checkLink(t, s, next)
		} else {
			checkNoLink(t, s, next.ID)
		}
	}
}

func testRevokeFamily(t *testing.T, s store.Store) {
	ctx := t.Context()
	// Family F: two spent links and a live one. Family G: one live link.
	var f []store.RefreshToken
	link := newLink(t, "F", base)
	createLink(t, s, link)
	for i := range 2 {
		now := base.Add(time.Duration(i+1) * time.Minute)
		next := nextLink(t, link, now)
		checkErr(t, "RotateRefreshToken", s.RotateRefreshToken(ctx, link.ID, now, next), nil)
		link.UsedAt = now
		f = append(f, link)
		link = next
	}
	f = append(f, link)
	g := newLink(t, "G", base)
	createLink(t, s, g)

	revoke := func(family string, now time.Time, want int) {
		t.Helper()
		n, err := s.RevokeRefreshFamily(ctx, family, now)
		if err != nil {
			t.Fatalf("RevokeRefreshFamily(%q): %v", family, err)
		}
		if n != want {
			t.Errorf("RevokeRefreshFamily(%q) revoked %d links, want %d", family, n, want)
		}
	}
	t1 := base.Add(time.Hour)
	revoke("F", t1, 3)
	revoke("F", t1.Add(time.Minute), 0)
	revoke("unknown", t1, 0)
	for i := range f {
		f[i].RevokedAt = t1
		checkLink(t, s, f[i])
	}
	checkLink(t, s, g)

	// No link of F can be rotated any more, spent or not.
	for _, rt := range f {
		next := nextLink(t, rt, t1.Add(time.Minute))
		checkErr(t, "RotateRefreshToken of a revoked link", s.RotateRefreshToken(ctx, rt.ID, t1.Add(time.Minute), next), store.ErrConflict)
		checkNoLink(t, s, next.ID)
	}

	// A link added to F later is revoked on its own; earlier ones keep
	// their revocation time.
	late := newLink(t, "F", t1)
	createLink(t, s, late)
	t2 := t1.Add(time.Hour)
	revoke("F", t2, 1)
	late.RevokedAt = t2
	checkLink(t, s, late)
	for _, rt := range f {
		checkLink(t, s, rt)
	}

	// G was never touched and still rotates.
	next := nextLink(t, g, t2)
	checkErr(t, "RotateRefreshToken of another family's link", s.RotateRefreshToken(ctx, g.ID, t2, next), nil)
}

func isRevoked(t *testing.T, s store.Store, jti string) bool {
	t.Helper()
	r, err := s.IsAccessTokenRevoked(t.Context(), jti)
	if err != nil {
		t.Fatalf("IsAccessTokenRevoked(%q): %v", jti, err)
	}
	return r
}

func prune(t *testing.T, s store.Store, now time.Time) int64 {
	t.Helper()
	n, err := s.PruneExpired(t.Context(), now)
	if err != nil {
		t.Fatalf("PruneExpired(%v): %v", now, err)
	}
	return n
}

func testDenyList(t *testing.T, s store.Store) {
	ctx := t.Context()
	exp := base.Add(time.Hour)
	steps := []struct {
		name    string
		do      func() error
		revoked map[string]bool
	}{
		{"nothing revoked", nil, map[string]bool{"a": false, "b": false}},
		{"revoke a", func() error { return s.RevokeAccessToken(ctx, "a", exp) }, map[string]bool{"a": true, "b": false}},
		{"revoke a again", func() error { return s.RevokeAccessToken(ctx, "a", exp) }, map[string]bool{"a": true, "b": false}},
		{"revoke a again with an earlier expiry", func() error { return s.RevokeAccessToken(ctx, "a", base) }, map[string]bool{"a": true}},
		{"prune between the two expiries keeps the later", func() error {
			if n := prune(t, s, base.Add(time.Minute)); n != 0 {
				return fmt.Errorf("pruned %d rows, want 0", n)
			}
			return nil
		}, map[string]bool{"a": true}},
		{"revoke A: jtis are exact", func() error { return s.RevokeAccessToken(ctx, "A", exp) }, map[string]bool{"a": true, "A": true, "b": false}},
		{"prune at expiry", func() error {
			if n := prune(t, s, exp); n != 2 {
				return fmt.Errorf("pruned %d rows, want 2", n)
			}
			return nil
		}, map[string]bool{"a": false, "A": false}},
		{"revoke a after pruning", func() error { return s.RevokeAccessToken(ctx, "a", exp.Add(time.Hour)) }, map[string]bool{"a": true}},
	}
	for _, st := range steps {
		if st.do != nil {
			if err := st.do(); err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
		}
		for jti, want := range st.revoked {
			if got := isRevoked(t, s, jti); got != want {
				t.Errorf("%s: IsAccessTokenRevoked(%q) = %v, want %v", st.name, jti, got, want)
			}
		}
	}
}

// recorder is RecordAssertion or RecordDPoPProof, which share their rules:
// a (owner, jti) pair is single-use until its record expires.
type recorder func(s store.Store) func(ctx context.Context, owner, jti string, expiresAt, now time.Time) error

var recorders = []struct {
	name   string
	record recorder
}{
	{"RecordAssertion", func(s store.Store) func(context.Context, string, string, time.Time, time.Time) error {
		return s.RecordAssertion
	}},
	{"RecordDPoPProof", func(s store.Store) func(context.Context, string, string, time.Time, time.Time) error {
		return s.RecordDPoPProof
	}},
}

// testAssertions runs the single-use rules on both record kinds, each in a
// store of its own, and then checks that the two kinds are independent.
func testAssertions(t *testing.T, open func(t *testing.T) store.Store) {
	at := func(minutes int) time.Time { return base.Add(time.Duration(minutes) * time.Minute) }
	steps := []struct {
		name       string
		owner, jti string
		exp, now   time.Time
		want       error
	}{
		{"first use", "c1", "j1", at(5), at(0), nil},
		{"replay", "c1", "j1", at(5), at(1), store.ErrConflict},
		{"replay with another expiry", "c1", "j1", at(10), at(4), store.ErrConflict},
		{"replay in the last nanosecond", "c1", "j1", at(10), at(5).Add(-1), store.ErrConflict},
		{"same jti, other owner", "c2", "j1", at(5), at(1), nil},
		{"other jti", "c1", "j2", at(5), at(1), nil},
		{"jti in other case", "c1", "J1", at(5), at(1), nil},
		{"reuse once the first expired", "c1", "j1", at(15), at(5), nil},
		{"replay of the reuse", "c1", "j1", at(15), at(6), store.ErrConflict},
		{"other owner still refused", "c2", "j1", at(6), at(2), store.ErrConflict},
	}
	for _, r := range recorders {
		t.Run(r.name, func(t *testing.T) {
			record := r.record(open(t))
			for _, st := range steps {
				err := record(t.Context(), st.owner, st.jti, st.exp, st.now)
				checkErr(t, fmt.Sprintf("%s: %s(%q, %q)", st.name, r.name, st.owner, st.jti), err, st.want)
			}
		})
	}
	t.Run("independent kinds", func(t *testing.T) {
		s := open(t)
		checkErr(t, "RecordAssertion", s.RecordAssertion(t.Context(), "x", "j", at(5), at(0)), nil)
		checkErr(t, "RecordDPoPProof of the same pair", s.RecordDPoPProof(t.Context(), "x", "j", at(5), at(0)), nil)
	})
}

func testConcurrentAssertion(t *testing.T, open func(t *testing.T) store.Store) {
	for _, r := range recorders {
		t.Run(r.name+"/new pair", func(t *testing.T) {
			record := r.record(open(t))
			errs := race(racers, func(int) error {
				return record(t.Context(), "c", "j", base.Add(time.Minute), base)
			})
			checkOneWinner(t, errs)
		})
		t.Run(r.name+"/taking over an expired record", func(t *testing.T) {
			record := r.record(open(t))
			checkErr(t, r.name, record(t.Context(), "c", "j", base.Add(time.Minute), base), nil)
			now := base.Add(2 * time.Minute)
			errs := race(racers, func(i int) error {
				return record(t.Context(), "c", "j", now.Add(time.Duration(i+1)*time.Minute), now)
			})
			checkOneWinner(t, errs)
		})
	}
}

func testPruneExpired(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := base.Add(48 * time.Hour)

	// Deny list and assertion records: at or before now goes.
	for jti, exp := range map[string]time.Time{"d-past": now.Add(-time.Hour), "d-now": now, "d-future": now.Add(1)} {
		checkErr(t, "RevokeAccessToken", s.RevokeAccessToken(ctx, jti, exp), nil)
	}
	for jti, exp := range map[string]time.Time{"a-past": now.Add(-time.Hour), "a-now": now, "a-future": now.Add(1)} {
		checkErr(t, "RecordAssertion", s.RecordAssertion(ctx, "c", jti, exp, base), nil)
	}
	for jti, exp := range map[string]time.Time{"p-past": now.Add(-time.Hour), "p-now": now, "p-future": now.Add(1)} {
		checkErr(t, "RecordDPoPProof", s.RecordDPoPProof(ctx, "k", jti, exp, base), nil)
	}

	// family builds a family of links with the given expiries, each but the
	// last spent.
	family := func(id string, expiries ...time.Time) []store.RefreshToken {
		var links []store.RefreshToken
		for i, exp := range expiries {
			rt := newLink(t, id, base)
			rt.ExpiresAt = exp
			if i < len(expiries)-1 {
				rt.UsedAt = base.Add(time.Minute)
			}
			createLink(t, s, rt)
			links = append(links, rt)
		}
		return links
	}
	gone := [][]store.RefreshToken{
		family("all-expired", now.Add(-2*time.Hour), now.Add(-time.Hour), now),
		family("revoked-expired", now.Add(-time.Minute)),
	}
	kept := [][]store.RefreshToken{
		family("newest-alive", now.Add(-2*time.Hour), now.Add(-time.Hour), now.Add(1)),
		// The live link need not be the last created.
		family("older-alive", now.Add(time.Hour), now.Add(-time.Hour)),
		// Revoked, but kept until it expires like any other.
		family("revoked-alive", now.Add(time.Hour)),
	}
	for family, links := range map[string][]store.RefreshToken{"revoked-expired": gone[1], "revoked-alive": kept[2]} {
		n, err := s.RevokeRefreshFamily(ctx, family, base.Add(time.Hour))
		checkErr(t, "RevokeRefreshFamily", err, nil)
		if n != 1 {
			t.Fatalf("RevokeRefreshFamily(%q) revoked %d, want 1", family, n)
		}
		links[0].RevokedAt = base.Add(time.Hour)
	}

	if n := prune(t, s, now); n != 2+2+2+3+1 {
		t.Errorf("PruneExpired deleted %d rows, want %d", n, 2+2+2+3+1)
	}
	for jti, want := range map[string]bool{"d-past": false, "d-now": false, "d-future": true} {
		if got := isRevoked(t, s, jti); got != want {
			t.Errorf("after pruning: IsAccessTokenRevoked(%q) = %v, want %v", jti, got, want)
		}
	}
	checkErr(t, "RecordAssertion of a kept record",
		s.RecordAssertion(ctx, "c", "a-future", now.Add(time.Hour), now), store.ErrConflict)
	checkErr(t, "RecordDPoPProof of a kept record",
		s.RecordDPoPProof(ctx, "k", "p-future", now.Add(time.Hour), now), store.ErrConflict)
	checkErr(t, "RecordDPoPProof of a pruned record",
		s.RecordDPoPProof(ctx, "k", "p-now", now.Add(time.Hour), now), nil)
	for _, links := range gone {
		for _, rt := range links {
			checkNoLink(t, s, rt.ID)
		}
	}
	for _, links := range kept {
		for _, rt := range links {
			checkLink(t, s, rt)
		}
	}
	if n := prune(t, s, now); n != 0 {
		t.Errorf("second PruneExpired at the same time deleted %d rows, want 0", n)
	}
}

func testInvalidInput(t *testing.T, open func(t *testing.T) store.Store) {
	live := func(t *testing.T) store.RefreshToken { return newLink(t, "family", base) }
	type invalidCase struct {
		name string
		do   func(t *testing.T, s store.Store, rt store.RefreshToken) error
	}
	cases := []invalidCase{
		{"client without ID", func(t *testing.T, s store.Store, _ store.RefreshToken) error {
			return s.CreateClient(t.Context(), store.Client{Name: "x"})
		}},
		{"user without ID", func(t *testing.T, s store.Store, _ store.RefreshToken) error {
			u := newUser(t, "alice", "")
			u.ID = ""
			return s.CreateUser(t.Context(), u)
		}},
		{"user without username", func(t *testing.T, s store.Store, _ store.RefreshToken) error {
			return s.CreateUser(t.Context(), newUser(t, "", "alice@example.com"))
		}},
		{"username not UTF-8", func(t *testing.T, s store.Store, _ store.RefreshToken) error {
			return s.CreateUser(t.Context(), newUser(t, "al\xffice", ""))
		}},
		{"email not UTF-8", func(t *testing.T, s store.Store, _ store.RefreshToken) error {
			return s.CreateUser(t.Context(), newUser(t, "alice", "al\xffice@example.com"))
		}},
		{"password update at the zero time", func(t *testing.T, s store.Store, _ store.RefreshToken) error {
			u := newUser(t, "alice", "")
			createUser(t, s, u)
			err := s.UpdateUserPassword(t.Context(), u.ID, "new", time.Time{})
			if d := userDiff(getUser(t, s, u.ID), u); d != "" {
				t.Errorf("user changed by a refused update: %s", d)
			}
			// Leave no user behind, as the checks after every case expect.
			checkErr(t, "DeleteUser", s.DeleteUser(t.Context(), u.ID), nil)
			return err
		}},
		{"refresh token without ID", func(t *testing.T, s store.Store, _ store.RefreshToken) error {
			rt := newLink(t, "f2", base)
			rt.ID = ""
			return s.CreateRefreshToken(t.Context(), rt)
		}},
		{"refresh token without family", func(t *testing.T, s store.Store, _ store.RefreshToken) error {
			rt := newLink(t, "", base)
			defer checkNoLink(t, s, rt.ID)
			return s.CreateRefreshToken(t.Context(), rt)
		}},
		{"refresh token without expiry", func(t *testing.T, s store.Store, _ store.RefreshToken) error {
			rt := newLink(t, "f2", base)
			rt.ExpiresAt = time.Time{}
			defer checkNoLink(t, s, rt.ID)
			return s.CreateRefreshToken(t.Context(), rt)
		}},
		{"rotation at the zero time", func(t *testing.T, s store.Store, rt store.RefreshToken) error {
			next := nextLink(t, rt, base)
			defer checkNoLink(t, s, next.ID)
			return s.RotateRefreshToken(t.Context(), rt.ID, time.Time{}, next)
		}},
		{"family revocation at the zero time", func(t *testing.T, s store.Store, rt store.RefreshToken) error {
			_, err := s.RevokeRefreshFamily(t.Context(), rt.FamilyID, time.Time{})
			return err
		}},
		{"access token revocation without jti", func(t *testing.T, s store.Store, _ store.RefreshToken) error {
			return s.RevokeAccessToken(t.Context(), "", base)
		}},
		{"access token revocation without expiry", func(t *testing.T, s store.Store, _ store.RefreshToken) error {
			defer func() {
				if isRevoked(t, s, "j") {
					t.Error("refused revocation was recorded")
				}
			}()
			return s.RevokeAccessToken(t.Context(), "j", time.Time{})
		}},
		{"pruning at the zero time", func(t *testing.T, s store.Store, _ store.RefreshToken) error {
			_, err := s.PruneExpired(t.Context(), time.Time{})
			return err
		}},
	}
	for _, r := range recorders {
		cases = append(cases, []invalidCase{
			{r.name + " without jti", func(t *testing.T, s store.Store, _ store.RefreshToken) error {
				return r.record(s)(t.Context(), "c", "", base.Add(time.Minute), base)
			}},
			{r.name + " without owner", func(t *testing.T, s store.Store, _ store.RefreshToken) error {
				return r.record(s)(t.Context(), "", "j", base.Add(time.Minute), base)
			}},
			{r.name + " expiring at now", func(t *testing.T, s store.Store, _ store.RefreshToken) error {
				err := r.record(s)(t.Context(), "c", "j", base, base)
				// Nothing was recorded: the pair is still free.
				checkErr(t, r.name+" after a refused one", r.record(s)(t.Context(), "c", "j", base.Add(time.Minute), base), nil)
				return err
			}},
			{r.name + " without expiry", func(t *testing.T, s store.Store, _ store.RefreshToken) error {
				return r.record(s)(t.Context(), "c", "j", time.Time{}, base)
			}},
		}...)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := open(t)
			rt := live(t)
			createLink(t, s, rt)
			checkInvalid(t, c.name, c.do(t, s, rt))
			checkLink(t, s, rt)
			if cs := listClients(t, s); len(cs) != 0 {
				t.Errorf("%d clients stored by refused input", len(cs))
			}
			if us := listUsers(t, s); len(us) != 0 {
				t.Errorf("%d users stored by refused input", len(us))
			}
		})
	}
}

// testRevokeSubject: every family of one subject is revoked, other subjects'
// are not, and a revoked link no longer rotates.
func testRevokeSubject(t *testing.T, s store.Store) {
	ctx := t.Context()
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	a1, a2, b := newLink(t, "A1", base), newLink(t, "A2", base), newLink(t, "B", base)
	b.Subject = "user-2"
	for _, l := range []store.RefreshToken{a1, a2, b} {
		createLink(t, s, l)
	}
	at := base.Add(time.Minute)
	if n, err := s.RevokeSubjectRefreshTokens(ctx, "user-1", at); err != nil || n != 2 {
		t.Fatalf("RevokeSubjectRefreshTokens(user-1) = %d, %v; want 2 links", n, err)
	}
	if n, err := s.RevokeSubjectRefreshTokens(ctx, "user-1", at.Add(time.Minute)); err != nil || n != 0 {
		t.Errorf("second revocation = %d, %v; want 0 (already revoked keep their time)", n, err)
	}
	a1.RevokedAt, a2.RevokedAt = at, at
	checkLink(t, s, a1)
	checkLink(t, s, a2)
	checkLink(t, s, b)
	next := newLink(t, "A1", at)
	if err := s.RotateRefreshToken(ctx, a1.ID, at.Add(time.Second), next); !errors.Is(err, store.ErrConflict) {
		t.Errorf("rotating a revoked link: err = %v, want ErrConflict", err)
	}
	if n, err := s.RevokeSubjectRefreshTokens(ctx, "nobody", at); err != nil || n != 0 {
		t.Errorf("unknown subject = %d, %v; want 0", n, err)
	}
}
