package jwks_test

// The consumer SDK against a complete, real Keygate (internal/kgtest: SQLite,
// rotation.Manager, identity provider, HTTP server), as a resource server
// would use it:
//
//   - TestLiveVerify: genuine tokens inside and outside their time window,
//     wrong audience, wrong issuer, and the JWT attack canon (alg none, RS/HS confusion, jku/x5u/jwk headers, tampered payloads),
//     each forged from a genuine token;
//   - TestLiveRotationWhileVerifying: several consumers verifying from
//     several goroutines while Keygate rotates (scheduled, manual, forced) and
//     revokes keys: zero false rejections, revoked kids refused once the
//     cache refreshes, and the exact number of JWKS fetches;
//   - TestLiveIssuerDown: the issuer stopped, answering 500 or garbage;
//   - TestLiveKIDFlood: thousands of forged kids.
//
// Time. Keygate and every verifier share one injected clock (kgtest.Clock,
// Config.Now), so token windows and rotations are crossed by advancing
// it, never by sleeping. The SDK reads the injected clock for claim checks
// and for the unknown-kid refetch interval (the instant of the last fetch is
// stamped with it, whether that fetch was an unknown-kid refetch or a
// background refresh), while jwk.Cache's background refresh runs on real
// time. So every rate-limit figure below is exact in injected time, and the
// only real-time waits are bounded polls for a background refresh, in the
// consumers configured with 1 s refresh bounds.

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/keygate/keygate/idp"
	"github.com/keygate/keygate/internal/jwtforge"
	"github.com/keygate/keygate/internal/kgtest"
	"github.com/keygate/keygate/internal/poll"
	"github.com/keygate/keygate/jwks"
	"github.com/keygate/keygate/rotation"
	"github.com/keygate/keygate/store"
)

// liveT0 is where every injected clock of this file starts.
var liveT0 = time.Date(2033, time.May, 17, 8, 0, 0, 0, time.UTC)

const liveSecret = "kgs_live-consumer-test-secret-5e2b7c9d1a3f4e6b8c0d"

var liveQuiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// liveClients are the static clients of every Keygate started here. All use
// client credentials with liveSecret.
func liveClients() []idp.Client {
	cc := func(id string, aud []string, ttl, nbf time.Duration) idp.Client {
		return idp.Client{ID: id, SecretHash: idp.HashSecret(liveSecret), GrantTypes: []string{idp.GrantClientCredentials},
			Scopes: []string{"read", "write"}, Audience: aud, AccessTTL: ttl, NotBeforeDelay: nbf}
	}
	return []idp.Client{
		cc("orders-app", []string{"orders"}, 5*time.Minute, 0),
		cc("payments-app", []string{"payments"}, 5*time.Minute, 0),
		// A future-dated token: valid only from +10 s to +30 s.
		cc("future-app", []string{"orders"}, 30*time.Second, 10*time.Second),
		// Tokens for three resource servers at once, living long enough to
		// span a rotation (Retention in the rotation test covers them).
		cc("fleet", []string{"orders", "billing", "reports"}, 90*time.Minute, 0),
	}
}

// liveEnv is a running Keygate on an injected clock.
type liveEnv struct {
	kg    *kgtest.Server
	clock *kgtest.Clock
}

func liveStart(t testing.TB, o kgtest.Options) *liveEnv {
	t.Helper()
	if o.Clock == nil {
		o.Clock = kgtest.NewClock(liveT0)
	}
	if o.Clients == nil {
		o.Clients = liveClients()
	}
	return &liveEnv{kg: kgtest.Start(t, o), clock: o.Clock}
}

// token issues an access token to clientID (client credentials) through the
// identity provider, as POST /token would.
func (e *liveEnv) token(t testing.TB, clientID string) string {
	t.Helper()
	res, err := e.kg.IDP.Token(context.Background(), &idp.Request{Form: url.Values{
		"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {liveSecret}}})
	if err != nil {
		t.Fatalf("token for %s: %v", clientID, err)
	}
	return res.AccessToken
}

// tokenHTTP gets a token over the wire, from POST /token.
func (e *liveEnv) tokenHTTP(t testing.TB, clientID string) string {
	t.Helper()
	res, err := http.PostForm(e.kg.URL+"/token", url.Values{
		"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {liveSecret}})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil || res.StatusCode != 200 || body.AccessToken == "" {
		t.Fatalf("POST /token: %d %+v %v", res.StatusCode, body, err)
	}
	return body.AccessToken
}

func (e *liveEnv) signingKID() string { return e.kg.Keys.Current().Signing.KID }

// publishedKIDs is what Keygate's /jwks serves right now, sorted.
func (e *liveEnv) publishedKIDs() []string {
	var kids []string
	for _, k := range e.kg.Keys.Current().Published() {
		kids = append(kids, k.KID)
	}
	slices.Sort(kids)
	return kids
}

func (e *liveEnv) keyIn(state store.KeyState) (rotation.Key, bool) {
	for _, k := range e.kg.Keys.Current().Keys {
		if k.State == state {
			return k, true
		}
	}
	return rotation.Key{}, false
}

// liveVerifier is a verifier for issuerURL on clk with a quiet logger; the
// fields set in cfg override those.
func liveVerifier(t testing.TB, issuerURL string, clk *kgtest.Clock, cfg ...jwks.Config) *jwks.Verifier {
	t.Helper()
	all := testConfig(cfg, clk.Now, liveQuiet)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := jwks.NewVerifier(ctx, issuerURL, all)
	if err != nil {
		t.Fatalf("NewVerifier(%s): %v", issuerURL, err)
	}
	t.Cleanup(func() { _ = v.Close() })
	return v
}

func liveSortedKIDs(v *jwks.Verifier) []string {
	kids := v.KeyIDs()
	slices.Sort(kids)
	return kids
}

// ---------------------------------------------------------------------------
// The front: where consumers reach Keygate in the tests that count fetches or
// break the issuer.

const (
	liveUp      = iota
	live500     // every answer is a 500 with a JSON error
	liveGarbage // every answer is a 200 HTML page
)

// liveFront is an HTTP server in front of a live Keygate's handler. The
// consumers keep Keygate's URL (so discovery, jwks_uri and iss are Keygate's
// own) but their HTTP client dials wherever the front currently listens, so
// the front can be stopped for real (connections refused) and started again
// on a new port, like a restarted issuer behind the same name. It counts the
// key-set requests of each consumer (tagged by its client) independently of
// the SDK's own Stats.
type liveFront struct {
	t    testing.TB
	h    http.Handler
	mode atomic.Int32
	addr atomic.Pointer[string]
	mu   sync.Mutex
	srv  *httptest.Server
	hits sync.Map // consumer name -> *atomic.Int64
}

func newLiveFront(t testing.TB, kg *kgtest.Server) *liveFront {
	f := &liveFront{t: t, h: kg.Handler()}
	f.start()
	return f
}

func (f *liveFront) start() {
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	f.t.Cleanup(srv.Close)
	a := srv.Listener.Addr().String()
	f.mu.Lock()
	f.srv = srv
	f.mu.Unlock()
	f.addr.Store(&a)
}

// stop closes the listener: from now on connections are refused.
func (f *liveFront) stop() {
	f.mu.Lock()
	srv := f.srv
	f.mu.Unlock()
	srv.Close()
}

func (f *liveFront) counter(name string) *atomic.Int64 {
	c, _ := f.hits.LoadOrStore(name, new(atomic.Int64))
	return c.(*atomic.Int64)
}

// jwksHits is how many key-set requests consumer name made.
func (f *liveFront) jwksHits(name string) int64 { return f.counter(name).Load() }

func (f *liveFront) serve(w http.ResponseWriter, r *http.Request) {
	if p := r.URL.Path; p == "/jwks" || p == "/.well-known/jwks.json" {
		f.counter(r.Header.Get("X-Live-Consumer")).Add(1)
	}
	switch f.mode.Load() {
	case live500:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, `{"error":"database is locked"}`)
	case liveGarbage:
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, "<html><body><h1>502 Bad Gateway</h1></body></html>")
	default:
		f.h.ServeHTTP(w, r)
	}
}

// client is consumer name's HTTP client: it dials the front's current
// address and tags its requests.
func (f *liveFront) client(name string) *http.Client {
	tr := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, *f.addr.Load())
	}}
	f.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: liveTagged{name: name, rt: tr}, Timeout: 5 * time.Second}
}

