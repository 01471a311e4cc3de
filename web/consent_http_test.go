package web_test

// HTTP-level tests of consent for third-party clients: the page, Allow and
// Deny, remembered grants, prompt=consent and prompt=none, revocation from
// the account page, and first-party clients never asking.

import (
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/keygate/keygate/idp"
	"github.com/keygate/keygate/internal/kgtest"
)

const brPhotosCB = "https://photos.example/cb"

// newConsentEnv is newBrEnv plus "photos", a confidential third-party client
// (named Photo Printer) with a scope Keygate has no description for.
func newConsentEnv(t *testing.T) *brEnv {
	t.Helper()
	e := newBrEnv(t, kgtest.Options{})
	c := &idp.Client{ID: "photos", Name: "Photo Printer", ThirdParty: true, RedirectURIs: []string{brPhotosCB},
		GrantTypes: []string{idp.GrantAuthorizationCode, idp.GrantRefreshToken},
		Scopes:     []string{"openid", "profile", "email", "offline_access", "print:photos"}}
	secret, err := e.IDP.Directory().RegisterClient(t.Context(), c, true)
	if err != nil {
		t.Fatal(err)
	}
	e.secret[c.ID] = secret
	return e
}

// brConsentPage checks r is the consent page and returns its hidden fields.
func brConsentPage(t *testing.T, r reply) url.Values {
	t.Helper()
	return brFormPage(t, r, "the consent page", `action="/consent"`)
}

// brWantDenied checks r sends the client access_denied with its state.
func brWantDenied(t *testing.T, r reply, redirect, state string) {
	t.Helper()
	if r.status != http.StatusSeeOther && r.status != http.StatusFound {
		t.Fatalf("want a redirect with error=access_denied, got %s", r)
	}
	loc := r.location(t)
	q := loc.Query()
	if !strings.HasPrefix(loc.String(), redirect+"?") || q.Get("error") != "access_denied" || q.Get("state") != state || q.Has("code") {
		t.Errorf("deny redirects to %s, want %s with error=access_denied and state %q", loc, redirect, state)
	}
}

func TestConsentHTTP(t *testing.T) {
	t.Parallel()
	e := newConsentEnv(t)
	b := e.browser(t)
	params := brAuthParams("photos", brPhotosCB, "", "scope", "openid profile print:photos", "state", "s1")

	// First code: login, then the consent page naming the client and the
	// scopes, described or raw.
	hidden := brLoginPage(t, b.get(t, "/authorize?"+params.Encode()))
	r := b.submit(t, "/login", hidden, "username", "alice", "password", brAlicePW)
	page := html.UnescapeString(string(r.body))
	consent := brConsentPage(t, r)
	for _, want := range []string{"Photo Printer", "See your name and username", "<code>print:photos</code>", "alice"} {
		if !strings.Contains(page, want) {
			t.Errorf("consent page lacks %q: %s", want, page)
		}
	}
	if strings.Contains(page, "email address") {
		t.Error("consent page lists a scope not requested")
	}
	if r.hdr.Get("X-Frame-Options") != "DENY" {
		t.Error("the consent page can be framed")
	}

	t.Run("no CSRF token, no consent", func(t *testing.T) {
		h := url.Values{"request": consent["request"], "decision": {"allow"}}
		brWantPage(t, b.post(t, "/consent", h), http.StatusForbidden, "did not come from this site")
		if _, err := e.Store.GetConsent(t.Context(), aliceID(t, e), "photos"); err == nil {
			t.Error("a consent was recorded without a CSRF token")
		}
	})

	code := e.wantCodeRedirect(t, b.submit(t, "/consent", consent, "decision", "allow"), brPhotosCB, "s1")
	tr := e.exchange(t, "photos", code, brPhotosCB, "")
	if tr.RefreshToken == "" {
		t.Fatal("no refresh token")
	}

	t.Run("granted scopes go straight through, prompt=none too", func(t *testing.T) {
		e.wantCodeRedirect(t, b.get(t, "/authorize?"+params.Encode()), brPhotosCB, "s1")
		fewer := brAuthParams("photos", brPhotosCB, "", "scope", "openid", "prompt", "none", "state", "s2")
		e.wantCodeRedirect(t, b.get(t, "/authorize?"+fewer.Encode()), brPhotosCB, "s2")
	})

	t.Run("a new scope asks again; prompt=none answers consent_required", func(t *testing.T) {
		more := brAuthParams("photos", brPhotosCB, "", "scope", "openid email", "prompt", "none", "state", "s3")
		brWantErrorRedirect(t, b.get(t, "/authorize?"+more.Encode()), brPhotosCB, "consent_required", "s3")
		more.Del("prompt")
		h := brConsentPage(t, b.get(t, "/authorize?"+more.Encode()))
		e.wantCodeRedirect(t, b.submit(t, "/consent", h, "decision", "allow"), brPhotosCB, "s3")
		c, err := e.Store.GetConsent(t.Context(), aliceID(t, e), "photos")
		if err != nil || strings.Join(c.Scopes, " ") != "openid profile print:photos email" {
			t.Errorf("consent %+v, %v; want the scopes of both grants", c, err)
		}
	})

	t.Run("prompt=consent always asks", func(t *testing.T) {
		again := brAuthParams("photos", brPhotosCB, "", "scope", "openid", "prompt", "consent", "state", "s4")
		h := brConsentPage(t, b.get(t, "/authorize?"+again.Encode()))
		e.wantCodeRedirect(t, b.submit(t, "/consent", h, "decision", "allow"), brPhotosCB, "s4")
	})

	t.Run("deny sends access_denied with the state", func(t *testing.T) {
		again := brAuthParams("photos", brPhotosCB, "", "scope", "openid", "prompt", "consent", "state", "s5")
		h := brConsentPage(t, b.get(t, "/authorize?"+again.Encode()))
		brWantDenied(t, b.submit(t, "/consent", h, "decision", "deny"), brPhotosCB, "s5")
		brWantPage(t, b.submit(t, "/consent", h, "decision", "maybe"), http.StatusBadRequest, "Allow or Deny")
	})

	t.Run("account lists the app; revoking ends its refresh tokens and asks again", func(t *testing.T) {
		acc := b.get(t, "/account")
		body := html.UnescapeString(string(acc.body))
		if acc.status != http.StatusOK || !strings.Contains(body, "Apps with access") || !strings.Contains(body, "Photo Printer") ||
			!strings.Contains(body, "print:photos") {
			t.Fatalf("account page: %s", acc)
		}
		// A code on its way when access is revoked is refused too.
		pending := e.wantCodeRedirect(t, b.get(t, "/authorize?"+params.Encode()), brPhotosCB, "s1")
		revoke := url.Values{"csrf": brHiddenFields(t, acc)["csrf"], "client_id": {"photos"}}
		noCSRF := url.Values{"client_id": {"photos"}}
		brWantPage(t, b.post(t, "/account/apps/revoke", noCSRF), http.StatusForbidden, "did not come from this site")
		r := b.post(t, "/account/apps/revoke", revoke)
		if r.status != http.StatusSeeOther || r.location(t).Path != "/account" {
			t.Fatalf("revoke: %s", r)
		}
		if body := html.UnescapeString(string(b.get(t, r.location(t).RequestURI()).body)); strings.Contains(body, "Photo Printer") || !strings.Contains(body, "revoked") {
			t.Errorf("account page after revoking: %s", body)
		}
		brWantOAuthError(t, e.token(t, "photos", "grant_type", "refresh_token", "refresh_token", tr.RefreshToken),
			http.StatusBadRequest, "invalid_grant", "")
		brWantOAuthError(t, e.token(t, "photos", "grant_type", "authorization_code", "code", pending, "redirect_uri", brPhotosCB),
			http.StatusBadRequest, "invalid_grant", "consent")
		brConsentPage(t, b.get(t, "/authorize?"+params.Encode()))
		// Revoking again (another tab) is no error.
		if r := b.post(t, "/account/apps/revoke", revoke); r.status != http.StatusSeeOther {
			t.Errorf("second revoke: %s", r)
		}
	})
}

