package jwks_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/keygate/keygate/jwks"
)

// RSA-2048 keys are slow to generate, so the verifier tests share a few,
// made once per test binary: vkeys[0..2] are the issuer's (kids "kid0",
// "kid1", "kid2"), vkeys[3] is the attacker's.
var (
	vkeysOnce sync.Once
	vkeysVal  [4]*rsa.PrivateKey
)

const attacker = 3

func vkeys(tb testing.TB) [4]*rsa.PrivateKey {
	tb.Helper()
	vkeysOnce.Do(func() {
		var wg sync.WaitGroup
		for i := range vkeysVal {
			wg.Go(func() {
				k, err := rsa.GenerateKey(rand.Reader, 2048)
				if err != nil {
					panic(err)
				}
				vkeysVal[i] = k
			})
		}
		wg.Wait()
	})
	return vkeysVal
}

func kidOf(i int) string { return "kid" + strconv.Itoa(i) }

// fakeClock is a settable clock for Config.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// issuer modes: what /jwks answers.
const (
	modeOK      = iota
	mode500     // 500 with a JSON error
	modeGarbage // 200 with an HTML page
	modeReset   // the connection is dropped without an answer
)

// testIssuer is an httptest server playing Keygate: discovery and a JWKS
// served by this package's own Publisher, with failure modes and a counter
// of JWKS requests.
type testIssuer struct {
	srv       *httptest.Server
	pub       *jwks.Publisher
	mode      atomic.Int32
	jwksHits  atomic.Int64
	discoHits atomic.Int64
	// discoIssuer, when set, is the "issuer" the discovery document claims.
	discoIssuer atomic.Pointer[string]
}

func newTestIssuer(t testing.TB, maxAge time.Duration, kids ...int) *testIssuer {
	t.Helper()
	ti := &testIssuer{pub: jwks.NewPublisher(maxAge)}
	ti.publish(t, kids...)
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		ti.discoHits.Add(1)
		iss := ti.srv.URL
		if p := ti.discoIssuer.Load(); p != nil {
			iss = *p
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": iss, "jwks_uri": ti.srv.URL + "/jwks"})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		ti.jwksHits.Add(1)
		switch ti.mode.Load() {
		case mode500:
			http.Error(w, `{"error":"database is down"}`, http.StatusInternalServerError)
		case modeGarbage:
			w.Header().Set("Content-Type", "text/html")
			_, _ = io.WriteString(w, "<html><body>502 Bad Gateway</body></html>")
		case modeReset:
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
		default:
			ti.pub.ServeHTTP(w, r)
		}
	})
	ti.srv = httptest.NewServer(mux)
	t.Cleanup(ti.srv.Close)
	return ti
}

func (ti *testIssuer) URL() string { return ti.srv.URL }

// publish makes the JWKS hold the keys with the given indexes.
func (ti *testIssuer) publish(t testing.TB, kids ...int) {
	t.Helper()
	keys := vkeys(t)
	pks := make([]jwks.PublicKey, 0, len(kids))
	for _, i := range kids {
		pks = append(pks, jwks.PublicKey{KID: kidOf(i), Algorithm: "RS256", Key: &keys[i].PublicKey})
	}
	doc, err := jwks.NewDocument(pks)
	if err != nil {
		t.Fatal(err)
	}
	ti.pub.Publish(doc)
}

// discardLogger keeps expected warnings out of the test output.
var discardLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// testConfig is c (at most one) with Now, Logger and Audience filled in
// from the given defaults where c leaves them zero.
func testConfig(c []jwks.Config, now func() time.Time, log *slog.Logger, aud ...string) jwks.Config {
	var cfg jwks.Config
	if len(c) > 0 {
		cfg = c[0]
	}
	if cfg.Now == nil {
		cfg.Now = now
	}
	if cfg.Logger == nil {
		cfg.Logger = log
	}
	if cfg.Audience == nil {
		cfg.Audience = aud
	}
	return cfg
}

// newTestVerifier builds a verifier on ti with a fake clock; the fields set
// in cfg override the defaults.
// newVerified starts a test issuer publishing kids with the given max-age, a
// fake clock, and a verifier of that issuer on that clock with the default
// test configuration.
func newVerified(t testing.TB, maxAge time.Duration, kids ...int) (*testIssuer, *fakeClock, *jwks.Verifier) {
	t.Helper()
	ti := newTestIssuer(t, maxAge, kids...)
	clk := newFakeClock()
	return ti, clk, newTestVerifier(t, ti, clk)
}

func newTestVerifier(t testing.TB, ti *testIssuer, clk *fakeClock, cfg ...jwks.Config) *jwks.Verifier {
	t.Helper()
	all := testConfig(cfg, clk.Now, discardLogger, "api")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := jwks.NewVerifier(ctx, ti.URL(), all)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	t.Cleanup(func() { _ = v.Close() })
	return v
}

// claims returns Keygate-like access token claims valid at now, for ti.
func claims(ti *testIssuer, now time.Time) map[string]any {
	return map[string]any{
		"iss":       ti.URL(),
		"sub":       "user-42",
		"aud":       "api",
		"exp":       now.Add(10 * time.Minute).Unix(),
		"iat":       now.Unix(),
		"nbf":       now.Unix(),
		"jti":       "jti-1",
		"client_id": "client-7",
		"scope":     "read write",
	}
}

// header is the protected header Keygate puts on access tokens.
func header(kid string) map[string]any {
	return map[string]any{"kid": kid, "typ": "at+jwt"}
}

// signJWT signs claims with jwx. hdr members are set as protected headers
// (nil values are left out, so header(...) entries can be deleted by
// setting them to nil); key is a *rsa.PrivateKey or, for HMAC, []byte.
func signJWT(t testing.TB, alg jwa.SignatureAlgorithm, key any, hdr map[string]any, cl map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(cl)
	if err != nil {
		t.Fatal(err)
	}
	h := jws.NewHeaders()
	for k, v := range hdr {
		if v == nil {
			continue
		}
		if err := h.Set(k, v); err != nil {
			t.Fatalf("header %s: %v", k, err)
		}
	}
	out, err := jws.Sign(payload, jws.WithKey(alg, key, jws.WithProtectedHeaders(h)))
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return string(out)
}

// accessToken is a valid RS256 access token from ti signed by key index i.
func accessToken(t testing.TB, ti *testIssuer, i int, now time.Time) string {
	t.Helper()
	return signJWT(t, jwa.RS256, vkeys(t)[i], header(kidOf(i)), claims(ti, now))
}
