package web_test

// DPoP authorization code binding (RFC 9449 §10): /authorize takes
// dpop_jkt, and the code is then redeemed only with a proof from that key.
// Run over HTTP with the cookie-keeping test browser, and with
// golang.org/x/oauth2 as a native app would.

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"

	"github.com/keygate/keygate/idp"
	"github.com/keygate/keygate/internal/jwtforge"
	"github.com/keygate/keygate/internal/kgtest"
)

func TestDPoPAuthorizationCodeBinding(t *testing.T) {
	t.Parallel()
	e := newBrEnv(t, kgtest.Options{})
	key, other := jwtforge.NewDPoPKey(t, "ES256", "client"), jwtforge.NewDPoPKey(t, "EdDSA", "thief")
	b := e.browser(t)
	verifier, challenge := brPKCE("dpop")
	exchange := func(client, code, redirect string, k *jwtforge.DPoPKey) reply {
		r := request{path: "/token", form: formOf("grant_type", "authorization_code", "code", code, "redirect_uri", redirect,
			"code_verifier", verifier)}
		if secret := e.secret[client]; secret != "" {
			r.basic = []string{client, secret}
		} else {
			r.form.Set("client_id", client)
		}
		if k != nil {
			r.hdr = map[string]string{"DPoP": k.Proof(t, http.MethodPost, e.URL+"/token", e.clock.Now(), "")}
		}
		return send(t, e.URL, r)
	}

	for _, c := range []struct{ client, redirect string }{{"webapp", brAppCB}, {"conf", brConfCB}} {
		t.Run(c.client, func(t *testing.T) {
			params := brAuthParams(c.client, c.redirect, challenge, "dpop_jkt", key.JKT)
			var code string
			if c.client == "webapp" { // the login form carries dpop_jkt through the sealed request
				code = b.login(t, params, "alice", brAlicePW)
			} else { // the session's user: the code at once
				code = e.wantCodeRedirect(t, b.get(t, "/authorize?"+params.Encode()), c.redirect, params.Get("state"))
			}
			// Refusals leave the code unspent; the holder of the key then redeems it.
			for _, r := range []struct {
				name       string
				key        *jwtforge.DPoPKey
				code, desc string
			}{
				{"without a proof", nil, "invalid_dpop_proof", "dpop_jkt"},
				{"with another key's proof", other, "invalid_grant", "dpop_jkt"},
			} {
				if !wantOAuthError(t, exchange(c.client, code, c.redirect, r.key), http.StatusBadRequest, r.code, r.desc) {
					t.Errorf("exchange %s", r.name)
				}
			}
			res := exchange(c.client, code, c.redirect, key)
			var tr tokenResponse
			if res.status != http.StatusOK || json.Unmarshal(res.body, &tr) != nil {
				t.Fatalf("exchange with the dpop_jkt key: %s", res)
			}
			if tr.TokenType != "DPoP" || cnfJKT(t, tr.AccessToken) != key.JKT {
				t.Errorf("exchange with the dpop_jkt key: token_type %q cnf.jkt %q, want DPoP and %q", tr.TokenType, cnfJKT(t, tr.AccessToken), key.JKT)
			}
		})
	}

	t.Run("malformed dpop_jkt", func(t *testing.T) {
		for _, bad := range []string{"short", key.JKT + "A", "!" + key.JKT[1:]} {
			params := brAuthParams("conf", brConfCB, challenge, "dpop_jkt", bad)
			brWantErrorRedirect(t, b.get(t, "/authorize?"+params.Encode()), brConfCB, "invalid_request", params.Get("state"))
		}
	})
}

// dpopTransport adds a fresh DPoP proof by key to every request, as a DPoP
// client library does; x/oauth2 has no DPoP of its own, so an app brings it
// in the HTTP client it hands to x/oauth2.
type dpopTransport struct {
	t   *testing.T
	key *jwtforge.DPoPKey
	e   *brEnv
}