type liveTagged struct {
	name string
	rt   http.RoundTripper
}

func (l liveTagged) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Live-Consumer", l.name)
	return l.rt.RoundTrip(r)
}

// ---------------------------------------------------------------------------
// 1. The SDK against a live Keygate.

func TestLiveVerify(t *testing.T) {
	t.Parallel()
	e := liveStart(t, kgtest.Options{})
	const leeway = 5 * time.Second
	// Discovery from the issuer URL, Keygate's own HTTP server, default
	// client: exactly what a resource server does.
	v := liveVerifier(t, e.kg.URL, e.clock, jwks.Config{Audience: []string{"orders"}, Leeway: leeway})
	ctx := context.Background()

	t.Run("valid token from POST /token", func(t *testing.T) {
		tok := e.tokenHTTP(t, "orders-app")
		c, err := v.Verify(ctx, tok)
		if err != nil {
			t.Fatalf("genuine token: %v", err)
		}
		if c.Issuer != e.kg.URL || c.Subject != "orders-app" || c.ClientID != "orders-app" ||
			!slices.Equal(c.Audience, []string{"orders"}) || c.KeyID != e.signingKID() ||
			!c.HasScope("read") || !c.HasScope("write") || c.ID == "" ||
			!c.Expiry.Equal(e.clock.Now().Add(5*time.Minute)) {
			t.Errorf("claims %+v", c)
		}
	})

	// Each case issues a token now, moves the shared clock by at, and
	// verifies. The clock only moves forward; every case starts from a fresh
	// token.
	for _, tc := range []struct {
		name   string
		client string
		at     time.Duration
		want   error
	}{
		{"valid at issue", "orders-app", 0, nil},
		{"valid within the leeway after exp", "orders-app", 5*time.Minute + leeway - time.Second, nil},
		{"expired at exp + leeway", "orders-app", 5*time.Minute + leeway, jwks.ErrExpired},
		{"expired an hour later", "orders-app", time.Hour, jwks.ErrExpired},
		{"future token at issue", "future-app", 0, jwks.ErrNotYetValid},
		{"future token just before nbf - leeway", "future-app", 10*time.Second - leeway - time.Second, jwks.ErrNotYetValid},
		{"future token at nbf - leeway", "future-app", 10*time.Second - leeway, nil},
		{"future token inside its window", "future-app", 20 * time.Second, nil},
		{"future token after its window", "future-app", 30*time.Second + leeway, jwks.ErrExpired},
		{"token for another audience", "payments-app", 0, jwks.ErrWrongAudience},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := e.token(t, tc.client)
			e.clock.Advance(tc.at)
			_, err := v.Verify(ctx, tok)
			if tc.want == nil && err != nil {
				t.Fatalf("got %v, want it accepted", err)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}

	t.Run("wrong issuer", func(t *testing.T) {
		// A genuine token of another Keygate: its kid is not in this
		// issuer's set (one refetch confirms it).
		other := liveStart(t, kgtest.Options{Clock: e.clock})
		foreign := other.token(t, "orders-app")
		if _, err := liveVerifier(t, other.kg.URL, e.clock, jwks.Config{Audience: []string{"orders"}}).Verify(ctx, foreign); err != nil {
			t.Fatalf("the other Keygate's token where it was issued: %v", err)
		}
		if _, err := v.Verify(ctx, foreign); !errors.Is(err, jwks.ErrUnknownKey) {
			t.Errorf("another Keygate's token: %v, want ErrUnknownKey", err)
		}

		// A verifier expecting another issuer: discovery refuses Keygate's
		// document at startup ...
		_, err := jwks.NewVerifier(ctx, e.kg.URL, jwks.Config{Issuer: "https://other", Logger: liveQuiet})
		if !errors.Is(err, jwks.ErrWrongIssuer) {
			t.Errorf("NewVerifier by discovery with Config.Issuer other: %v, want ErrWrongIssuer", err)
		}
		// ... and, given the key set directly, Verify refuses Keygate's
		// genuine tokens (right keys, wrong iss).
		vo := liveVerifier(t, e.kg.URL+"/jwks", e.clock, jwks.Config{Issuer: "https://other", Audience: []string{"orders"}})
		if _, err := vo.Verify(ctx, e.token(t, "orders-app")); !errors.Is(err, jwks.ErrWrongIssuer) {
			t.Errorf("genuine token at a verifier for https://other: %v, want ErrWrongIssuer", err)
		}
	})

	t.Run("attack canon", func(t *testing.T) {
		liveAttackCanon(t, e, v)
	})
}

func liveAttackCanon(t *testing.T, e *liveEnv, v *jwks.Verifier) {
	ctx := context.Background()
	atk := jwtforge.NewAttacker(t, liveT0)
	atkKey := jwtforge.Key(t, "attacker")
	genuine := e.token(t, "orders-app")
	g := jwtforge.Parse(t, genuine)
	if g.Header["alg"] != "RS256" || g.Header["typ"] != "at+jwt" || g.KID() == "" {
		t.Fatalf("genuine header %v", g.Header)
	}

	// What an attacker knows of Keygate's key: the JWKS, as served.
	res, err := http.Get(e.kg.URL + "/jwks")
	if err != nil {
		t.Fatal(err)
	}
	jwksBody, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(jwksBody, &set); err != nil {
		t.Fatal(err)
	}
	var jwkJSON []byte
	var pub rsa.PublicKey
	for _, k := range set.Keys {
		key, err := jwk.ParseKey(k)
		if err != nil {
			t.Fatal(err)
		}
		if key.KeyID() == g.KID() {
			jwkJSON = k
			if err := key.Raw(&pub); err != nil {
				t.Fatal(err)
			}
		}
	}
	if jwkJSON == nil {
		t.Fatalf("kid %s not in /jwks %s", g.KID(), jwksBody)
	}
	der, _ := x509.MarshalPKIXPublicKey(&pub)
	pkixPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	pkcs1PEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&pub)})

	hs := func(alg string, newHash func() hash.Hash, secret []byte) func() string {
		return func() string {
			return jwtforge.Compact(t, g.HeaderWith(map[string]any{"alg": alg}), g.Claims, jwtforge.HMAC(newHash, secret))
		}
	}
	resign := func(hdr, claims map[string]any) func() string {
		return func() string {
			return jwtforge.Compact(t, g.HeaderWith(hdr), g.ClaimsWith(claims), jwtforge.RS256(atkKey))
		}
	}
	tamper := func(claims map[string]any) func() string {
		return func() string {
			p, _ := json.Marshal(g.ClaimsWith(claims))
			return g.Parts[0] + "." + jwtforge.B64(p) + "." + g.Parts[2]
		}
	}
	reheader := func(hdr map[string]any) func() string { // keeps the genuine signature
		return func() string {
			h, _ := json.Marshal(g.HeaderWith(hdr))
			return jwtforge.B64(h) + "." + g.Parts[1] + "." + g.Parts[2]
		}
	}
	later := json.Number(fmt.Sprint(e.clock.Now().Add(24 * time.Hour).Unix()))
	x5c := []string{base64.StdEncoding.EncodeToString(atk.CertDER)}

	for _, c := range []struct {
		name  string
		forge func() string
		want  error
	}{
		// alg none
		{"alg none, no signature", func() string {
			return jwtforge.Compact(t, g.HeaderWith(map[string]any{"alg": "none"}), g.Claims, jwtforge.NoSig)
		}, jwks.ErrAlgorithm},
		{"alg None, no signature", func() string {
			return jwtforge.Compact(t, g.HeaderWith(map[string]any{"alg": "None"}), g.ClaimsWith(map[string]any{"scope": "admin"}), jwtforge.NoSig)
		}, jwks.ErrAlgorithm},
		{"alg NONE, no kid, no signature", func() string {
			return jwtforge.Compact(t, g.HeaderWith(map[string]any{"alg": "NONE", "kid": nil}), g.Claims, jwtforge.NoSig)
		}, jwks.ErrAlgorithm},
		{"alg none over the genuine signature", reheader(map[string]any{"alg": "none"}), jwks.ErrAlgorithm},
		// RS/HS confusion: HMAC keyed with what /jwks publishes.
		{"HS256 keyed with the PKIX PEM", hs("HS256", sha256.New, pkixPEM), jwks.ErrAlgorithm},
		{"HS256 keyed with the PKIX PEM, no final newline", hs("HS256", sha256.New, []byte(strings.TrimSpace(string(pkixPEM)))), jwks.ErrAlgorithm},
		{"HS256 keyed with the PKCS#1 PEM", hs("HS256", sha256.New, pkcs1PEM), jwks.ErrAlgorithm},
		{"HS256 keyed with the DER", hs("HS256", sha256.New, der), jwks.ErrAlgorithm},
		{"HS256 keyed with the JWK JSON served by /jwks", hs("HS256", sha256.New, jwkJSON), jwks.ErrAlgorithm},
		{"HS256 keyed with the whole /jwks body", hs("HS256", sha256.New, jwksBody), jwks.ErrAlgorithm},
		{"HS384 keyed with the PKIX PEM", hs("HS384", sha512.New384, pkixPEM), jwks.ErrAlgorithm},
		{"HS512 keyed with the JWK JSON", hs("HS512", sha512.New, jwkJSON), jwks.ErrAlgorithm},
		// Other algorithms over the genuine signature.
		{"header alg RS512 over the RS256 signature", reheader(map[string]any{"alg": "RS512"}), jwks.ErrAlgorithm},
		{"header alg PS256 over the RS256 signature", reheader(map[string]any{"alg": "PS256"}), jwks.ErrAlgorithm},
		// Tampered payload, genuine header and signature.
		{"tampered scope", tamper(map[string]any{"scope": "read write admin"}), jwks.ErrBadSignature},
		{"tampered sub", tamper(map[string]any{"sub": "payments-app"}), jwks.ErrBadSignature},
		{"tampered exp", tamper(map[string]any{"exp": later}), jwks.ErrBadSignature},
		{"tampered aud", tamper(map[string]any{"aud": []string{"orders", "payments"}}), jwks.ErrBadSignature},
		{"signature stripped", func() string { return g.Parts[0] + "." + g.Parts[1] + "." }, jwks.ErrBadSignature},
		{"signature of another token", func() string {
			return g.Parts[0] + "." + g.Parts[1] + "." + jwtforge.Parse(t, e.token(t, "orders-app")).Parts[2]
		}, jwks.ErrBadSignature},
		// Re-signed by another key.
		{"re-signed by the attacker under the genuine kid", resign(nil, nil), jwks.ErrBadSignature},
		{"re-signed by the attacker under the genuine kid, scope admin", resign(nil, map[string]any{"scope": "admin"}), jwks.ErrBadSignature},
		// Unknown kid.
		{"attacker key, attacker kid", resign(map[string]any{"kid": "attacker"}, nil), jwks.ErrUnknownKey},
		{"attacker key, no kid", resign(map[string]any{"kid": nil}, nil), jwks.ErrMalformed},
		// Key-carrying headers: the token must not choose its key.
		{"jku to the attacker's JWKS, attacker kid", resign(map[string]any{"kid": "attacker", "jku": atk.Srv.URL + "/jwks"}, nil), jwks.ErrUnknownKey},
		{"jku to the attacker's JWKS, genuine kid", resign(map[string]any{"jku": atk.Srv.URL + "/jwks"}, nil), jwks.ErrBadSignature},
		{"x5u to the attacker's certificate, attacker kid", resign(map[string]any{"kid": "attacker", "x5u": atk.Srv.URL + "/cert.pem"}, nil), jwks.ErrUnknownKey},
		{"x5u to the attacker's certificate, genuine kid", resign(map[string]any{"x5u": atk.Srv.URL + "/cert.pem"}, nil), jwks.ErrBadSignature},
		{"embedded jwk, attacker kid", resign(map[string]any{"kid": "attacker", "jwk": atk.JWK}, nil), jwks.ErrUnknownKey},
		{"embedded jwk, genuine kid", resign(map[string]any{"jwk": atk.JWK}, nil), jwks.ErrBadSignature},
		{"embedded x5c, genuine kid", resign(map[string]any{"x5c": x5c}, nil), jwks.ErrBadSignature},
		// Audience substitution: a genuine Keygate token minted for another
		// resource server.
		{"audience substitution: genuine token for payments", func() string { return e.token(t, "payments-app") }, jwks.ErrWrongAudience},
		{"audience substitution: payments token with aud rewritten", func() string {
			p := jwtforge.Parse(t, e.token(t, "payments-app"))
			b, _ := json.Marshal(p.ClaimsWith(map[string]any{"aud": "orders"}))
			return p.Parts[0] + "." + jwtforge.B64(b) + "." + p.Parts[2]
		}, jwks.ErrBadSignature},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := v.Verify(ctx, genuine); err != nil {
				t.Fatalf("genuine token before the attack: %v", err)
			}
			forged := c.forge()
			if forged == genuine {
				t.Fatal("the forgery is the genuine token")
			}
			if claims, err := v.Verify(ctx, forged); !errors.Is(err, c.want) {
				t.Errorf("got claims %v, err %v; want %v", claims, err, c.want)
			}
			if _, err := v.Verify(ctx, genuine); err != nil {
				t.Errorf("genuine token after the attack: %v", err)
			}
		})
	}
	if n := atk.Hits.Load(); n != 0 {
		t.Errorf("the attacker's server got %d requests; jku/x5u must never be followed", n)
	}
}