// TestConsentFirstParty: a first-party client (the default) never shows the
// consent page, not even for prompt=consent, and nothing is recorded.
func TestConsentFirstParty(t *testing.T) {
	t.Parallel()
	e := newConsentEnv(t)
	b := e.browser(t)
	_, challenge := brPKCE("fp")
	b.login(t, brAuthParams("webapp", brAppCB, challenge), "alice", brAlicePW)
	e.wantCodeRedirect(t, b.get(t, "/authorize?"+brAuthParams("webapp", brAppCB, challenge, "prompt", "consent").Encode()), brAppCB, "st-webapp")
	e.wantCodeRedirect(t, b.get(t, "/authorize?"+brAuthParams("conf", brConfCB, "", "prompt", "none").Encode()), brConfCB, "st-conf")
	if cs, err := e.Store.ListUserConsents(t.Context(), aliceID(t, e)); err != nil || len(cs) != 0 {
		t.Errorf("consents %v, %v; want none", cs, err)
	}
	if body := string(b.get(t, "/account").body); !strings.Contains(body, "No app run by someone else") {
		t.Errorf("account page: %s", body)
	}
	// A third-party client's prompt=none before any consent.
	brWantErrorRedirect(t, b.get(t, "/authorize?"+brAuthParams("photos", brPhotosCB, "", "prompt", "none").Encode()),
		brPhotosCB, "consent_required", "st-photos")
}

func aliceID(t *testing.T, e *brEnv) string {
	t.Helper()
	u, err := e.IDP.Directory().UserByLogin(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	return u.ID
}

// TestAdminThirdPartyClient: the admin API shows third_party and PATCH sets it.
func TestAdminThirdPartyClient(t *testing.T) {
	e := newAtkEnv(t)
	admin := e.password(t, "root", atkRootPW, "admin").AccessToken
	if _, err := e.IDP.Directory().RegisterClient(t.Context(), &idp.Client{ID: "photos", GrantTypes: []string{"client_credentials"}}, true); err != nil {
		t.Fatal(err)
	}
	r := wantAdminStatus(t, "GET photos", e.adminCall(t, admin, "GET", "/admin/clients/photos", ""), 200)
	if got := r.object(t); got["third_party"] != false {
		t.Errorf("a new client: %s, want third_party false", r.body)
	}
	r = wantAdminStatus(t, "PATCH photos", e.adminCall(t, admin, "PATCH", "/admin/clients/photos", `{"third_party":true}`), 200)
	if got := r.object(t); got["third_party"] != true {
		t.Errorf("after PATCH: %s, want third_party true", r.body)
	}
	if c, err := e.IDP.Directory().Client(t.Context(), "photos"); err != nil || !c.ThirdParty {
		t.Errorf("stored client third party %v (%v)", c != nil && c.ThirdParty, err)
	}
}
