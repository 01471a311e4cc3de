package jwks_test

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"

	"github.com/keygate/keygate/jwks"
)

// keyServer plays Keygate's GET /getkey?identity=<client>: PEM public keys
// per identity, 404 for unknown ones, a hit counter and a failure switch.
type keyServer struct {
	srv  *httptest.Server
	mu   sync.Mutex
	keys map[string][]*rsa.PublicKey
	hits atomic.Int64
	down atomic.Bool
}

func newKeyServer(t *testing.T) *keyServer {
	ks := &keyServer{keys: map[string][]*rsa.PublicKey{}}
	ks.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ks.hits.Add(1)
		if ks.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		ks.mu.Lock()
		keys, ok := ks.keys[r.URL.Query().Get("identity")]
		ks.mu.Unlock()
		if !ok {
			http.Error(w, `{"error":"unknown identity"}`, http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/x-pem-file")
		for _, k := range keys {
			der, _ := x509.MarshalPKIXPublicKey(k)
			_ = pem.Encode(w, &pem.Block{Type: "PUBLIC KEY", Bytes: der})
		}
	}))
	t.Cleanup(ks.srv.Close)
	return ks
}

func (ks *keyServer) set(identity string, keys ...*rsa.PublicKey) {
	ks.mu.Lock()
	ks.keys[identity] = keys
	ks.mu.Unlock()
}

func clientToken(t *testing.T, key *rsa.PrivateKey, iss string, now time.Time, mod func(map[string]any)) string {
	t.Helper()
	cl := map[string]any{
		"iss": iss, "sub": iss, "aud": "https://api.example/login",
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "jti": "c-1",
	}
	if mod != nil {
		mod(cl)
	}
	return signJWT(t, jwa.RS256, key, nil, cl)
}

func newTestClientVerifier(t *testing.T, ks *keyServer, clk *fakeClock, cfg ...jwks.Config) *jwks.ClientKeyVerifier {
	t.Helper()
	all := testConfig(cfg, clk.Now, discardLogger, "https://api.example/login")
	cv, err := jwks.NewClientKeyVerifier(ks.srv.URL+"/getkey", all)
	if err != nil {
		t.Fatal(err)
	}
	return cv
}

