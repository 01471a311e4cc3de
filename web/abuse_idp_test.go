package web_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/keygate/keygate/idp"
	"github.com/keygate/keygate/internal/kgtest"
	"github.com/keygate/keygate/store"
)

// The attacks of the "Abuse-proof" issue, each through HTTP against a real
// server.

// TestAttackAPIRequestReplayedAsLogin: a request the client signed for a
// resource server ({"iss", "iat", "query"}, the client-signed-request pattern
// of the jwks SDK's ClientKeyVerifier), replayed to POST /login or to the
// jwt-bearer grant of a client allowed bare assertions, must not mint a
// token: a bare assertion is a login and nothing else.
func TestAttackAPIRequestReplayedAsLogin(t *testing.T) {
	t.Parallel()
	e := newTkEnv(t, kgtest.Options{})
	ck, _ := clientKeys()
	now := e.clock.Now().Unix()
	apiRequest := signRS256(t, ck, jwt.MapClaims{"iss": "client", "iat": now, "query": "SELECT * FROM orders"})

	res := e.do(t, request{path: "/login", body: apiRequest, ctype: "application/jwt"})
	if res.status < 400 || res.status >= 500 {
		t.Fatalf("POST /login with a signed API request: %s, want a 4xx", res)
	}
	if msg, _ := res.object(t)["error"].(string); !strings.Contains(msg, `"query"`) {
		t.Errorf("POST /login error %q does not name the claim", msg)
	}
	wantOAuthError(t, e.do(t, request{path: "/token", form: formOf("grant_type", tkJWT, "assertion", apiRequest)}), 400, "invalid_grant", "query")

	// Other claims that make it something else than a login.
	for _, extra := range []string{"scope", "nbf", "jti", "method", "path"} {
		c := jwt.MapClaims{"iss": "client", extra: "x"}
		if extra == "nbf" {
			c[extra] = now
		}
		res := e.do(t, request{path: "/login", body: signRS256(t, ck, c), ctype: "application/jwt"})
		if res.status < 400 || res.status >= 500 {
			t.Errorf("bare assertion with %q: %s, want a 4xx", extra, res)
		}
	}

	// The bare-login shape still logs in, on both routes.
	for _, c := range []jwt.MapClaims{
		{"iss": "client"},
		{"iss": "client", "sub": "client"},
		{"iss": "client", "sub": "client", "aud": e.URL, "iat": now, "exp": now + 60},
		{"iss": "client", "aud": e.URL + "/token", "iat": now - 60},
	} {
		if res := e.do(t, request{path: "/login", body: signRS256(t, ck, c), ctype: "application/jwt"}); res.status != 200 {
			t.Errorf("bare login %v: %s", c, res)
		}
		e.mustToken(t, request{form: formOf("grant_type", tkJWT, "assertion", signRS256(t, ck, c))})
	}
	// A standard RFC 7523 assertion may carry other claims, as before.
	std := jwt.MapClaims{"iss": "client", "aud": e.URL, "exp": now + 600, "jti": newJTI(), "iat": now - 3000, "scope": "read"}
	if res := e.do(t, request{path: "/login", body: signRS256(t, ck, std), ctype: "application/jwt"}); res.status != 200 {
		t.Errorf("standard assertion: %s", res)
	}
}

// TestAttackStaleBareAssertion: a bare assertion captured long ago (a
// year-old iat), or one made to live for long (a far exp), must not log in.
func TestAttackStaleBareAssertion(t *testing.T) {
	t.Parallel()
	e := newTkEnv(t, kgtest.Options{})
	ck, _ := clientKeys()
	now := e.clock.Now()
	for name, c := range map[string]jwt.MapClaims{
		"iat a year ago":       {"iss": "client", "iat": now.AddDate(-1, 0, 0).Unix()},
		"iat ten minutes ago":  {"iss": "client", "iat": now.Add(-10 * time.Minute).Unix()},
		"exp in fifty minutes": {"iss": "client", "exp": now.Add(50 * time.Minute).Unix()},
		"iat in the future":    {"iss": "client", "iat": now.Add(time.Hour).Unix()},
	} {
		t.Run(name, func(t *testing.T) {
			a := signRS256(t, ck, c)
			res := e.do(t, request{path: "/login", body: a, ctype: "application/jwt"})
			if res.status < 400 || res.status >= 500 {
				t.Errorf("POST /login: %s, want a 4xx", res)
			} else if msg, _ := res.object(t)["error"].(string); msg == "" {
				t.Errorf("POST /login: no error message: %s", res)
			}
			wantOAuthError(t, e.do(t, request{path: "/token", form: formOf("grant_type", tkJWT, "assertion", a)}), 400, "invalid_grant", "")
		})
	}
}