// ---------------------------------------------------------------------------
// 2. Rotation while verifying.

// liveTok is a token the test knows to be valid until exp (and whose kid is
// not revoked).
type liveTok struct {
	raw, kid string
	exp      time.Time
}

// liveConsumer is one resource server: a verifier and its name (also its
// audience and the tag of its JWKS requests).
type liveConsumer struct {
	name string
	v    *jwks.Verifier
	// counted consumers refresh only on unknown kids during the test, so
	// their fetches are predicted exactly.
	counted bool
	// rejections this test made on purpose (revoked kids).
	expectedFailures uint64
}

// TestLiveRotationWhileVerifying: three resource servers ("orders",
// "billing", "reports"), each verifying from three goroutines without pause,
// and a fourth ("refresher") that honours Keygate's short max-age, while
// Keygate goes through four scheduled rotations, a manual rotation that
// gets scheduled, an immediate manual one, a forced one, the revocation of
// a retired key and of the active key.
//
// Validity. The goroutines verify only tokens the test knows to be valid:
// the live set holds tokens whose exp lies ahead of the clock and whose kid
// is not revoked, and it and the clock change only under mu's write lock,
// while every verification holds the read lock. Key changes (Reconcile,
// Rotate, Revoke) happen while verifying goes on; tokens of a kid are taken
// out of the live set before the kid is revoked.
//
// Fetches. What the SDK guarantees, and what is asserted per consumer at
// every change of the signing key: a consumer fetches the key set again
// only when a token carries a kid missing from its last fetched set, once
// per such kid however many goroutines present it (single-flight), and not
// sooner than Config.UnknownKIDInterval after its previous fetch. Keygate
// publishes the next key ahead of use, so a new signing kid costs
//
//   - zero fetches when the consumer's last fetch already carried it (the
//     refetch for the previous unknown kid picked up the next key with it);
//   - exactly one fetch otherwise.
//
// The counted consumers' background refresh is bounded to >= 10 min of real
// time (Keygate says max-age=1, clamped up), so within this test every
// fetch of theirs is an unknown-kid refetch and the figures are exact. The
// test advances the clock one minute (> the 30 s interval) after every key
// change before issuing tokens under it, so that the interval never refuses
// a refetch for a legitimately new kid.
//
// Revocation. A revoked kid leaves /jwks at once, but a consumer drops it
// only when it refetches: the refresher within about a second, through its
// background refresh (polled with a deadline); the counted consumers with
// the refetch a new signing kid causes (the next scheduled rotation). Both
// are asserted.
func TestLiveRotationWhileVerifying(t *testing.T) {
	t.Parallel()
	r := newLiveRotation(t)
	r.startWorkers()
	t.Cleanup(r.stopWorkers)

	r.issue()
	for range 3 {
		r.keyChange("scheduled rotation", r.scheduled)
	}
	r.issue()

	// A manual rotation while the next key is younger than PublishAhead is
	// scheduled for the instant it has been published that long.
	r.keyChange("manual rotation (scheduled)", r.manualRotationScheduled)
	// Once the next key is old enough, a manual rotation is immediate.
	r.advance(25 * time.Minute)
	r.issue()
	r.keyChange("manual rotation", r.manualRotationImmediate)
	r.keyChange("forced rotation", r.forcedRotation)
	r.issue()

	revokedRetired := r.revokeRetired()
	// Revoking the active key: the next key signs at once.
	revokedActive := r.withdraw(r.e.signingKID())
	r.keyChange("revocation of the active key", func() { r.revokeActive(revokedActive) })

	// The next scheduled rotation brings a kid generated after the counted
	// consumers' last fetch: its refetch drops both revoked kids.
	if !r.keyChange("scheduled rotation after the revocations", r.scheduled) {
		t.Fatal("the rotation after the revocations needed no refetch; the test cannot show the revoked kids dropped")
	}
	r.checkRevokedDropped(revokedRetired, revokedActive)
	r.keyChange("scheduled rotation", r.scheduled)
	r.issue()

	r.stopWorkers()
	r.checkTotals()
}