func (d dpopTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	u := *r.URL
	u.RawQuery = ""
	r.Header.Set("DPoP", d.key.Proof(d.t, r.Method, u.String(), d.e.clock.Now(), ""))
	return http.DefaultTransport.RoundTrip(r)
}

// TestDPoPCodeFlowXOAuth2: a native app asks for a code bound to its key
// with x/oauth2's SetAuthURLParam("dpop_jkt"), and exchanges it through an
// HTTP client that signs proofs; the same exchange without proofs fails.
func TestDPoPCodeFlowXOAuth2(t *testing.T) {
	t.Parallel()
	e := newBrEnv(t, kgtest.Options{})
	nvRegister(t, e)
	key := jwtforge.NewDPoPKey(t, "ES256", "app")
	conf := nvConfig(e, nvLoopback)
	b := e.browser(t)
	start := func(t *testing.T, state, verifier string) string {
		authURL := conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("dpop_jkt", key.JKT))
		hidden := brLoginPage(t, b.get(t, authURL))
		return e.wantCodeRedirect(t, b.submit(t, "/login", hidden, "username", "alice", "password", brAlicePW), nvLoopback, state)
	}

	v := oauth2.GenerateVerifier()
	code := start(t, "st-plain", v)
	_, err := conf.Exchange(t.Context(), code, oauth2.VerifierOption(v))
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_dpop_proof" {
		t.Fatalf("x/oauth2 Exchange without a proof: %v, want invalid_dpop_proof", err)
	}

	ctx := context.WithValue(t.Context(), oauth2.HTTPClient, &http.Client{Transport: dpopTransport{t: t, key: key, e: e}})
	tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(v))
	if err != nil {
		t.Fatalf("x/oauth2 Exchange with proofs: %v", err)
	}
	if tok.Type() != "DPoP" || cnfJKT(t, tok.AccessToken) != key.JKT {
		t.Fatalf("token type %q cnf.jkt %q, want DPoP and %q", tok.Type(), cnfJKT(t, tok.AccessToken), key.JKT)
	}
	// The token works at /userinfo with its scheme (x/oauth2 writes
	// "DPoP <token>") and a proof bound to it.
	req, _ := http.NewRequest(http.MethodGet, e.URL+"/userinfo", nil)
	tok.SetAuthHeader(req)
	req.Header.Set("DPoP", key.Proof(t, http.MethodGet, e.URL+"/userinfo", e.clock.Now(), tok.AccessToken))
	if res, body := kgtest.Do(t, http.DefaultClient, req); res.StatusCode != http.StatusOK {
		t.Errorf("userinfo with the DPoP token: %d %s", res.StatusCode, body)
	}
}

// approveDevice starts a device authorization for client and has the
// browser's (logged-in) user approve it; it returns the device code.
func (b *brBrowser) approveDevice(t *testing.T, client, scope string) string {
	t.Helper()
	da := startDevice(t, b.e.URL, client, scope)
	page := b.get(t, "/device?user_code="+da.UserCode)
	confirm := b.submit(t, "/device", brHiddenFields(t, page), "user_code", da.UserCode)
	brWantPage(t, b.submit(t, "/device", brHiddenFields(t, confirm), "action", "approve"), http.StatusOK, "Device connected")
	return da.DeviceCode
}