func TestClientKeyVerifier(t *testing.T) {
	t.Parallel()
	keys := vkeys(t)
	ks := newKeyServer(t)
	ks.set("alice", &keys[0].PublicKey)
	ks.set("bob", &keys[1].PublicKey)
	clk := newFakeClock()
	cv := newTestClientVerifier(t, ks, clk)
	ctx := context.Background()
	now := clk.Now()

	tests := []struct {
		name    string
		token   string
		wantErr error
	}{
		{"known client", clientToken(t, keys[0], "alice", now, nil), nil},
		{"other known client", clientToken(t, keys[1], "bob", now, nil), nil},
		{"within leeway", clientToken(t, keys[0], "alice", now, func(c map[string]any) { c["exp"] = now.Add(-10 * time.Second).Unix() }), nil},
		{"unknown identity", clientToken(t, keys[attacker], "mallory", now, nil), jwks.ErrUnknownClient},
		{"wrong key", clientToken(t, keys[attacker], "alice", now, nil), jwks.ErrBadSignature},
		{"another client's key", clientToken(t, keys[1], "alice", now, nil), jwks.ErrBadSignature},
		{"expired", clientToken(t, keys[0], "alice", now, func(c map[string]any) { c["exp"] = now.Add(-time.Hour).Unix() }), jwks.ErrExpired},
		{"no exp", clientToken(t, keys[0], "alice", now, func(c map[string]any) { delete(c, "exp") }), jwks.ErrMalformed},
		{"not yet valid", clientToken(t, keys[0], "alice", now, func(c map[string]any) { c["nbf"] = now.Add(time.Hour).Unix() }), jwks.ErrNotYetValid},
		{"issued in the future", clientToken(t, keys[0], "alice", now, func(c map[string]any) { c["iat"] = now.Add(time.Hour).Unix() }), jwks.ErrNotYetValid},
		{"wrong audience", clientToken(t, keys[0], "alice", now, func(c map[string]any) { c["aud"] = "https://elsewhere" }), jwks.ErrWrongAudience},
		{"no iss", clientToken(t, keys[0], "", now, nil), jwks.ErrMalformed},
		{"HS256", signJWT(t, jwa.HS256, []byte("secret"), nil, map[string]any{"iss": "alice", "exp": now.Add(time.Minute).Unix()}), jwks.ErrAlgorithm},
		{"RS512", signJWT(t, jwa.RS512, keys[0], nil, map[string]any{"iss": "alice", "exp": now.Add(time.Minute).Unix()}), jwks.ErrAlgorithm},
		{"payload altered", swapSignature(clientToken(t, keys[0], "alice", now, func(c map[string]any) { c["sub"] = "admin" }),
			clientToken(t, keys[0], "alice", now, nil)), jwks.ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := cv.Verify(ctx, tt.token)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				if c.Issuer == "" || c.Issuer != c.Subject {
					t.Errorf("claims %+v", c)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
	// Keys and 404s are cached: alice, bob and mallory were each fetched
	// once, whatever the number of tokens.
	if got := ks.hits.Load(); got != 3 {
		t.Errorf("%d key-server requests, want 3", got)
	}
}

func TestClientKeyCache(t *testing.T) {
	t.Parallel()
	keys := vkeys(t)
	ks := newKeyServer(t)
	ks.set("alice", &keys[0].PublicKey)
	clk := newFakeClock()
	cv := newTestClientVerifier(t, ks, clk, jwks.Config{KeyTTL: 5 * time.Minute})
	ctx := context.Background()

	verify := func(key *rsa.PrivateKey) error {
		_, err := cv.Verify(ctx, clientToken(t, key, "alice", clk.Now(), nil))
		return err
	}

	// Several requests, concurrently: one key-server hit.
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			if err := verify(keys[0]); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := ks.hits.Load(); got != 1 {
		t.Fatalf("%d key-server requests for 16 verifications, want 1", got)
	}

	// A bad signature refetches at most once per interval.
	for range 5 {
		if err := verify(keys[attacker]); !errors.Is(err, jwks.ErrBadSignature) {
			t.Fatalf("attacker: %v", err)
		}
	}
	if got := ks.hits.Load(); got != 1 {
		t.Errorf("%d key-server requests after bad signatures within the interval, want 1", got)
	}
	clk.Advance(time.Minute)
	for range 5 {
		_ = verify(keys[attacker])
	}
	if got := ks.hits.Load(); got != 2 {
		t.Errorf("%d key-server requests after bad signatures a minute later, want 2", got)
	}

	// The client replaces its key: found by that refetch rule.
	ks.set("alice", &keys[1].PublicKey)
	clk.Advance(time.Minute)
	if err := verify(keys[1]); err != nil {
		t.Errorf("new client key: %v", err)
	}
	if err := verify(keys[0]); !errors.Is(err, jwks.ErrBadSignature) {
		t.Errorf("replaced client key: %v, want ErrBadSignature", err)
	}

	// TTL expiry with the key server down: the cached key keeps working.
	ks.down.Store(true)
	clk.Advance(10 * time.Minute)
	hits := ks.hits.Load()
	if err := verify(keys[1]); err != nil {
		t.Errorf("cached key with the key server down: %v", err)
	}
	if ks.hits.Load() != hits+1 || cv.Stats().RefreshFailures != 1 {
		t.Errorf("expected one failed fetch, stats %+v", cv.Stats())
	}

	// A deleted client loses its key at once when the server says 404.
	ks.down.Store(false)
	ks.mu.Lock()
	delete(ks.keys, "alice")
	ks.mu.Unlock()
	clk.Advance(10 * time.Minute)
	if err := verify(keys[1]); !errors.Is(err, jwks.ErrUnknownClient) {
		t.Errorf("deleted client: %v, want ErrUnknownClient", err)
	}
}

func TestNewClientKeyVerifierOptions(t *testing.T) {
	t.Parallel()
	for _, cfg := range []jwks.Config{
		{MinRefresh: time.Minute, MaxRefresh: time.Hour}, {RequiredScopes: []string{"x"}}, {ExpectedType: "JWT"},
		{Issuer: "x"}, {Algorithms: []string{"RS256"}}, {SkipTypeCheck: true}, {JWKSURL: "https://id.example/jwks"},
	} {
		if _, err := jwks.NewClientKeyVerifier("https://id.example/getkey", cfg); err == nil {
			t.Errorf("inapplicable field accepted: %+v", cfg)
		}
	}
	if _, err := jwks.NewClientKeyVerifier("/getkey", jwks.Config{}); err == nil {
		t.Error("relative URL accepted")
	}
}