// liveRotation is the state of TestLiveRotationWhileVerifying: the live
// Keygate, its consumers, the live set of tokens the verifying goroutines
// present, and what the key changes counted.
type liveRotation struct {
	t         *testing.T
	ctx       context.Context
	e         *liveEnv
	front     *liveFront
	consumers []*liveConsumer // orders, billing, reports (counted), refresher
	refresher *liveConsumer

	mu   sync.RWMutex
	live []liveTok // guarded by mu, as is the clock

	// The verifying goroutines.
	stop            chan struct{}
	wg              sync.WaitGroup
	stopWorkers     func() // stops them, once
	verified        atomic.Int64
	falseRejections atomic.Int64
	errMu           sync.Mutex
	errs            []string // guarded by errMu

	perStep   []string // "kid: fetches per counted consumer"
	zeroSteps int      // new signing kids picked up ahead of use
	oneSteps  int      // new signing kids that cost exactly one refetch
}

// liveRotationInterval is the consumers' unknown-kid interval.
const liveRotationInterval = 30 * time.Second

func newLiveRotation(t *testing.T) *liveRotation {
	t.Helper()
	e := liveStart(t, kgtest.Options{
		Policy:     rotation.Policy{RotationPeriod: time.Hour, PublishAhead: 20 * time.Minute, Retention: 2 * time.Hour, RSABits: 2048},
		JWKSMaxAge: time.Second,
	})
	r := &liveRotation{t: t, ctx: context.Background(), e: e, front: newLiveFront(t, e.kg), stop: make(chan struct{})}
	for _, name := range []string{"orders", "billing", "reports"} {
		r.consumers = append(r.consumers, &liveConsumer{name: name, counted: true, v: liveVerifier(t, e.kg.URL, e.clock,
			jwks.Config{Audience: []string{name}, HTTPClient: r.front.client(name), MinRefresh: 10 * time.Minute, MaxRefresh: time.Hour, UnknownKIDInterval: liveRotationInterval})})
	}
	r.refresher = &liveConsumer{name: "refresher", v: liveVerifier(t, e.kg.URL, e.clock,
		jwks.Config{Audience: []string{"orders"}, HTTPClient: r.front.client("refresher"), MinRefresh: time.Second, MaxRefresh: time.Minute, UnknownKIDInterval: liveRotationInterval})}
	r.consumers = append(r.consumers, r.refresher)
	for _, c := range r.consumers[:3] {
		if s := c.v.Stats(); s.Fetches != 1 || r.front.jwksHits(c.name) != 1 {
			t.Fatalf("%s after NewVerifier: %+v, %d JWKS requests; want 1", c.name, s, r.front.jwksHits(c.name))
		}
	}
	return r
}

