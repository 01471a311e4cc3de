package postgres

import (
	"testing"
	"time"

	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/internal/backendtest"
)

// testCode returns an unused authorization code created at created.
func testCode(t *testing.T, created time.Time) store.AuthCode {
	t.Helper()
	return store.AuthCode{
		ID: randomHex(t, 32), ClientID: "app", RedirectURI: "https://app.example/cb", UserID: "user",
		Scope: "openid", CreatedAt: created, ExpiresAt: created.Add(time.Minute),
	}
}

// TestBrowserUnstorableText checks that session and code text PostgreSQL
// cannot hold is refused as invalid input, and that lookups by it find
// nothing rather than fail.
func TestBrowserUnstorableText(t *testing.T) {
	s := openFresh(t)
	ctx := t.Context()
	forEachUnstorableText(t, func(bad string, invalid, notFound func(what string, err error)) {
		ss := store.Session{ID: randomHex(t, 32), UserID: "user", ExpiresAt: backendtest.T0}
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
			c := testCode(t, backendtest.T0)
			edit(&c)
			invalid("CreateAuthCode ("+name+")", s.CreateAuthCode(ctx, c, 0))
		}
		c := testCode(t, backendtest.T0)
		if err := s.CreateAuthCode(ctx, c, 0); err != nil {
			t.Fatal(err)
		}
		now := backendtest.T0.Add(time.Second)
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
	})
}
