package idp

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/keygate/keygate/password"
	"github.com/keygate/keygate/throttle"
)

// RFC 7636 Appendix B: the S256 example.
func TestPKCEExample(t *testing.T) {
	const verifier, challenge = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
	if !validVerifier(verifier) || !validChallenge(challenge) || !pkceMatches(challenge, verifier) {
		t.Fatal("the RFC 7636 example does not verify")
	}
	for _, bad := range []string{"", "short", verifier[:42], verifier + "!", string(make([]byte, 129))} {
		if validVerifier(bad) {
			t.Errorf("verifier %q accepted", bad)
		}
	}
	for _, bad := range []string{"", challenge[:42], challenge + "A", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-c=", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM"} {
		if validChallenge(bad) {
			t.Errorf("challenge %q accepted", bad)
		}
	}
	if pkceMatches(challenge, verifier[:len(verifier)-1]+"j") {
		t.Error("a different verifier matches")
	}
}

// OpenID Connect Core 1.0 Appendix A.3: an access token and its at_hash.
func TestAtHashExample(t *testing.T) {
	if got := atHash("RS256", "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"); got != "77QmUPtjPfzWtF2AnpK9RQ" {
		t.Errorf("at_hash %q", got)
	}
}

func TestWithQueryKeepsTheRegisteredQuery(t *testing.T) {
	v := url.Values{"code": {"c"}, "state": {"a b"}}
	for uri, want := range map[string]string{
		"https://app/cb":                  "https://app/cb?code=c&state=a+b",
		"https://app/cb?tenant=x%20y":     "https://app/cb?tenant=x%20y&code=c&state=a+b",
		"https://app/cb?":                 "https://app/cb?code=c&state=a+b",
		"com.example.app:/oauth2redirect": "com.example.app:/oauth2redirect?code=c&state=a+b",
	} {
		if got := withQuery(uri, v); got != want {
			t.Errorf("withQuery(%q) = %q, want %q", uri, got, want)
		}
	}
}

func TestCheckRedirectURIs(t *testing.T) {
	for _, bad := range []string{"/relative/cb", "app.example/cb", "https://app.example/cb#frag", "https:///cb", "https://app.example/c b",
		"myapp:/cb", "javascript:alert(1)", "data:text/html,x", "file:///etc/passwd"} {
		if err := checkRedirectURIs(&Client{RedirectURIs: []string{bad}, Public: true}, ClientLimits{}); err == nil {
			t.Errorf("redirect URI %q accepted", bad)
		}
	}
	for _, good := range []string{"https://app.example/cb", "http://127.0.0.1:8080/cb?x=1", "http://[::1]/cb", "http://localhost:8080/cb"} {
		for _, public := range []bool{false, true} {
			if err := checkRedirectURIs(&Client{RedirectURIs: []string{good}, Public: public, GrantTypes: []string{GrantAuthorizationCode}}, ClientLimits{}); err != nil {
				t.Errorf("redirect URI %q (public %v) refused: %v", good, public, err)
			}
		}
	}
	// RFC 8252 §7.1: a private-use scheme is a native app's, and native apps are public clients.
	const private = "com.example.app:/oauth2redirect"
	if err := checkRedirectURIs(&Client{RedirectURIs: []string{private}, Public: true}, ClientLimits{}); err != nil {
		t.Errorf("public client: %q refused: %v", private, err)
	}
	if err := checkRedirectURIs(&Client{RedirectURIs: []string{private}}, ClientLimits{}); err == nil {
		t.Errorf("confidential client: %q accepted", private)
	}
	if err := checkRedirectURIs(&Client{GrantTypes: []string{GrantAuthorizationCode}}, ClientLimits{}); err == nil {
		t.Error("an authorization_code client without a redirect URI accepted")
	}
}

// TestRedirectAllowed: exact matching, except the port of a public client's
// loopback IP redirect URI (RFC 8252 §7.3).
func TestRedirectAllowed(t *testing.T) {
	registered := []string{"http://127.0.0.1:1234/callback", "http://[::1]/cb?x=1", "http://localhost:8080/cb",
		"https://app.example:8443/cb", "com.example.app:/oauth2redirect"}
	cases := []struct {
		uri                  string
		public, confidential bool
	}{
		{"http://127.0.0.1:1234/callback", true, true},
		{"http://127.0.0.1:50123/callback", true, false},
		{"http://127.0.0.1/callback", true, false},
		{"http://127.0.0.1:65535/callback", true, false},
		{"http://[::1]:50123/cb?x=1", true, false},
		{"http://[::1]/cb?x=1", true, true},
		{"com.example.app:/oauth2redirect", true, true},
		{"https://app.example:8443/cb", true, true},

		{"http://127.0.0.1:0/callback", false, false},
		{"http://127.0.0.1:65536/callback", false, false},
		{"http://127.0.0.1:/callback", false, false},
		{"http://127.0.0.1:x/callback", false, false},
		{"http://127.0.0.1:50123/callback/", false, false},
		{"http://127.0.0.1:50123/Callback", false, false},
		{"http://127.0.0.1:50123/callback?x=1", false, false},
		{"http://127.0.0.1:50123/callback#f", false, false},
		{"http://127.0.0.2:50123/callback", false, false},
		{"http://[::1]:50123/callback", false, false}, // another host than registered
		{"http://127.0.0.1.evil.example:1234/callback", false, false},
		{"http://127.0.0.1@evil.example/callback", false, false},
		{"https://127.0.0.1:50123/callback", false, false},
		{"HTTP://127.0.0.1:50123/callback", false, false},
		{"http://[::1]:50123/cb?x=2", false, false},
		{"http://localhost:9090/cb", false, false}, // localhost is matched exactly
		{"http://localhost/cb", false, false},
		{"https://app.example:9443/cb", false, false}, // so is any other host
		{"com.example.app:/oauth2redirect/x", false, false},
	}
	for _, c := range cases {
		for _, public := range []bool{true, false} {
			cl := &Client{ID: "native", Public: public, RedirectURIs: registered}
			want := c.public
			if !public {
				want = c.confidential
			}
			if got := cl.RedirectAllowed(c.uri); got != want {
				t.Errorf("public %v: RedirectAllowed(%q) = %v, want %v", public, c.uri, got, want)
			}
		}
	}
}

// TestBrowserDefaults: browser login works on a plain store with the
// default timeouts.
func TestBrowserDefaults(t *testing.T) {
	ctx := context.Background()
	st := TempStore(t)
	cfg := Config{Issuer: "https://id.example", RefreshTTL: time.Hour, Signer: StubSigner,
		DirectoryConfig: DirectoryConfig{AccessTTL: time.Minute, Store: st,
			Hasher: password.NewHasher(password.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}, 1)},
		UserThrottle: throttle.Local(throttle.New(throttle.Limits{Burst: 5, Every: time.Minute}, 10)),
		IPThrottle:   throttle.Local(throttle.New(throttle.Limits{Burst: 5, Every: time.Minute}, 10))}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Session(ctx, "anything"); !errors.Is(err, ErrNoSession) {
		t.Errorf("Session: %v", err)
	}
	if n, err := p.PruneBrowser(ctx); n != 0 || err != nil {
		t.Errorf("PruneBrowser: %d, %v", n, err)
	}
	if p.SessionAbsoluteTimeout() != DefaultSessionAbsoluteTimeout {
		t.Errorf("default absolute timeout %s", p.SessionAbsoluteTimeout())
	}
}