// issue adds a fresh token of the fleet client to the live set.
func (r *liveRotation) issue() liveTok {
	r.t.Helper()
	g := jwtforge.Parse(r.t, r.e.token(r.t, "fleet"))
	tk := liveTok{raw: g.Raw, kid: g.KID(), exp: g.Exp(r.t)}
	r.mu.Lock()
	r.live = append(r.live, tk)
	r.mu.Unlock()
	return tk
}

// advance moves the clock, first dropping the tokens that expire on the
// way, then lets the key manager act.
func (r *liveRotation) advance(d time.Duration) {
	r.t.Helper()
	r.mu.Lock()
	to := r.e.clock.Now().Add(d)
	r.live = slices.DeleteFunc(r.live, func(tk liveTok) bool { return !to.Before(tk.exp) })
	r.e.clock.Advance(d)
	r.mu.Unlock()
	if _, err := r.e.kg.Keys.Reconcile(r.ctx); err != nil {
		r.t.Fatal(err)
	}
}

// withdraw takes kid's tokens out of the live set, returning one of them.
func (r *liveRotation) withdraw(kid string) liveTok {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	var one liveTok
	r.live = slices.DeleteFunc(r.live, func(tk liveTok) bool {
		if tk.kid == kid {
			one = tk
			return true
		}
		return false
	})
	if one.raw == "" {
		r.t.Fatalf("no live token of kid %s to revoke", kid)
	}
	return one
}

// startWorkers starts three verifying goroutines per counted consumer and
// two for the refresher.
func (r *liveRotation) startWorkers() {
	for _, c := range r.consumers {
		for w := range 3 {
			if c == r.refresher && w > 1 {
				break
			}
			r.wg.Go(func() { r.verifyLoop(c) })
		}
	}
	r.stopWorkers = sync.OnceFunc(func() { close(r.stop); r.wg.Wait() })
}

// verifyLoop has c verify live tokens, newest first, until stop is closed;
// every refusal is a false rejection.
func (r *liveRotation) verifyLoop(c *liveConsumer) {
	for i := 0; ; i++ {
		select {
		case <-r.stop:
			return
		default:
		}
		r.mu.RLock()
		if len(r.live) == 0 {
			r.mu.RUnlock()
			continue
		}
		tk := r.live[len(r.live)-1-i%len(r.live)] // newest first
		_, err := c.v.Verify(r.ctx, tk.raw)
		r.mu.RUnlock()
		r.verified.Add(1)
		if i%20 == 19 {
			// Pacing only (no time window depends on it): on a
			// two-core runner, eleven spinning verifiers would
			// starve Keygate's RSA key generation.
			time.Sleep(time.Millisecond)
		}
		if err != nil {
			r.falseRejections.Add(1)
			r.errMu.Lock()
			if len(r.errs) < 10 {
				r.errs = append(r.errs, fmt.Sprintf("%s: kid %s: %v", c.name, tk.kid, err))
			}
			r.errMu.Unlock()
		}
	}
}

// liveBefore is what a consumer held before a key change.
type liveBefore struct {
	cached        []string
	fetches, hits int64
	unknown       uint64
}

// keyChange runs change (which must put a new kid to signing), then
// checks every consumer gets the new kid with the predicted fetches.
func (r *liveRotation) keyChange(name string, change func()) (fetched bool) {
	t := r.t
	t.Helper()
	prev := r.e.signingKID()
	bs := map[string]liveBefore{}
	for _, c := range r.consumers {
		s := c.v.Stats()
		bs[c.name] = liveBefore{cached: c.v.KeyIDs(), fetches: int64(s.Fetches), hits: r.front.jwksHits(c.name), unknown: s.UnknownKIDRefetches}
	}
	change()
	kid := r.e.signingKID()
	if kid == prev {
		t.Fatalf("%s: the signing kid is still %s", name, kid)
	}
	r.advance(time.Minute) // past the unknown-kid interval (see the doc comment)
	tk := r.issue()
	if tk.kid != kid {
		t.Fatalf("%s: token signed by %s, want %s", name, tk.kid, kid)
	}
	for _, c := range r.consumers {
		if _, err := c.v.Verify(r.ctx, tk.raw); err != nil {
			r.falseRejections.Add(1)
			t.Errorf("%s: %s refused a fresh token of the new signing kid %s: %v", name, c.name, kid, err)
		}
	}
	want := int64(1)
	if slices.Contains(bs["orders"].cached, kid) {
		want = 0
	}
	var got []string
	for _, c := range r.consumers {
		if fetches, counted := r.checkStepFetches(name, kid, want, c, bs[c.name]); counted {
			got = append(got, fmt.Sprint(fetches))
		}
	}
	r.perStep = append(r.perStep, fmt.Sprintf("%s -> %s: %s", name, kid[:min(8, len(kid))], strings.Join(got, "/")))
	if want == 0 {
		r.zeroSteps++
	} else {
		r.oneSteps++
	}
	return want == 1
}

// checkStepFetches checks what c fetched for the new signing kid since b:
// at most one unknown-kid refetch for the refresher; for a counted consumer
// exactly none if b held kid and one otherwise (want, like every counted
// consumer), after which it holds what Keygate publishes. It returns the
// fetches of a counted consumer.
func (r *liveRotation) checkStepFetches(name, kid string, want int64, c *liveConsumer, b liveBefore) (fetches int64, counted bool) {
	t := r.t
	t.Helper()
	s := c.v.Stats()
	fetches, hits := int64(s.Fetches)-b.fetches, r.front.jwksHits(c.name)-b.hits
	if !c.counted {
		if u := s.UnknownKIDRefetches - b.unknown; u > 1 {
			t.Errorf("%s: %s made %d unknown-kid refetches for one new kid", name, c.name, u)
		}
		return 0, false
	}
	w := int64(1)
	if slices.Contains(b.cached, kid) {
		w = 0
	}
	if w != want {
		t.Errorf("%s: consumers had different key sets before the change", name)
	}
	if fetches != w || hits != w || int64(s.UnknownKIDRefetches-b.unknown) != w {
		t.Errorf("%s: %s: %d fetches (Stats), %d JWKS requests (server), %d unknown-kid refetches for new signing kid %s; want %d (its cached set was %v)",
			name, c.name, fetches, hits, s.UnknownKIDRefetches-b.unknown, kid, w, b.cached)
	}
	if w == 1 && !slices.Equal(liveSortedKIDs(c.v), r.e.publishedKIDs()) {
		t.Errorf("%s: %s holds %v after its refetch, Keygate publishes %v", name, c.name, liveSortedKIDs(c.v), r.e.publishedKIDs())
	}
	return fetches, true
}

