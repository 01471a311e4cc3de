package jwks_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
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

// Bounds the abuse tests check; they mirror unexported constants of the
// package (newClientBurst, maxClientEntries).
const (
	floodBurst      = 5
	floodCapEntries = 10000
)

// forgedClientToken is what a flooding attacker sends: a well-formed RS256
// token naming iss, with a signature of the right length that verifies
// with nothing. It costs no RSA operation, so tests can make 100k of them.
func forgedClientToken(iss string, now time.Time) string {
	enc := base64.RawURLEncoding
	hdr := enc.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`))
	pl, _ := json.Marshal(map[string]any{"iss": iss, "aud": "https://api.example/login", "exp": now.Add(time.Minute).Unix()})
	return hdr + "." + enc.EncodeToString(pl) + "." + enc.EncodeToString(make([]byte, 256))
}

func randomIdentity(t testing.TB) string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "attacker-" + hex.EncodeToString(b)
}

// TestAttackRandomIssuerFlood: 300 tokens naming random clients, sent at
// once, cost the key server at most burst + 1 requests in one interval
// (before the limit: one each); a cached client keeps verifying without a
// fetch, and a new legitimate client is served one interval later.
func TestAttackRandomIssuerFlood(t *testing.T) {
	t.Parallel()
	keys, ks, clk, interval := vkeys(t), newKeyServer(t), newFakeClock(), 30*time.Second
	for i, id := range []string{"alice", "carol"} { // carol: not seen before the flood
		ks.set(id, &keys[i].PublicKey)
	}
	cv := newTestClientVerifier(t, ks, clk, jwks.Config{UnknownKIDInterval: interval})
	ctx := context.Background()

	if _, err := cv.Verify(ctx, clientToken(t, keys[0], "alice", clk.Now(), nil)); err != nil {
		t.Fatal(err)
	}
	before := ks.hits.Load()

	flood := make([]string, 300)
	for i := range flood {
		flood[i] = forgedClientToken(randomIdentity(t), clk.Now())
	}
	send := func(tokens []string) {
		var wg sync.WaitGroup
		for _, tok := range tokens {
			wg.Go(func() {
				_, err := cv.Verify(ctx, tok)
				if !errors.Is(err, jwks.ErrUnknownClient) && !errors.Is(err, jwks.ErrUnknownKey) {
					t.Errorf("flood token: %v, want ErrUnknownClient or ErrUnknownKey", err)
				}
			})
		}
		wg.Wait()
	}
	send(flood)
	fetched := ks.hits.Load() - before
	t.Logf("300 random identities: %d key-server requests (bound %d)", fetched, floodBurst+1)
	if fetched > floodBurst+1 {
		t.Fatalf("300 random identities cost %d key-server requests, want at most %d", fetched, floodBurst+1)
	}

	// The same identities again, and 100 tokens for one more made-up
	// identity: nothing more within the interval (404s are cached, the
	// others are still limited, one identity is one lookup at most).
	same := forgedClientToken(randomIdentity(t), clk.Now())
	for range 100 {
		flood = append(flood, same)
	}
	send(flood)
	if got := ks.hits.Load() - before; got != fetched {
		t.Errorf("a repeated flood within the interval cost %d more requests, want 0", got-fetched)
	}

	// The cached client is unaffected, and costs no request.
	if _, err := cv.Verify(ctx, clientToken(t, keys[0], "alice", clk.Now(), nil)); err != nil {
		t.Errorf("cached client after the flood: %v", err)
	}
	if got := ks.hits.Load() - before; got != fetched {
		t.Errorf("the cached client cost %d requests after the flood, want 0", got-fetched)
	}

	// A new client is served once the interval has passed.
	clk.Advance(interval)
	if _, err := cv.Verify(ctx, clientToken(t, keys[1], "carol", clk.Now(), nil)); err != nil {
		t.Errorf("new client one interval after the flood: %v", err)
	}
}

// TestAttackLongIssuer: an identity longer than 256 bytes is refused
// before any lookup or cache entry.
func TestAttackLongIssuer(t *testing.T) {
	t.Parallel()
	ks := newKeyServer(t)
	clk := newFakeClock()
	cv := newTestClientVerifier(t, ks, clk)
	for _, n := range []int{257, 10 << 10} {
		_, err := cv.Verify(context.Background(), forgedClientToken(strings.Repeat("x", n), clk.Now()))
		if !errors.Is(err, jwks.ErrMalformed) {
			t.Errorf("%d-byte iss: %v, want ErrMalformed", n, err)
		}
	}
	if got := ks.hits.Load(); got != 0 {
		t.Errorf("long identities caused %d key-server requests, want 0", got)
	}
}

// memKeyServer answers key lookups in memory (no sockets), so that floods
// of 100k lookups stay fast: PEM for the identities it knows, 404 for the
// rest.
type memKeyServer struct {
	pem  map[string][]byte
	hits atomic.Int64
}

func (m *memKeyServer) RoundTrip(r *http.Request) (*http.Response, error) {
	m.hits.Add(1)
	res := &http.Response{StatusCode: http.StatusNotFound, Status: "404 Not Found", Header: http.Header{},
		Body: io.NopCloser(strings.NewReader(`{"error":"unknown identity"}`)), Request: r}
	if body, ok := m.pem[r.URL.Query().Get("identity")]; ok {
		res.StatusCode, res.Status, res.Body = http.StatusOK, "200 OK", io.NopCloser(bytes.NewReader(body))
	}
	return res, nil
}

func newMemKeyServer(t testing.TB, key *rsa.PublicKey, identities ...string) *memKeyServer {
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		t.Fatal(err)
	}
	body := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	m := &memKeyServer{pem: map[string][]byte{}}
	for _, id := range identities {
		m.pem[id] = body
	}
	return m
}

// floodIdentity is the i-th of the attacker's distinct identities, of the
// largest accepted length (256 bytes), so each costs the cache the most.
func floodIdentity(i int) string {
	s := fmt.Sprintf("attacker-%09d-", i)
	return s + strings.Repeat("x", 256-len(s))
}

// TestAttackFloodCannotEvictCachedClients: with the limit admitting every
// lookup (the clock moves one interval per token), 2 × the cache's
// capacity of made-up identities go through; the cached clients survive,
// since negative entries are evicted first.
func TestAttackFloodCannotEvictCachedClients(t *testing.T) {
	if testing.Short() {
		t.Skip("20k lookups")
	}
	t.Parallel()
	keys := vkeys(t)
	legit := []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"}
	ks := newMemKeyServer(t, &keys[0].PublicKey, legit...)
	clk := newFakeClock()
	cv, err := jwks.NewClientKeyVerifier("https://id.example/getkey", jwks.Config{
		Now: clk.Now, Logger: discardLogger, HTTPClient: &http.Client{Transport: ks},
		UnknownKIDInterval: time.Second, KeyTTL: 1000 * time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tokens := map[string]string{}
	for _, id := range legit {
		clk.Advance(time.Second) // new clients, within the lookup limit
		tokens[id] = clientToken(t, keys[0], id, clk.Now(), func(c map[string]any) { c["exp"] = clk.Now().Add(24 * time.Hour).Unix() })
		if _, err := cv.Verify(ctx, tokens[id]); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 2 * floodCapEntries {
		clk.Advance(time.Second)
		if _, err := cv.Verify(ctx, forgedClientToken(floodIdentity(i), clk.Now())); !errors.Is(err, jwks.ErrUnknownClient) {
			t.Fatalf("flood token %d: %v", i, err)
		}
	}
	hits := ks.hits.Load()
	for _, id := range legit {
		if _, err := cv.Verify(ctx, tokens[id]); err != nil {
			t.Errorf("%s after the flood: %v", id, err)
		}
	}
	if got := ks.hits.Load() - hits; got != 0 {
		t.Errorf("%d of %d cached clients were evicted by the flood and fetched again", got, len(legit))
	}
}

// TestFloodDistinctAttackerKeysHeap sends 100k distinct attacker
// identities through Verify, at once (the rate limit refuses almost all)
// and then with the clock moving one interval per token (every lookup
// admitted: the cache cap is what bounds memory), and reports the heap
// growth. It asserts only a generous bound derived from the cap
// (10,000 entries × 2 KiB), which fails if the cap is removed; it asserts
// no time.
func TestFloodDistinctAttackerKeysHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("200k tokens")
	}
	const n = 100_000
	const bound = floodCapEntries * 2 << 10
	keys := vkeys(t)
	for _, phase := range []struct {
		name string
		step time.Duration
	}{{"at-once", 0}, {"one-per-interval", time.Second}} {
		ks := newMemKeyServer(t, &keys[0].PublicKey)
		clk := newFakeClock()
		cv, err := jwks.NewClientKeyVerifier("https://id.example/getkey", jwks.Config{
			Now: clk.Now, Logger: discardLogger, HTTPClient: &http.Client{Transport: ks}, UnknownKIDInterval: time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		heap0 := ms.HeapAlloc
		for i := range n {
			clk.Advance(phase.step)
			if _, err := cv.Verify(ctx, forgedClientToken(floodIdentity(i), clk.Now())); err == nil {
				t.Fatal("attacker token accepted")
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&ms)
		growth := int64(ms.HeapAlloc) - int64(heap0)
		t.Logf("%s: %d distinct attacker identities, %d key-server requests, heap growth %.2f MiB (bound %d MiB)",
			phase.name, n, ks.hits.Load(), float64(growth)/(1<<20), bound>>20)
		if growth > bound {
			t.Errorf("%s: heap grew %d bytes for %d distinct identities, want at most %d", phase.name, growth, n, bound)
		}
		runtime.KeepAlive(cv)
	}
}