// TestDPoPRequiredForEveryGrant: a client registered with
// dpop_bound_access_tokens gets no token from any grant without a proof
// (invalid_dpop_proof, the grant left unspent), and a DPoP-bound one with it:
// a public client through password, authorization_code, refresh_token and
// device_code, a confidential one through client_credentials and
// jwt-bearer (the assertion authenticating the client).
func TestDPoPRequiredForEveryGrant(t *testing.T) {
	t.Parallel()
	e := newBrEnv(t, kgtest.Options{})
	ck, _ := clientKeys()
	keys, err := idp.ParsePublicKeys(publicPEM(t, ck))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*idp.Client{
		{ID: "dpub", Public: true, DPoPBoundAccessTokens: true, Scopes: []string{"openid", "profile"}, RedirectURIs: []string{brAppCB},
			GrantTypes: []string{idp.GrantPassword, idp.GrantRefreshToken, idp.GrantAuthorizationCode, idp.GrantDeviceCode}},
		{ID: "dconf", DPoPBoundAccessTokens: true, Scopes: []string{"read"}, Keys: keys,
			GrantTypes: []string{idp.GrantClientCredentials, idp.GrantJWTBearer}},
	} {
		secret, err := e.IDP.Directory().RegisterClient(t.Context(), c, !c.Public)
		if err != nil {
			t.Fatalf("register %s: %v", c.ID, err)
		}
		e.secret[c.ID] = secret
	}
	key := jwtforge.NewDPoPKey(t, "ES256", "client")
	post := func(r request, withProof bool) reply {
		r.path = "/token"
		if withProof {
			r.hdr = map[string]string{"DPoP": key.Proof(t, http.MethodPost, e.URL+"/token", e.clock.Now(), "")}
		}
		return send(t, e.URL, r)
	}
	public := func(kv ...string) request { return request{form: formOf(append(kv, "client_id", "dpub")...)} }
	verifier, challenge := brPKCE("grants")
	b := e.browser(t)
	b.login(t, brAuthParams("webapp", brAppCB, challenge), "alice", brAlicePW) // a session for the code and device grants

	cases := []struct {
		grant string
		req   func(t *testing.T) request // a fresh, otherwise valid request
	}{
		{idp.GrantPassword, func(*testing.T) request {
			return public("grant_type", idp.GrantPassword, "username", "alice", "password", brAlicePW, "scope", "openid")
		}},
		{idp.GrantAuthorizationCode, func(t *testing.T) request {
			params := brAuthParams("dpub", brAppCB, challenge, "scope", "openid profile")
			code := e.wantCodeRedirect(t, b.get(t, "/authorize?"+params.Encode()), brAppCB, params.Get("state"))
			return public("grant_type", idp.GrantAuthorizationCode, "code", code, "redirect_uri", brAppCB, "code_verifier", verifier)
		}},
		{idp.GrantRefreshToken, func(t *testing.T) request {
			res := post(public("grant_type", idp.GrantPassword, "username", "alice", "password", brAlicePW, "scope", "openid"), true)
			rt, _ := res.object(t)["refresh_token"].(string)
			return public("grant_type", idp.GrantRefreshToken, "refresh_token", rt)
		}},
		{idp.GrantDeviceCode, func(t *testing.T) request {
			return public("grant_type", idp.GrantDeviceCode, "device_code", b.approveDevice(t, "dpub", "openid profile"))
		}},
		{idp.GrantClientCredentials, func(*testing.T) request {
			return request{form: formOf("grant_type", idp.GrantClientCredentials), basic: []string{"dconf", e.secret["dconf"]}}
		}},
		{idp.GrantJWTBearer, func(t *testing.T) request {
			now := e.clock.Now()
			return request{form: formOf("grant_type", idp.GrantJWTBearer, "assertion", signRS256(t, ck, jwt.MapClaims{"iss": "dconf",
				"sub": "dconf", "aud": e.URL + "/token", "iat": now.Unix(), "exp": now.Add(time.Minute).Unix(), "jti": newJTI()}))}
		}},
	}
	for _, c := range cases {
		t.Run(c.grant, func(t *testing.T) {
			if !wantOAuthError(t, post(c.req(t), false), http.StatusBadRequest, "invalid_dpop_proof", "DPoP proof") {
				t.Errorf("%s without a proof was not refused", c.grant)
			}
			res := post(c.req(t), true)
			var tr tokenResponse
			if res.status != http.StatusOK || json.Unmarshal(res.body, &tr) != nil {
				t.Fatalf("%s with a proof: %s", c.grant, res)
			}
			if tr.TokenType != "DPoP" || cnfJKT(t, tr.AccessToken) != key.JKT {
				t.Errorf("%s: token_type %q cnf.jkt %q, want DPoP and %q", c.grant, tr.TokenType, cnfJKT(t, tr.AccessToken), key.JKT)
			}
		})
	}
}