// scheduled advances to the next key's activation in steps, issuing a
// token at each.
func (r *liveRotation) scheduled() {
	r.t.Helper()
	next, ok := r.e.keyIn(store.KeyNext)
	if !ok {
		r.t.Fatal("no next key")
	}
	for {
		d := next.ActivateAt.Sub(r.e.clock.Now())
		if d <= 0 {
			return
		}
		r.advance(min(d, 15*time.Minute))
		if r.e.signingKID() != next.KID {
			r.issue()
		}
	}
}

// manualRotationScheduled asks for a rotation while the next key is younger
// than PublishAhead: it is scheduled for the instant the key has been
// published that long, and reached as scheduled.
func (r *liveRotation) manualRotationScheduled() {
	res, err := r.e.kg.Keys.Rotate(r.ctx, false)
	if err != nil {
		r.t.Fatal(err)
	}
	next, _ := r.e.keyIn(store.KeyNext)
	if !res.Scheduled || res.Activated != next.KID || !res.At.Equal(next.CreatedAt.Add(20*time.Minute)) {
		r.t.Fatalf("manual rotation: %+v, want scheduled at %s", res, next.CreatedAt.Add(20*time.Minute))
	}
	r.scheduled()
}

// manualRotationImmediate asks for a rotation once the next key is old
// enough: it is immediate.
func (r *liveRotation) manualRotationImmediate() {
	res, err := r.e.kg.Keys.Rotate(r.ctx, false)
	if err != nil || res.Scheduled || res.Retired == "" {
		r.t.Fatalf("manual rotation: %+v, %v; want immediate", res, err)
	}
}

// forcedRotation forces a rotation to a next key too young for a manual one.
func (r *liveRotation) forcedRotation() {
	next, _ := r.e.keyIn(store.KeyNext)
	if age := r.e.clock.Now().Sub(next.CreatedAt); age >= 20*time.Minute {
		r.t.Fatalf("next key is %s old: the rotation would not need force", age)
	}
	res, err := r.e.kg.Keys.Rotate(r.ctx, true)
	if err != nil || res.Scheduled {
		r.t.Fatalf("forced rotation: %+v, %v", res, err)
	}
}

// revokeRetired revokes a retired key that signed live tokens: no new
// signing kid, so only the refresher (background refresh) drops it now. It
// returns one of its tokens.
func (r *liveRotation) revokeRetired() liveTok {
	t := r.t
	t.Helper()
	retired, ok := r.e.keyIn(store.KeyRetired)
	if !ok {
		t.Fatal("no retired key")
	}
	revoked := r.withdraw(retired.KID)
	if _, err := r.e.kg.Keys.Revoke(r.ctx, retired.KID); err != nil {
		t.Fatal(err)
	}
	r.revokedGone(r.refresher, retired.KID, revoked)
	for _, c := range r.consumers[:3] {
		// Not asserted: the SDK only promises to drop it at its next fetch.
		_, err := c.v.Verify(r.ctx, revoked.raw)
		t.Logf("%s, before any refetch, on a token of revoked (retired) kid %s: err=%v", c.name, retired.KID, err)
		if err != nil {
			c.expectedFailures++
		}
	}
	return revoked
}

// revokeActive revokes the active key, of which tok was withdrawn: the next
// key signs at once, and the refresher drops it.
func (r *liveRotation) revokeActive(tok liveTok) {
	res, err := r.e.kg.Keys.Revoke(r.ctx, tok.kid)
	if err != nil || res.Activated == "" {
		r.t.Fatalf("revoke: %+v, %v", res, err)
	}
	r.revokedGone(r.refresher, tok.kid, tok)
}

// revokedGone polls until c no longer holds kid, then checks that tok
// is refused as unknown without another fetch (the interval forbids it:
// the fetch that dropped kid was stamped with the current instant).
func (r *liveRotation) revokedGone(c *liveConsumer, kid string, tok liveTok) {
	t := r.t
	t.Helper()
	poll.Until(t, 10*time.Second, c.name+" to drop revoked kid "+kid, func() bool { return !slices.Contains(c.v.KeyIDs(), kid) })
	before := c.v.Stats().Fetches
	if _, err := c.v.Verify(r.ctx, tok.raw); !errors.Is(err, jwks.ErrUnknownKey) {
		t.Errorf("%s: token of revoked kid %s after the refresh: %v, want ErrUnknownKey", c.name, kid, err)
	} else {
		c.expectedFailures++
	}
	if got := c.v.Stats().Fetches - before; got != 0 {
		t.Errorf("%s: verifying a revoked kid right after a refresh made %d fetches, want 0", c.name, got)
	}
}

// checkRevokedDropped checks that the counted consumers, after their
// refetch, refuse the revoked tokens as unknown without fetching again.
func (r *liveRotation) checkRevokedDropped(revoked ...liveTok) {
	t := r.t
	t.Helper()
	for _, c := range r.consumers[:3] {
		before := c.v.Stats().Fetches
		for _, tk := range revoked {
			if _, err := c.v.Verify(r.ctx, tk.raw); !errors.Is(err, jwks.ErrUnknownKey) {
				t.Errorf("%s: token of revoked kid %s after the refetch: %v, want ErrUnknownKey", c.name, tk.kid, err)
			} else {
				c.expectedFailures++
			}
		}
		if got := c.v.Stats().Fetches - before; got != 0 {
			t.Errorf("%s: revoked kids within the interval caused %d fetches, want 0", c.name, got)
		}
	}
}

// checkTotals checks, once the goroutines have stopped, that no valid token
// was refused, that both kinds of key change happened, and every consumer's
// failures and (for the counted ones) fetches.
func (r *liveRotation) checkTotals() {
	t := r.t
	t.Helper()
	for _, s := range r.errs {
		t.Error("false rejection: " + s)
	}
	if n := r.falseRejections.Load(); n != 0 {
		t.Errorf("%d false rejections of valid tokens", n)
	}
	if r.zeroSteps == 0 || r.oneSteps == 0 {
		t.Errorf("%d kids were picked up ahead of use and %d cost a refetch; the scenario should show both", r.zeroSteps, r.oneSteps)
	}
	for _, c := range r.consumers {
		s := c.v.Stats()
		t.Logf("%-9s %+v, %d JWKS requests", c.name, s, r.front.jwksHits(c.name))
		if s.Failures != c.expectedFailures || s.RefreshFailures != 0 {
			t.Errorf("%s: %d failures (want the %d deliberate ones), %d refresh failures", c.name, s.Failures, c.expectedFailures, s.RefreshFailures)
		}
		if c.counted && (s.Fetches != uint64(1+r.oneSteps) || s.UnknownKIDRefetches != uint64(r.oneSteps) || r.front.jwksHits(c.name) != int64(1+r.oneSteps)) {
			t.Errorf("%s: %+v, %d JWKS requests; want %d fetches: the initial one and one per kid not published ahead",
				c.name, s, r.front.jwksHits(c.name), 1+r.oneSteps)
		}
	}
	t.Logf("%d verifications by the goroutines; per new signing kid, fetches of orders/billing/reports:\n  %s",
		r.verified.Load(), strings.Join(r.perStep, "\n  "))
}

