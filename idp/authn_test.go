package idp_test

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/idp"
)

// idClaims reads an ID token's claims (signatures are checked by the RP
// tests; here what matters is what was put in).
func idClaims(t *testing.T, token string) idp.IDClaims {
	t.Helper()
	return jwtPayload[idp.IDClaims](t, token)
}

// TestAMRTravels follows the methods a session was started with through the
// authorization code, the code grant's ID and access tokens, and a refresh:
// every token says how the user logged in.
func TestAMRTravels(t *testing.T) {
	cases := []struct {
		name    string
		methods []string
		amr     []string
		acr     string
	}{
		{"no methods recorded is a password", nil, []string{"pwd"}, idp.ACRPassword},
		{"password", []string{idp.AMRPassword}, []string{"pwd"}, idp.ACRPassword},
		{"password and TOTP", []string{idp.AMRPassword, idp.AMROTP, idp.AMRMultiFactor}, []string{"pwd", "otp", "mfa"}, idp.ACRMultiFactor},
		{"passkey", []string{idp.AMRHardwareKey, idp.AMRUser, idp.AMRMultiFactor}, []string{"hwk", "user", "mfa"}, idp.ACRPhishingResistant},
		{"synced passkey", []string{idp.AMRSoftwareKey, idp.AMRUser, idp.AMRMultiFactor}, []string{"swk", "user", "mfa"}, idp.ACRPhishingResistant},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newGrantEnv(t)
			code, s := e.issueCodeWith(t, "app", gtRedirect, "", c.methods)
			res, err := e.token("app", gtSecret, url.Values{"grant_type": {"authorization_code"}, "code": {code},
				"redirect_uri": {gtRedirect}})
			if err != nil {
				t.Fatal(err)
			}
			check := func(what string, amr []string, acr string) {
				t.Helper()
				if !slices.Equal(amr, c.amr) || acr != c.acr {
					t.Errorf("%s: amr %q acr %q, want %q %q", what, amr, acr, c.amr, c.acr)
				}
			}
			idt := idClaims(t, res.IDToken)
			check("ID token", idt.AMR, idt.ACR)
			at := unverifiedClaims(t, res.AccessToken)
			check("access token", at.AMR, at.ACR)
			caller, err := e.dir.Client(context.Background(), "app")
			if err != nil {
				t.Fatal(err)
			}
			for what, tok := range map[string]string{"introspected access token": res.AccessToken, "introspected refresh token": res.RefreshToken} {
				out, err := e.p.Introspect(context.Background(), caller, tok)
				if err != nil || out["active"] != true {
					t.Fatalf("%s: %v %v", what, out, err)
				}
				amr, _ := out["amr"].([]string)
				acr, _ := out["acr"].(string)
				check(what, amr, acr)
			}
			e.clock.Advance(time.Minute)
			ref, err := e.token("app", gtSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {res.RefreshToken}})
			if err != nil {
				t.Fatal(err)
			}
			idt = idClaims(t, ref.IDToken)
			check("refreshed ID token", idt.AMR, idt.ACR)
			if idt.AuthTime != s.AuthTime.Unix() {
				t.Errorf("refreshed auth_time %d, want the login's %d", idt.AuthTime, s.AuthTime.Unix())
			}
		})
	}
}

// TestACRValuesNeedLogin: a session weaker than acr_values asks for needs a
// fresh login; as strong or stronger does not; unknown values ask nothing.
func TestACRValuesNeedLogin(t *testing.T) {
	e := newGrantEnv(t)
	ctx := context.Background()
	pwd, mfa, phr := []string{"pwd"}, []string{"pwd", "otp", "mfa"}, []string{"hwk", "user", "mfa"}
	cases := []struct {
		acrValues string
		methods   []string
		needs     bool
	}{
		{"", pwd, false},
		{idp.ACRPassword, pwd, false},
		{idp.ACRMultiFactor, pwd, true},
		{idp.ACRMultiFactor, mfa, false},
		{idp.ACRMultiFactor, phr, false},
		{idp.ACRPhishingResistant, mfa, true},
		{idp.ACRPhishingResistant + " " + idp.ACRMultiFactor, mfa, false}, // any listed value will do
		{"urn:example:unknown", pwd, false},
		{"urn:example:unknown " + idp.ACRMultiFactor, pwd, true},
	}
	for _, c := range cases {
		ar, err := e.p.ParseAuthorize(ctx, url.Values{"client_id": {"app"}, "redirect_uri": {gtRedirect},
			"response_type": {"code"}, "scope": {"openid"}, "acr_values": {c.acrValues}})
		if err != nil {
			t.Fatal(err)
		}
		_, s, err := e.p.StartSession(ctx, e.alice, c.methods)
		if err != nil {
			t.Fatal(err)
		}
		if got := ar.NeedsLogin(s, e.clock.Now()); got != c.needs {
			t.Errorf("acr_values %q, session %q: NeedsLogin = %v, want %v", c.acrValues, c.methods, got, c.needs)
		}
		// The sealed login request keeps acr_values.
		sealed, err := e.p.SealAuthRequest(ar)
		if err != nil {
			t.Fatal(err)
		}
		back, err := e.p.OpenAuthRequest(ctx, sealed)
		if err != nil || back.ACRValues != ar.ACRValues {
			t.Errorf("sealed request: acr_values %q, %v; want %q", back.ACRValues, err, ar.ACRValues)
		}
	}
	_, err := e.p.ParseAuthorize(ctx, url.Values{"client_id": {"app"}, "redirect_uri": {gtRedirect},
		"response_type": {"code"}, "scope": {"openid"}, "acr_values": {strings.Repeat("a", 513)}})
	wantAuthorizeError(t, err, "invalid_request")
}

func wantAuthorizeError(t *testing.T, err error, code string) {
	t.Helper()
	ae, ok := err.(*idp.AuthorizeError)
	if !ok || ae.Code != code {
		t.Errorf("error %v, want an *AuthorizeError %s", err, code)
	}
}

// TestPasswordGrantAMR: the password grant's tokens say "pwd".
func TestPasswordGrantAMR(t *testing.T) {
	e := newGrantEnv(t)
	at := unverifiedClaims(t, e.passwordGrant(t, "app").AccessToken)
	if !slices.Equal(at.AMR, []string{"pwd"}) || at.ACR != idp.ACRPassword {
		t.Errorf("password grant access token: amr %q acr %q", at.AMR, at.ACR)
	}
}