// TestAttackIntrospectionScanning: a confidential client must not learn,
// through /introspect, whether another client's tokens are active, nor read
// their claims (RFC 7662 §4). Only the token's own client and clients
// registered as resource servers (introspect) see active: true.
func TestAttackIntrospectionScanning(t *testing.T) {
	t.Parallel()
	e := newTkEnv(t, kgtest.Options{})
	svcTok := e.mustToken(t, request{form: formOf("grant_type", tkCC, "scope", "read"), basic: e.basic("svc")})
	alice := e.password(t, "script", "alice", tkAlicePW, "openid read")
	otherTok := e.mustToken(t, request{form: formOf("grant_type", tkCC), basic: e.basic("other")})

	ask := func(t *testing.T, caller, token string) map[string]any {
		t.Helper()
		res := e.do(t, request{path: "/introspect", form: formOf("token", token), basic: e.basic(caller)})
		if res.status != 200 {
			t.Fatalf("introspect as %s: %s", caller, res)
		}
		return res.object(t)
	}
	// "other" is an ordinary confidential client: it scans tokens it got hold of.
	for name, tok := range map[string]string{
		"svc's access token":    svcTok.AccessToken,
		"alice's access token":  alice.AccessToken,
		"alice's refresh token": alice.RefreshToken,
	} {
		if m := ask(t, "other", tok); m["active"] != false || len(m) != 1 {
			t.Errorf("other introspecting %s: %v, want only active=false", name, m)
		}
	}
	// Its own token, it may.
	if m := ask(t, "other", otherTok.AccessToken); m["active"] != true || m["client_id"] != "other" {
		t.Errorf("other introspecting its own token: %v", m)
	}
	// The token's own client, and a resource server, see it active.
	if m := ask(t, "script", alice.AccessToken); m["active"] != true {
		t.Errorf("script introspecting its own token: %v", m)
	}
	if m := ask(t, "script", alice.RefreshToken); m["active"] != true {
		t.Errorf("script introspecting its own refresh token: %v", m)
	}
	for _, tok := range []string{alice.AccessToken, alice.RefreshToken, otherTok.AccessToken} {
		if m := ask(t, "svc", tok); m["active"] != true {
			t.Errorf("resource server svc: %v", m)
		}
	}
}

// TestAttackAuthCodeFlood: a logged-in browser (or a script holding its
// session cookie) asking /authorize over and over, 200 requests at once,
// gets its codes, but the database keeps at most idp.MaxCodesPerSession of
// them for the session; the newest one still works.
func TestAttackAuthCodeFlood(t *testing.T) {
	t.Parallel()
	e := newBrEnv(t, kgtest.Options{})
	b := e.browser(t)
	verifier, challenge := brPKCE("flood")
	params := brAuthParams("webapp", brAppCB, challenge)
	codes := []string{b.login(t, params, "alice", brAlicePW)}

	const calls = 200
	// The browser's cookies, without its 10 s timeout: 200 writes at once on
	// a loaded machine queue for SQLite's write lock.
	c := &http.Client{Jar: b.jar, Timeout: time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []string
	)
	for range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := c.Get(e.URL + "/authorize?" + params.Encode())
			if err != nil {
				mu.Lock()
				errs = append(errs, err.Error())
				mu.Unlock()
				return
			}
			res.Body.Close()
			loc, _ := url.Parse(res.Header.Get("Location"))
			mu.Lock()
			defer mu.Unlock()
			if code := loc.Query().Get("code"); res.StatusCode/100 == 3 && code != "" {
				codes = append(codes, code)
			} else {
				errs = append(errs, fmt.Sprintf("%d %s", res.StatusCode, loc))
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d of %d authorization requests failed, e.g. %s", len(errs), calls, errs[0])
	}
	stored := 0
	for _, code := range codes {
		sum := sha256.Sum256([]byte(code))
		_, err := e.Store.GetAuthCode(t.Context(), hex.EncodeToString(sum[:]))
		switch {
		case err == nil:
			stored++
		case !errors.Is(err, store.ErrNotFound):
			t.Fatal(err)
		}
	}
	if stored > idp.MaxCodesPerSession {
		t.Errorf("%d codes of one session stored after %d requests, want at most %d", stored, len(codes), idp.MaxCodesPerSession)
	}
	// The newest code is redeemable.
	last := e.wantCodeRedirect(t, b.get(t, "/authorize?"+params.Encode()), brAppCB, params.Get("state"))
	if tr := e.exchange(t, "webapp", last, brAppCB, verifier); tr.AccessToken == "" {
		t.Errorf("the newest code after a flood: %+v", tr)
	}
}
