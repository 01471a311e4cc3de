package postgres

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/storetest"
)

func TestBrowserStore(t *testing.T) {
	testDSN(t)
	storetest.RunBrowserStore(t, func(t *testing.T) storetest.BrowserStore { return openFresh(t) })
}

// testCode returns an unused authorization code created at created.
func testCode(t *testing.T, created time.Time) store.AuthCode {
	t.Helper()
	return store.AuthCode{
		ID: randomHex(t, 32), ClientID: "app", RedirectURI: "https://app.example/cb", UserID: "user",
		Scope: "openid", CreatedAt: created, ExpiresAt: created.Add(time.Minute),
	}
}

// TestRedeemAcrossStores races redemptions of one code through two Stores on
// one schema, as two replicas would: exactly one wins, the others are
// conflicts, and the stored code records what the winner issued.
func TestRedeemAcrossStores(t *testing.T) {
	dsn, _ := freshSchema(t)
	stores := []*Store{openStore(t, dsn), openStore(t, dsn)}
	const racers = 8
	for round := range 5 {
		c := testCode(t, t0)
		if err := stores[0].CreateAuthCode(t.Context(), c); err != nil {
			t.Fatal(err)
		}
		now := t0.Add(time.Second)
		jtis := make([]string, racers)
		got := make([]store.AuthCode, racers)
		errs := make([]error, racers)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range racers {
			jtis[i] = randomHex(t, 16)
			wg.Go(func() {
				<-start
				got[i], errs[i] = stores[i%2].RedeemAuthCode(t.Context(), c.ID, now, "family-"+jtis[i], jtis[i], now.Add(time.Hour))
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Errorf("round %d: redemptions %d and %d both succeeded", round, winner, i)
			case err == nil:
				winner = i
			case !errors.Is(err, store.ErrConflict):
				t.Errorf("round %d: redemption %d: %v, want ErrConflict", round, i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no redemption succeeded", round)
		}
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

// TestTouchAcrossStores touches one session through two Stores at once with
// different times: LastSeen ends at the latest of them, whatever order the
// updates ran in.
func TestTouchAcrossStores(t *testing.T) {
	dsn, _ := freshSchema(t)
	stores := []*Store{openStore(t, dsn), openStore(t, dsn)}
	ss := store.Session{ID: randomHex(t, 32), UserID: "user", CreatedAt: t0, LastSeen: t0, ExpiresAt: t0.Add(24 * time.Hour)}
	if err := stores[0].CreateSession(t.Context(), ss); err != nil {
		t.Fatal(err)
	}
	const touches = 16
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range touches {
		wg.Go(func() {
			<-start
			if err := stores[i%2].TouchSession(t.Context(), ss.ID, t0.Add(time.Duration(i)*time.Minute)); err != nil {
				t.Errorf("TouchSession %d: %v", i, err)
			}
		})
	}
	close(start)
	wg.Wait()
	got, err := stores[1].GetSession(t.Context(), ss.ID)
	if want := t0.Add((touches - 1) * time.Minute); err != nil || !got.LastSeen.Equal(want) {
		t.Errorf("GetSession: LastSeen %v, err %v; want %v", got.LastSeen, err, want)
	}
}

// TestBrowserUnstorableText checks that session and code text PostgreSQL
// cannot hold is refused as invalid input, and that lookups by it find
// nothing rather than fail.
func TestBrowserUnstorableText(t *testing.T) {
	s := openFresh(t)
	ctx := t.Context()
	for _, bad := range []string{"nul\x00byte", "bad\xffutf8"} {
		invalid := func(what string, err error) {
			t.Helper()
			if err == nil || errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
				t.Errorf("%s with %q: %v, want an invalid-input error", what, bad, err)
			}
		}
		notFound := func(what string, err error) {
			t.Helper()
			if !errors.Is(err, store.ErrNotFound) {
				t.Errorf("%s with %q: %v, want ErrNotFound", what, bad, err)
			}
		}
		ss := store.Session{ID: randomHex(t, 32), UserID: "user", ExpiresAt: t0}
		bs := ss
		bs.ID = bad
		invalid("CreateSession (id)", s.CreateSession(ctx, bs))
		bs = ss
		bs.UserID = bad
		invalid("CreateSession (user id)", s.CreateSession(ctx, bs))
		for name, edit := range map[string]func(*store.AuthCode){
			"id":             func(c *store.AuthCode) { c.ID = bad },
			"client id":      func(c *store.AuthCode) { c.ClientID = bad },
			"redirect URI":   func(c *store.AuthCode) { c.RedirectURI = bad },
			"user id":        func(c *store.AuthCode) { c.UserID = bad },
			"scope":          func(c *store.AuthCode) { c.Scope = bad },
			"nonce":          func(c *store.AuthCode) { c.Nonce = bad },
			"code challenge": func(c *store.AuthCode) { c.CodeChallenge = bad },
			"family id":      func(c *store.AuthCode) { c.FamilyID = bad },
			"access jti":     func(c *store.AuthCode) { c.AccessJTI = bad },
		} {
			c := testCode(t, t0)
			edit(&c)
			invalid("CreateAuthCode ("+name+")", s.CreateAuthCode(ctx, c))
		}
		c := testCode(t, t0)
		if err := s.CreateAuthCode(ctx, c); err != nil {
			t.Fatal(err)
		}
		now := t0.Add(time.Second)
		_, err := s.RedeemAuthCode(ctx, c.ID, now, bad, "jti", now.Add(time.Hour))
		invalid("RedeemAuthCode (family id)", err)
		_, err = s.RedeemAuthCode(ctx, c.ID, now, "family", bad, now.Add(time.Hour))
		invalid("RedeemAuthCode (access jti)", err)
		if got, err := s.GetAuthCode(ctx, c.ID); err != nil || !got.UsedAt.IsZero() {
			t.Errorf("code after refused redemptions: used at %v, err %v; want unused", got.UsedAt, err)
		}

		_, err = s.GetSession(ctx, bad)
		notFound("GetSession", err)
		notFound("TouchSession", s.TouchSession(ctx, bad, now))
		notFound("DeleteSession", s.DeleteSession(ctx, bad))
		_, err = s.GetAuthCode(ctx, bad)
		notFound("GetAuthCode", err)
		_, err = s.RedeemAuthCode(ctx, bad, now, "family", "jti", now.Add(time.Hour))
		notFound("RedeemAuthCode", err)
		if n, err := s.DeleteUserSessions(ctx, bad); n != 0 || err != nil {
			t.Errorf("DeleteUserSessions(%q) = %d, %v; want 0, nil", bad, n, err)
		}
	}
}

// TestRedeemTellsExpiryFromReuse checks the reasons a redemption fails, which
// the caller acts on: a used code is a conflict that names its use, an
// expired one a conflict that names its expiry.
func TestRedeemTellsExpiryFromReuse(t *testing.T) {
	s := openFresh(t)
	ctx := t.Context()
	used, expired := testCode(t, t0), testCode(t, t0)
	for _, c := range []store.AuthCode{used, expired} {
		if err := s.CreateAuthCode(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	now := t0.Add(time.Second)
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