// ---------------------------------------------------------------------------
// 3. Issuer down.

// TestLiveIssuerDown: while the issuer is stopped, answers 500 or answers
// garbage, tokens under cached kids keep verifying (including the next key,
// published ahead); a token under a kid generated since is refused with
// ErrUnknownKey, one attempt per unknown-kid interval, each counted in
// RefreshFailures; once the issuer is back and the interval has passed, it
// is accepted.
func TestLiveIssuerDown(t *testing.T) {
	t.Parallel()
	for _, tc := range []liveOutage{
		{name: "server stopped", down: (*liveFront).stop, up: (*liveFront).start},
		{name: "500", down: func(f *liveFront) { f.mode.Store(live500) }, up: func(f *liveFront) { f.mode.Store(liveUp) }, serverSees: true},
		{name: "garbage", down: func(f *liveFront) { f.mode.Store(liveGarbage) }, up: func(f *liveFront) { f.mode.Store(liveUp) }, serverSees: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t)
		})
	}
}

// liveOutage is one way the issuer goes down and comes back.
type liveOutage struct {
	name       string
	down, up   func(f *liveFront)
	serverSees bool // whether the failed attempts reach a server
}

// liveDownInterval is the unknown-kid interval of TestLiveIssuerDown.
const liveDownInterval = 10 * time.Second

func (tc liveOutage) run(t *testing.T) {
	const interval = liveDownInterval
	e := liveStart(t, kgtest.Options{})
	ctx := context.Background()
	front := newLiveFront(t, e.kg)
	// v refreshes only on unknown kids here (default bounds: 1 min
	// of real time at least); bg refreshes in the background every
	// second.
	v := liveVerifier(t, e.kg.URL, e.clock, jwks.Config{Audience: []string{"orders"}, HTTPClient: front.client("v"), UnknownKIDInterval: interval})
	bg := liveVerifier(t, e.kg.URL, e.clock, jwks.Config{Audience: []string{"orders"}, HTTPClient: front.client("bg"), MinRefresh: time.Second, MaxRefresh: time.Second})
	cached := liveSortedKIDs(v)
	tok0 := e.token(t, "orders-app")

	tc.down(front)
	tok1, tok2 := liveRotateTwice(t, e, cached)
	kid2 := jwtforge.Parse(t, tok2).KID()

	hits0, fetches0 := front.jwksHits("v"), v.Stats().Fetches
	const attempts = 3
	liveAttemptsWhileDown(t, e, v, attempts, fetches0, tok2, tok0, tok1)
	wantHits := int64(0)
	if tc.serverSees {
		wantHits = attempts
	}
	if got := front.jwksHits("v") - hits0; got != wantHits {
		t.Errorf("%d JWKS requests reached the server while down, want %d", got, wantHits)
	}
	if got := liveSortedKIDs(v); !slices.Equal(got, cached) {
		t.Errorf("cached kids after failed refetches: %v, want %v", got, cached)
	}
	// The background refresh fails too, and is counted; the cached
	// set keeps verifying.
	poll.Until(t, 10*time.Second, "a failed background refresh", func() bool { return bg.Stats().RefreshFailures >= 1 })
	liveMustVerify(t, bg, "issuer down, background refresh failing", tok0, tok1)

	tc.up(front)
	// The failed attempt still counts for the interval: no fetch yet.
	if _, err := v.Verify(ctx, tok2); !errors.Is(err, jwks.ErrUnknownKey) {
		t.Errorf("new kid within the interval of the last failed attempt: %v, want ErrUnknownKey", err)
	}
	e.clock.Advance(interval)
	if c, err := v.Verify(ctx, tok2); err != nil || c.KeyID != kid2 {
		t.Fatalf("new kid once the issuer is back: %v, %v", c, err)
	}
	liveMustVerify(t, v, "issuer back", tok0, tok1, tok2)
	liveMustVerify(t, bg, "issuer back", tok0, tok1)
	s := v.Stats()
	if s.RefreshFailures != attempts || s.Fetches-fetches0 != attempts+1 || front.jwksHits("v")-hits0 != wantHits+1 {
		t.Errorf("after the issuer came back: %+v, %d JWKS requests; want %d failures and %d fetches",
			s, front.jwksHits("v")-hits0, attempts, attempts+1)
	}
	if !slices.Contains(v.KeyIDs(), kid2) {
		t.Errorf("kids %v lack %s", v.KeyIDs(), kid2)
	}
	t.Logf("v %+v; bg %+v", s, bg.Stats())
}

// liveRotateTwice has Keygate rotate while its key set cannot be fetched:
// the first forced rotation activates the next key (published ahead, so in
// cached), the second one a key generated just now (not in cached). It
// returns a token signed after each.
func liveRotateTwice(t *testing.T, e *liveEnv, cached []string) (tok1, tok2 string) {
	t.Helper()
	var toks []string
	for range 2 {
		if _, err := e.kg.Keys.Rotate(context.Background(), true); err != nil {
			t.Fatal(err)
		}
		toks = append(toks, e.token(t, "orders-app"))
	}
	tok1, tok2 = toks[0], toks[1]
	kid2 := jwtforge.Parse(t, tok2).KID()
	if !slices.Contains(cached, jwtforge.Parse(t, tok1).KID()) || slices.Contains(cached, kid2) {
		t.Fatalf("cached %v; want the first new kid in it and not %s", cached, kid2)
	}
	return tok1, tok2
}

// liveAttemptsWhileDown advances the clock attempts intervals; at each, v
// refuses newTok (a kid it lacks) with ErrUnknownKey, trying one fetch
// however many times it is presented, counted as a refresh failure, and
// keeps verifying cachedToks.
func liveAttemptsWhileDown(t *testing.T, e *liveEnv, v *jwks.Verifier, attempts int, fetches0 uint64, newTok string, cachedToks ...string) {
	t.Helper()
	for i := 1; i <= attempts; i++ {
		e.clock.Advance(liveDownInterval)
		for range 5 { // one attempt per interval, however many tokens
			if _, err := v.Verify(context.Background(), newTok); !errors.Is(err, jwks.ErrUnknownKey) {
				t.Fatalf("new kid while the issuer is down: %v, want ErrUnknownKey", err)
			}
		}
		liveMustVerify(t, v, "issuer down", cachedToks...)
		if s := v.Stats(); s.RefreshFailures != uint64(i) || s.Fetches-fetches0 != uint64(i) {
			t.Fatalf("after %d intervals down: %+v; want %d failed fetches", i, s, i)
		}
	}
}

