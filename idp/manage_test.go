package idp_test

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/keygate/keygate/idp"
	"github.com/keygate/keygate/store"
)

func ptr[T any](v T) *T { return &v }

// registerStored registers a stored confidential client and returns its secret.
func (e *grantEnv) registerStored(t *testing.T, c idp.Client) string {
	t.Helper()
	secret, err := e.dir.RegisterClient(context.Background(), &c, true)
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

func (e *grantEnv) clientCredentials(id, secret string) error {
	_, err := e.token(id, secret, url.Values{"grant_type": {"client_credentials"}})
	return err
}

// TestRotateClientSecretGrace: after a rotation the old secret works until
// the grace period the operator chose has passed, and not after; a grace of 0
// ends it at once. Static, public and unknown clients are refused.
func TestRotateClientSecretGrace(t *testing.T) {
	e := newGrantEnv(t)
	ctx := context.Background()
	old := e.registerStored(t, idp.Client{ID: "rot", GrantTypes: []string{idp.GrantClientCredentials}, Scopes: []string{"read"}})

	cur, c, err := e.dir.RotateClientSecret(ctx, "rot", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if cur == old || c.PreviousSecretExpiresAt != e.clock.Now().Add(time.Hour) {
		t.Fatalf("rotation: new secret %q (old %q), previous expires %v", cur, old, c.PreviousSecretExpiresAt)
	}
	for _, s := range []string{old, cur} {
		if err := e.clientCredentials("rot", s); err != nil {
			t.Errorf("during the grace period: %v", err)
		}
	}
	e.clock.Advance(time.Hour - time.Second)
	if err := e.clientCredentials("rot", old); err != nil {
		t.Errorf("old secret a second before the grace ends: %v", err)
	}
	e.clock.Advance(time.Second)
	wantError(t, "old secret when the grace has ended", e.clientCredentials("rot", old), "invalid_client", "")
	if err := e.clientCredentials("rot", cur); err != nil {
		t.Errorf("new secret after the grace: %v", err)
	}

	// Grace 0: the secret it replaces stops at once.
	next, _, err := e.dir.RotateClientSecret(ctx, "rot", 0)
	if err != nil {
		t.Fatal(err)
	}
	wantError(t, "secret rotated out with no grace", e.clientCredentials("rot", cur), "invalid_client", "")
	if err := e.clientCredentials("rot", next); err != nil {
		t.Errorf("newest secret: %v", err)
	}
	if sc, _ := e.st.GetClient(ctx, "rot"); sc.PreviousSecretHash != nil || !sc.PreviousSecretExpiresAt.IsZero() {
		t.Errorf("grace 0 left a previous secret: %x until %v", sc.PreviousSecretHash, sc.PreviousSecretExpiresAt)
	}

	if _, _, err := e.dir.RotateClientSecret(ctx, "svc", time.Hour); !errors.Is(err, idp.ErrStaticClient) {
		t.Errorf("static client: %v, want ErrStaticClient", err)
	}
	e.registerStored(t, idp.Client{ID: "pub", Public: true, GrantTypes: []string{idp.GrantAuthorizationCode}, RedirectURIs: []string{gtRedirect}})
	var ve *idp.ValidationError
	if _, _, err := e.dir.RotateClientSecret(ctx, "pub", time.Hour); !errors.As(err, &ve) {
		t.Errorf("public client: %v, want a ValidationError", err)
	}
	if _, _, err := e.dir.RotateClientSecret(ctx, "rot", -time.Second); !errors.As(err, &ve) {
		t.Errorf("negative grace: %v, want a ValidationError", err)
	}
	if _, _, err := e.dir.RotateClientSecret(ctx, "nobody", time.Hour); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown client: %v, want ErrNotFound", err)
	}
}

// TestUpdateClientRevalidates: only the fields given change, the result must
// pass ValidateClient (a refused update stores nothing), static clients are
// refused, and narrowing a client's scopes binds its refresh tokens too.
func TestUpdateClientRevalidates(t *testing.T) {
	e := newGrantEnv(t)
	ctx := context.Background()
	secret := e.registerStored(t, idp.Client{ID: "web", Name: "Web", GrantTypes: []string{idp.GrantPassword, idp.GrantRefreshToken},
		Scopes: []string{"openid", "read"}, Audience: []string{"api"}})

	c, err := e.dir.UpdateClient(ctx, "web", idp.ClientPatch{Name: ptr("Web app"), AccessTTL: ptr(5 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "Web app" || c.AccessTTL != 5*time.Minute || len(c.Audience) != 1 || len(c.Scopes) != 2 || !c.HasGrant(idp.GrantPassword) {
		t.Errorf("after the update: %+v", c)
	}

	var ve *idp.ValidationError
	for name, pt := range map[string]idp.ClientPatch{
		"code flow without redirect URI": {GrantTypes: ptr([]string{idp.GrantAuthorizationCode})},
		"lifetime above the maximum":     {AccessTTL: ptr(48 * time.Hour)},
		"not-before beyond the lifetime": {NotBeforeDelay: ptr(time.Hour)},
		"unknown grant":                  {GrantTypes: ptr([]string{"implicit"})},
		"fragment in a redirect URI":     {RedirectURIs: ptr([]string{"https://app.example/cb#x"})},
	} {
		if _, err := e.dir.UpdateClient(ctx, "web", pt); !errors.As(err, &ve) {
			t.Errorf("%s: %v, want a ValidationError", name, err)
		}
	}
	if sc, _ := e.st.GetClient(ctx, "web"); sc.Name != "Web app" || sc.AccessTTL != 5*time.Minute || len(sc.RedirectURIs) != 0 {
		t.Errorf("a refused update was stored: %+v", sc)
	}
	if _, err := e.dir.UpdateClient(ctx, "app", idp.ClientPatch{Name: ptr("x")}); !errors.Is(err, idp.ErrStaticClient) ||
		err.Error() != `client "app" is defined in config.yaml; edit it there` {
		t.Errorf("static client: %v", err)
	}
	if _, err := e.dir.UpdateClient(ctx, "nobody", idp.ClientPatch{}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown client: %v, want ErrNotFound", err)
	}

	// Narrowed scopes: a refresh token granted "openid read" can no longer
	// be refreshed into "read".
	res, err := e.token("web", secret, url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {gtPassword}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.dir.UpdateClient(ctx, "web", idp.ClientPatch{Scopes: ptr([]string{"openid"})}); err != nil {
		t.Fatal(err)
	}
	_, err = e.token("web", secret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {res.RefreshToken}})
	wantError(t, "refresh after narrowing the scopes", err, "invalid_scope", `"read"`)
}

// TestDisabledUserRefused: a disabled user cannot log in by password (grant
// or form, both CheckPassword), their refresh tokens and sessions end, a code
// issued before cannot be redeemed; an access token issued before stays
// valid until it expires. Enabling them again lets them log in.
func TestDisabledUserRefused(t *testing.T) {
	e := newGrantEnv(t)
	ctx := context.Background()
	before := e.passwordGrant(t, "app")
	code := e.issueCode(t, "app", gtRedirect, "")
	sessToken, _, err := e.p.StartSession(ctx, e.alice, nil)
	if err != nil {
		t.Fatal(err)
	}

	u, err := e.dir.UpdateUser(ctx, "alice", idp.UserPatch{Disabled: ptr(true), Name: ptr("Alice")})
	if err != nil {
		t.Fatal(err)
	}
	if !u.Disabled() || !u.DisabledAt.Equal(e.clock.Now()) || u.Name != "Alice" {
		t.Fatalf("after disabling: %+v", u)
	}
	stamp := u.DisabledAt
	e.clock.Advance(time.Second)
	if u, _ = e.dir.UpdateUser(ctx, "alice", idp.UserPatch{Disabled: ptr(true)}); !u.DisabledAt.Equal(stamp) {
		t.Errorf("disabling again moved DisabledAt from %v to %v", stamp, u.DisabledAt)
	}

	_, err = e.token("app", gtSecret, url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {gtPassword}})
	wantError(t, "password grant", err, "invalid_grant", "invalid username or password")
	if _, err := e.p.CheckPassword(ctx, "alice", gtPassword, "198.51.100.1"); !errors.Is(err, idp.ErrUserDisabled) || !errors.Is(err, idp.ErrInvalidCredentials) {
		t.Errorf("CheckPassword (the login form's check): %v, want ErrUserDisabled, an ErrInvalidCredentials", err)
	}
	_, err = e.token("app", gtSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {before.RefreshToken}})
	wantError(t, "refresh", err, "invalid_grant", "")
	if _, err := e.p.Session(ctx, sessToken); !errors.Is(err, idp.ErrNoSession) {
		t.Errorf("session after disabling: %v, want ErrNoSession", err)
	}
	_, err = e.token("app", gtSecret, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {gtRedirect}})
	wantError(t, "code issued before", err, "invalid_grant", "disabled")
	if _, err := e.p.ValidateAccessToken(ctx, before.AccessToken); err != nil {
		t.Errorf("access token issued before disabling: %v; documented to stay valid until it expires", err)
	}

	if u, err = e.dir.UpdateUser(ctx, "alice", idp.UserPatch{Disabled: ptr(false)}); err != nil || u.Disabled() {
		t.Fatalf("enable: %+v, %v", u, err)
	}
	e.passwordGrant(t, "app")
}

// TestUpdateUserValidates: the profile is checked as at creation, a taken
// email is ErrUserExists, an unknown login ErrNotFound.
func TestUpdateUserValidates(t *testing.T) {
	e := newGrantEnv(t)
	ctx := context.Background()
	if _, err := e.dir.CreateUser(ctx, idp.NewUser{Username: "bob", Password: gtPassword, Email: "bob@example.com"}); err != nil {
		t.Fatal(err)
	}
	u, err := e.dir.UpdateUser(ctx, "alice", idp.UserPatch{Email: ptr(" alice@example.com "), Admin: ptr(true)})
	if err != nil || u.Email != "alice@example.com" || !u.Admin || u.Disabled() {
		t.Fatalf("update: %+v, %v", u, err)
	}
	if got, err := e.dir.UserByLogin(ctx, "alice@example.com"); err != nil || got.ID != e.alice.ID || !got.Admin {
		t.Errorf("by new email: %+v, %v", got, err)
	}
	var ve *idp.ValidationError
	if _, err := e.dir.UpdateUser(ctx, "alice", idp.UserPatch{Email: ptr("not an address")}); !errors.As(err, &ve) {
		t.Errorf("bad email: %v, want a ValidationError", err)
	}
	if _, err := e.dir.UpdateUser(ctx, "alice", idp.UserPatch{Email: ptr("BOB@example.com")}); !errors.Is(err, idp.ErrUserExists) {
		t.Errorf("taken email: %v, want ErrUserExists", err)
	}
	if _, err := e.dir.UpdateUser(ctx, "nobody", idp.UserPatch{}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown user: %v, want ErrNotFound", err)
	}
}