// liveMustVerify fails unless v accepts every token of toks (each under a
// kid it has cached).
func liveMustVerify(t *testing.T, v *jwks.Verifier, what string, toks ...string) {
	t.Helper()
	for i, tok := range toks {
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Fatalf("%s: token %d under a cached kid: %v", what, i, err)
		}
	}
}

// ---------------------------------------------------------------------------
// 4. Kid flood.

// TestLiveKIDFlood: 2000 tokens, each with a random kid and signed by the
// attacker's key over genuine-looking claims, presented from 16 goroutines
// at once. The verifier's unknown-kid interval, on the injected clock, caps
// the requests they cause the live issuer at one per interval, exactly.
func TestLiveKIDFlood(t *testing.T) {
	t.Parallel()
	const (
		interval = 10 * time.Second
		n        = 2000
		workers  = 16
	)
	e := liveStart(t, kgtest.Options{})
	front := newLiveFront(t, e.kg)
	v := liveVerifier(t, e.kg.URL, e.clock, jwks.Config{Audience: []string{"orders"}, HTTPClient: front.client("v"), UnknownKIDInterval: interval})
	genuine := e.token(t, "orders-app")
	forged := liveForgedKIDs(t, jwtforge.Parse(t, genuine), n)

	f := &liveFlood{v: v, genuine: genuine, workers: workers}
	hits := func() int64 { return front.jwksHits("v") }

	h := hits()
	f.run(forged) // right after NewVerifier's fetch, at the same instant
	if got := hits() - h; got != 0 {
		t.Errorf("flood within the interval of the initial fetch: %d JWKS requests, want 0", got)
	}
	e.clock.Advance(interval)
	h = hits()
	f.run(forged)
	if got := hits() - h; got != 1 {
		t.Errorf("flood one interval later: %d JWKS requests, want 1", got)
	}
	// Three more intervals in quarter steps, a burst at each: a fetch at
	// every fourth burst only.
	const steps = 12
	h = hits()
	var perBurst []int64
	for i := range steps {
		e.clock.Advance(interval / 4)
		b := hits()
		f.run(forged[i*n/steps : (i+1)*n/steps])
		perBurst = append(perBurst, hits()-b)
	}
	if got := hits() - h; got != steps/4 {
		t.Errorf("%d bursts over %s: %d JWKS requests (per burst %v), want %d", steps, steps*interval/4, got, perBurst, steps/4)
	}
	s := v.Stats()
	const total = 3 * n
	f.check(t)
	if s.Fetches != 1+1+steps/4 || s.UnknownKIDRefetches != 1+steps/4 || hits() != int64(s.Fetches) || s.RefreshFailures != 0 {
		t.Errorf("stats %+v, %d JWKS requests; want %d fetches", s, hits(), 1+1+steps/4)
	}
	if int64(s.Failures) != total {
		t.Errorf("Failures = %d, want %d", s.Failures, total)
	}
	t.Logf("%d forged tokens presented, %d JWKS requests in all (%+v); per quarter-interval burst %v", total, hits(), s, perBurst)

	// The price of the cap: a genuinely new kid (a forced rotation, so not
	// published ahead) arriving right after the flood spent the interval's
	// refetch waits for the next interval, at most.
	liveNewKIDAfterFlood(t, e, v, interval, hits)
}

// liveForgedKIDs forges n tokens over g's header and claims, each with a
// random kid, signed by the attacker's key.
func liveForgedKIDs(t *testing.T, g jwtforge.Token, n int) []string {
	t.Helper()
	forged := make([]string, n)
	signer := jwtforge.RS256(jwtforge.Key(t, "attacker"))
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < n; i += 4 {
				kid := make([]byte, 12)
				_, _ = rand.Read(kid)
				forged[i] = jwtforge.Compact(t, g.HeaderWith(map[string]any{"kid": hex.EncodeToString(kid)}), g.Claims, signer)
			}
		})
	}
	wg.Wait()
	return forged
}

// liveFlood presents forged tokens to v from workers goroutines, the genuine
// token among them every hundredth, and counts what should never happen.
type liveFlood struct {
	v       *jwks.Verifier
	genuine string
	workers int

	accepted, otherErrors, genuineRefused atomic.Int64
}

// run presents toks, spread over the workers, and waits for them.
func (f *liveFlood) run(toks []string) {
	var wg sync.WaitGroup
	for w := range f.workers {
		wg.Go(func() { f.present(toks, w) })
	}
	wg.Wait()
}

// present is worker w's share of toks.
func (f *liveFlood) present(toks []string, w int) {
	ctx := context.Background()
	for i := w; i < len(toks); i += f.workers {
		_, err := f.v.Verify(ctx, toks[i])
		switch {
		case err == nil:
			f.accepted.Add(1)
		case !errors.Is(err, jwks.ErrUnknownKey):
			f.otherErrors.Add(1)
		}
		if i%100 == 0 {
			if _, err := f.v.Verify(ctx, f.genuine); err != nil {
				f.genuineRefused.Add(1)
			}
		}
	}
}

// check fails if a forged token was accepted or refused for another reason
// than its unknown kid, or the genuine token was refused.
func (f *liveFlood) check(t *testing.T) {
	t.Helper()
	if a := f.accepted.Load(); a != 0 {
		t.Errorf("%d forged tokens accepted", a)
	}
	if o := f.otherErrors.Load(); o != 0 {
		t.Errorf("%d forged tokens refused with another error than ErrUnknownKey", o)
	}
	if r := f.genuineRefused.Load(); r != 0 {
		t.Errorf("the genuine token was refused %d times during the flood", r)
	}
}

// liveNewKIDAfterFlood checks that a kid generated right after the flood
// (two forced rotations) is refused within the interval the flood used and
// accepted one interval later, at the cost of one JWKS request.
func liveNewKIDAfterFlood(t *testing.T, e *liveEnv, v *jwks.Verifier, interval time.Duration, hits func() int64) {
	t.Helper()
	ctx := context.Background()
	for range 2 {
		if _, err := e.kg.Keys.Rotate(ctx, true); err != nil {
			t.Fatal(err)
		}
	}
	fresh := e.token(t, "orders-app")
	if slices.Contains(v.KeyIDs(), jwtforge.Parse(t, fresh).KID()) {
		t.Fatal("the new kid is already cached")
	}
	h := hits()
	if _, err := v.Verify(ctx, fresh); !errors.Is(err, jwks.ErrUnknownKey) {
		t.Errorf("new kid in the interval the flood used: %v, want ErrUnknownKey", err)
	}
	e.clock.Advance(interval)
	if _, err := v.Verify(ctx, fresh); err != nil {
		t.Errorf("new kid one interval after the flood: %v", err)
	}
	if got := hits() - h; got != 1 {
		t.Errorf("new kid after the flood: %d JWKS requests, want 1", got)
	}
}
