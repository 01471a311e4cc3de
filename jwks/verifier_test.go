package jwks_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/cert"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/keygate/keygate/internal/jwtforge"
	"github.com/keygate/keygate/internal/poll"
	"github.com/keygate/keygate/jwks"
)

// rawToken builds a compact token by hand, for shapes jwx refuses to make.
func rawToken(t *testing.T, hdr, cl map[string]any, sig []byte) string {
	t.Helper()
	return jwtforge.Compact(t, hdr, cl, func([]byte) []byte { return sig })
}

// hs256 signs hdr.claims with HMAC-SHA256 under secret, by hand, to mount
// the classic key-confusion attack with the issuer's public key as secret.
func hs256(t *testing.T, hdr, cl map[string]any, secret []byte) string {
	t.Helper()
	return jwtforge.Compact(t, hdr, cl, jwtforge.HS256(secret))
}

func TestVerify(t *testing.T) {
	t.Parallel()
	keys := vkeys(t)
	ti := newTestIssuer(t, 5*time.Minute, 0, 1)
	clk := newFakeClock()
	v := newTestVerifier(t, ti, clk, jwks.Config{Leeway: 30 * time.Second})
	now := clk.Now()

	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: must(x509.MarshalPKIXPublicKey(&keys[0].PublicKey))})
	pubJWK, err := jwk.FromRaw(&keys[0].PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	_ = pubJWK.Set(jwk.KeyIDKey, kidOf(0))
	_ = pubJWK.Set(jwk.AlgorithmKey, "RS256")
	pubJWKJSON, _ := json.Marshal(pubJWK)
	attackerJWK, _ := jwk.FromRaw(&keys[attacker].PublicKey)
	attackerJWKSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the verifier fetched an attacker-supplied URL: %s", r.URL)
		set := jwk.NewSet()
		_ = set.AddKey(attackerJWK)
		_ = json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(attackerJWKSrv.Close)
	attackerChain := &cert.Chain{}
	_ = attackerChain.AddString(base64.StdEncoding.EncodeToString(selfSigned(t, keys[attacker])))

	with := func(mod func(h, c map[string]any)) (map[string]any, map[string]any) {
		h, c := header(kidOf(0)), claims(ti, now)
		mod(h, c)
		return h, c
	}
	rs256 := func(key int, mod func(h, c map[string]any)) string {
		h, c := with(mod)
		return signJWT(t, jwa.RS256, keys[key], h, c)
	}
	valid := rs256(0, func(h, c map[string]any) {})

	tests := []struct {
		name    string
		token   string
		wantErr error
	}{
		{"valid", valid, nil},
		{"valid, second key", signJWT(t, jwa.RS256, keys[1], header(kidOf(1)), claims(ti, now)), nil},
		{"aud array", rs256(0, func(h, c map[string]any) { c["aud"] = []string{"other", "api"} }), nil},
		{"typ application/at+jwt", rs256(0, func(h, c map[string]any) { h["typ"] = "application/at+jwt" }), nil},
		{"typ upper case", rs256(0, func(h, c map[string]any) { h["typ"] = "AT+JWT" }), nil},
		{"expired", rs256(0, func(h, c map[string]any) { c["exp"] = now.Add(-2 * time.Minute).Unix() }), jwks.ErrExpired},
		{"expired within leeway", rs256(0, func(h, c map[string]any) { c["exp"] = now.Add(-20 * time.Second).Unix() }), nil},
		{"expired exactly at leeway", rs256(0, func(h, c map[string]any) { c["exp"] = now.Add(-30 * time.Second).Unix() }), jwks.ErrExpired},
		{"not yet valid", rs256(0, func(h, c map[string]any) { c["nbf"] = now.Add(5 * time.Minute).Unix() }), jwks.ErrNotYetValid},
		{"nbf within leeway", rs256(0, func(h, c map[string]any) { c["nbf"] = now.Add(20 * time.Second).Unix() }), nil},
		{"issued in the future", rs256(0, func(h, c map[string]any) { c["iat"] = now.Add(5 * time.Minute).Unix() }), jwks.ErrNotYetValid},
		{"no exp", rs256(0, func(h, c map[string]any) { delete(c, "exp") }), jwks.ErrMalformed},
		{"exp a string", rs256(0, func(h, c map[string]any) { c["exp"] = "tomorrow" }), jwks.ErrMalformed},
		{"wrong audience", rs256(0, func(h, c map[string]any) { c["aud"] = "billing" }), jwks.ErrWrongAudience},
		{"no audience", rs256(0, func(h, c map[string]any) { delete(c, "aud") }), jwks.ErrWrongAudience},
		{"wrong issuer", rs256(0, func(h, c map[string]any) { c["iss"] = "https://evil.example" }), jwks.ErrWrongIssuer},
		{"issuer with trailing slash", rs256(0, func(h, c map[string]any) { c["iss"] = ti.URL() + "/" }), jwks.ErrWrongIssuer},
		{"wrong typ (ID token)", rs256(0, func(h, c map[string]any) { h["typ"] = "JWT" }), jwks.ErrWrongType},
		{"no typ", rs256(0, func(h, c map[string]any) { h["typ"] = nil }), jwks.ErrWrongType},
		{"missing kid", rs256(0, func(h, c map[string]any) { h["kid"] = nil }), jwks.ErrMalformed},
		{"crit header", rawToken(t, map[string]any{"alg": "RS256", "kid": kidOf(0), "typ": "at+jwt", "crit": []string{"b64"}, "b64": false}, claims(ti, now), []byte("x")), jwks.ErrMalformed},
		{"alg none", rawToken(t, map[string]any{"alg": "none", "kid": kidOf(0), "typ": "at+jwt"}, claims(ti, now), nil), jwks.ErrAlgorithm},
		{"alg None", rawToken(t, map[string]any{"alg": "None", "kid": kidOf(0), "typ": "at+jwt"}, claims(ti, now), nil), jwks.ErrAlgorithm},
		{"HS256 keyed with the public key PEM", hs256(t, map[string]any{"alg": "HS256", "kid": kidOf(0), "typ": "at+jwt"}, claims(ti, now), pubPEM), jwks.ErrAlgorithm},
		{"HS256 keyed with the public JWK JSON", hs256(t, map[string]any{"alg": "HS256", "kid": kidOf(0), "typ": "at+jwt"}, claims(ti, now), pubJWKJSON), jwks.ErrAlgorithm},
		{"HS256 by jwx", signJWT(t, jwa.HS256, pubPEM, header(kidOf(0)), claims(ti, now)), jwks.ErrAlgorithm},
		{"RS512 header on an RS256 key", signJWT(t, jwa.RS512, keys[0], header(kidOf(0)), claims(ti, now)), jwks.ErrAlgorithm},
		{"payload byte flipped", flipPayload(t, valid), jwks.ErrBadSignature},
		{"signature shortened", cutSignature(valid), jwks.ErrBadSignature},
		{"signature swapped", swapSignature(valid, rs256(0, func(h, c map[string]any) { c["sub"] = "admin" })), jwks.ErrBadSignature},
		{"re-signed by another key under a genuine kid", rs256(attacker, func(h, c map[string]any) {}), jwks.ErrBadSignature},
		{"signed by the issuer's other key under the wrong kid", rs256(1, func(h, c map[string]any) {}), jwks.ErrBadSignature},
		{"unknown kid", signJWT(t, jwa.RS256, keys[attacker], header("attacker"), claims(ti, now)), jwks.ErrUnknownKey},
		{"embedded jwk, attacker kid", rs256(attacker, func(h, c map[string]any) { h["kid"] = "attacker"; h["jwk"] = attackerJWK }), jwks.ErrUnknownKey},
		{"embedded jwk, genuine kid", rs256(attacker, func(h, c map[string]any) { h["jwk"] = attackerJWK }), jwks.ErrBadSignature},
		{"jku to attacker set", rs256(attacker, func(h, c map[string]any) { h["kid"] = "attacker"; h["jku"] = attackerJWKSrv.URL }), jwks.ErrUnknownKey},
		{"jku, genuine kid", rs256(attacker, func(h, c map[string]any) { h["jku"] = attackerJWKSrv.URL }), jwks.ErrBadSignature},
		{"x5u to attacker", rs256(attacker, func(h, c map[string]any) { h["x5u"] = attackerJWKSrv.URL }), jwks.ErrBadSignature},
		{"x5c with attacker cert", rs256(attacker, func(h, c map[string]any) { h["x5c"] = attackerChain }), jwks.ErrBadSignature},
		{"not a JWS", "not-a-token", jwks.ErrMalformed},
		{"four parts", valid + ".x", jwks.ErrMalformed},
		{"empty", "", jwks.ErrMalformed},
		{"bad base64 header", "!!!" + valid[strings.IndexByte(valid, '.'):], jwks.ErrMalformed},
		{"header not JSON", jwtforge.B64([]byte("nope")) + valid[strings.IndexByte(valid, '.'):], jwks.ErrMalformed},
		{"huge", strings.Repeat("a", 20000) + ".b.c", jwks.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := v.Verify(context.Background(), tt.token)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if c.Subject != "user-42" || c.Issuer != ti.URL() {
					t.Errorf("claims %+v", c)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Verify error = %v, want %v", err, tt.wantErr)
			}
			if c != nil {
				t.Errorf("claims returned with an error: %+v", c)
			}
			if !strings.HasPrefix(err.Error(), tt.wantErr.Error()) {
				t.Errorf("error %q does not start with %q", err, tt.wantErr)
			}
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func selfSigned(t *testing.T, key *rsa.PrivateKey) []byte {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "attacker"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// flipPayload changes one character in the middle of the payload segment to
// another base64url character, keeping the token well-formed.
func flipPayload(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	p := []byte(parts[1])
	i := len(p) / 2
	if p[i] == 'A' {
		p[i] = 'B'
	} else {
		p[i] = 'A'
	}
	parts[1] = string(p)
	return strings.Join(parts, ".")
}

// cutSignature removes three bytes from the middle of the signature,
// keeping its base64url valid.
func cutSignature(tok string) string {
	i := strings.LastIndexByte(tok, '.') + 100
	return tok[:i] + tok[i+4:]
}

// swapSignature puts sigFrom's signature on tok.
func swapSignature(tok, sigFrom string) string {
	return tok[:strings.LastIndexByte(tok, '.')] + sigFrom[strings.LastIndexByte(sigFrom, '.'):]
}

func TestVerifyClaims(t *testing.T) {
	t.Parallel()
	ti, clk, v := newVerified(t, 5*time.Minute, 0)
	now := clk.Now()
	cl := claims(ti, now)
	cl["aud"] = []string{"api", "other"}
	cl["exp"] = float64(now.Add(time.Hour).Unix()) + 0.5
	cl["tenant"] = map[string]any{"id": "t1", "tier": 3}
	tok := signJWT(t, jwa.RS256, vkeys(t)[0], header(kidOf(0)), cl)
	c, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	want := &jwks.Claims{
		Issuer:    ti.URL(),
		Subject:   "user-42",
		Audience:  []string{"api", "other"},
		Expiry:    now.Add(time.Hour + 500*time.Millisecond),
		IssuedAt:  now,
		NotBefore: now,
		ID:        "jti-1",
		ClientID:  "client-7",
		Scope:     []string{"read", "write"},
		KeyID:     kidOf(0),
	}
	got := &jwks.Claims{
		Issuer: c.Issuer, Subject: c.Subject, Audience: c.Audience, Expiry: c.Expiry,
		IssuedAt: c.IssuedAt, NotBefore: c.NotBefore, ID: c.ID, ClientID: c.ClientID,
		Scope: c.Scope, KeyID: c.KeyID,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("claims\n got %+v\nwant %+v", got, want)
	}
	if !c.Expiry.Equal(want.Expiry) {
		t.Errorf("Expiry %v, want %v", c.Expiry, want.Expiry)
	}
	if c.Raw()["tenant"].(map[string]any)["tier"] != 3.0 || c.Raw()["client_id"] != "client-7" {
		t.Errorf("Raw = %v", c.Raw())
	}
	if v, ok := c.Claim("aud"); !ok || !reflect.DeepEqual(v, []any{"api", "other"}) {
		t.Errorf(`Claim("aud") = %v, %v`, v, ok)
	}
	if v, ok := c.Claim("absent"); ok || v != nil {
		t.Errorf(`Claim("absent") = %v, %v`, v, ok)
	}
	if !c.HasScope("write") || c.HasScope("admin") {
		t.Error("HasScope")
	}
	if s := v.Stats(); s.Verifications != 1 || s.Failures != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestRequiredScopesAndExpectedType(t *testing.T) {
	t.Parallel()
	ti := newTestIssuer(t, 5*time.Minute, 0)
	clk := newFakeClock()
	now := clk.Now()
	keys := vkeys(t)

	v := newTestVerifier(t, ti, clk, jwks.Config{RequiredScopes: []string{"read", "admin"}})
	_, err := v.Verify(context.Background(), accessToken(t, ti, 0, now))
	if !errors.Is(err, jwks.ErrInsufficientScope) || !strings.Contains(err.Error(), "admin") {
		t.Errorf("Verify = %v, want ErrInsufficientScope naming admin", err)
	}
	cl := claims(ti, now)
	cl["scope"] = "admin read"
	if _, err := v.Verify(context.Background(), signJWT(t, jwa.RS256, keys[0], header(kidOf(0)), cl)); err != nil {
		t.Errorf("Verify with both scopes: %v", err)
	}

	// typ check disabled: an untyped token passes.
	v2 := newTestVerifier(t, ti, clk, jwks.Config{SkipTypeCheck: true})
	if _, err := v2.Verify(context.Background(), signJWT(t, jwa.RS256, keys[0], map[string]any{"kid": kidOf(0)}, claims(ti, now))); err != nil {
		t.Errorf("untyped token with the typ check disabled: %v", err)
	}
}

func TestKeyAlgorithmDecides(t *testing.T) {
	t.Parallel()
	keys := vkeys(t)
	ti := newTestIssuer(t, 5*time.Minute)
	doc := must(jwks.NewDocument([]jwks.PublicKey{
		{KID: "rs384", Algorithm: "RS384", Key: &keys[0].PublicKey},
		{KID: "rs256", Algorithm: "RS256", Key: &keys[1].PublicKey},
	}))
	ti.pub.Publish(doc)
	clk := newFakeClock()
	v := newTestVerifier(t, ti, clk, jwks.Config{Algorithms: []string{"RS256", "RS384"}})
	now := clk.Now()
	if _, err := v.Verify(context.Background(), signJWT(t, jwa.RS384, keys[0], header("rs384"), claims(ti, now))); err != nil {
		t.Errorf("RS384 with the RS384 key: %v", err)
	}
	_, err := v.Verify(context.Background(), signJWT(t, jwa.RS256, keys[0], header("rs384"), claims(ti, now)))
	if !errors.Is(err, jwks.ErrAlgorithm) {
		t.Errorf("RS256 header on the RS384 key: %v, want ErrAlgorithm", err)
	}
	_, err = v.Verify(context.Background(), signJWT(t, jwa.RS384, keys[1], header("rs256"), claims(ti, now)))
	if !errors.Is(err, jwks.ErrAlgorithm) {
		t.Errorf("RS384 header on the RS256 key: %v, want ErrAlgorithm", err)
	}
}

func TestNewVerifierConfiguration(t *testing.T) {
	t.Parallel()
	ti := newTestIssuer(t, 5*time.Minute, 0)
	ctx := context.Background()

	for _, sc := range []struct {
		name string
		run  func(t *testing.T, ti *testIssuer)
	}{
		{"discovery", verifierByDiscovery},
		{"JWKS URL needs Config.Issuer", verifierFromJWKSURL},
		{"Config.JWKSURL", verifierWithConfigJWKSURL},
		{"discovery issuer mismatch", verifierDiscoveryIssuerMismatch},
		{"https issuer with an http jwks_uri", verifierHTTPJWKSURI},
		{"first fetch fails", verifierFirstFetchFails},
		{"discovery unreachable", verifierDiscoveryUnreachable},
	} {
		t.Run(sc.name, func(t *testing.T) { sc.run(t, ti) })
	}
	for _, tt := range []struct {
		name string
		url  string
		cfg  jwks.Config
	}{
		{"not a URL", "id.example.com", jwks.Config{}},
		{"HMAC algorithm", ti.URL(), jwks.Config{Algorithms: []string{"HS256"}}},
		{"none algorithm", ti.URL(), jwks.Config{Algorithms: []string{"RS256", "none"}}},
		{"client option", ti.URL(), jwks.Config{KeyTTL: time.Minute}},
		{"bad refresh bounds", ti.URL(), jwks.Config{MinRefresh: time.Hour, MaxRefresh: time.Minute}},
		{"negative leeway", ti.URL(), jwks.Config{Leeway: -time.Second}},
		{"empty audience", ti.URL(), jwks.Config{Audience: []string{}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Logger = discardLogger
			if v, err := jwks.NewVerifier(ctx, tt.url, tt.cfg); err == nil {
				v.Close()
				t.Fatal("no error")
			}
		})
	}
}

// verifierByDiscovery: an issuer URL is discovered once, and the key set
// fetched once.
func verifierByDiscovery(t *testing.T, ti *testIssuer) {
	before := ti.discoHits.Load()
	v, err := jwks.NewVerifier(context.Background(), ti.URL(), jwks.Config{Logger: discardLogger})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if v.Issuer() != ti.URL() || v.JWKSURL() != ti.URL()+"/jwks" || ti.discoHits.Load() != before+1 {
		t.Errorf("issuer %q, jwks %q, discovery hits %d", v.Issuer(), v.JWKSURL(), ti.discoHits.Load()-before)
	}
	if s := v.Stats(); s.Fetches != 1 {
		t.Errorf("Fetches = %d after NewVerifier, want 1", s.Fetches)
	}
	if got := v.KeyIDs(); !slices.Equal(got, []string{kidOf(0)}) {
		t.Errorf("KeyIDs = %v", got)
	}
}

// verifierFromJWKSURL: a JWKS URL needs Config.Issuer, and skips discovery.
func verifierFromJWKSURL(t *testing.T, ti *testIssuer) {
	ctx := context.Background()
	_, err := jwks.NewVerifier(ctx, ti.URL()+"/jwks", jwks.Config{Logger: discardLogger})
	if err == nil || !strings.Contains(err.Error(), "Config.Issuer") {
		t.Fatalf("err = %v", err)
	}
	before := ti.discoHits.Load()
	v, err := jwks.NewVerifier(ctx, ti.URL()+"/jwks", jwks.Config{Logger: discardLogger, Issuer: ti.URL()})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if ti.discoHits.Load() != before || v.Issuer() != ti.URL() {
		t.Error("a JWKS URL should skip discovery")
	}
}

// verifierWithConfigJWKSURL: Config.JWKSURL skips discovery and keeps the
// given issuer.
func verifierWithConfigJWKSURL(t *testing.T, ti *testIssuer) {
	before := ti.discoHits.Load()
	v, err := jwks.NewVerifier(context.Background(), "https://id.example.com", jwks.Config{Logger: discardLogger, JWKSURL: ti.URL() + "/jwks"})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if ti.discoHits.Load() != before || v.Issuer() != "https://id.example.com" {
		t.Error("Config.JWKSURL should skip discovery and keep the given issuer")
	}
}

// verifierDiscoveryIssuerMismatch: a discovery document naming another
// issuer is refused, unless Config.Issuer names that one.
func verifierDiscoveryIssuerMismatch(t *testing.T, _ *testIssuer) {
	ctx := context.Background()
	ti := newTestIssuer(t, 5*time.Minute, 0)
	evil := "https://evil.example"
	ti.discoIssuer.Store(&evil)
	_, err := jwks.NewVerifier(ctx, ti.URL(), jwks.Config{Logger: discardLogger})
	if !errors.Is(err, jwks.ErrWrongIssuer) {
		t.Fatalf("err = %v, want ErrWrongIssuer", err)
	}
	// With Config.Issuer, the document must name that issuer instead.
	v, err := jwks.NewVerifier(ctx, ti.URL(), jwks.Config{Logger: discardLogger, Issuer: evil})
	if err != nil {
		t.Fatal(err)
	}
	v.Close()
}

// verifierHTTPJWKSURI: an https issuer whose jwks_uri is http is refused.
func verifierHTTPJWKSURI(t *testing.T, ti *testIssuer) {
	var tls *httptest.Server
	tls = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": tls.URL, "jwks_uri": ti.URL() + "/jwks"})
	}))
	defer tls.Close()
	_, err := jwks.NewVerifier(context.Background(), tls.URL, jwks.Config{Logger: discardLogger, HTTPClient: tls.Client()})
	if err == nil || !strings.Contains(err.Error(), "not https") {
		t.Fatalf("err = %v, want a refusal of the http jwks_uri", err)
	}
}

// verifierFirstFetchFails: NewVerifier fails, quoting the status, when the
// first key-set fetch does.
func verifierFirstFetchFails(t *testing.T, _ *testIssuer) {
	ti := newTestIssuer(t, 5*time.Minute, 0)
	ti.mode.Store(mode500)
	_, err := jwks.NewVerifier(context.Background(), ti.URL(), jwks.Config{Logger: discardLogger})
	if err == nil || !strings.Contains(err.Error(), "500") {
		t.Fatalf("err = %v, want a failure quoting the 500", err)
	}
}

// verifierDiscoveryUnreachable: NewVerifier fails when discovery cannot be
// reached.
func verifierDiscoveryUnreachable(t *testing.T, _ *testIssuer) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	if _, err := jwks.NewVerifier(context.Background(), srv.URL, jwks.Config{Logger: discardLogger}); err == nil {
		t.Fatal("no error")
	}
}

// TestSteadyStateNoFetch: verifying does not touch the network once the set
// is cached.
func TestSteadyStateNoFetch(t *testing.T) {
	t.Parallel()
	ti, clk, v := newVerified(t, 5*time.Minute, 0, 1)
	tok0, tok1 := accessToken(t, ti, 0, clk.Now()), accessToken(t, ti, 1, clk.Now())
	hits := ti.jwksHits.Load()
	for i := 0; i < 200; i++ {
		clk.Advance(time.Second) // time passing does not cause fetches either
		for _, tok := range []string{tok0, tok1} {
			if _, err := v.Verify(context.Background(), tok); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got := ti.jwksHits.Load() - hits; got != 0 {
		t.Errorf("%d JWKS requests during 400 verifications, want 0", got)
	}
}

// TestRotation: each newly published kid is picked up with exactly one
// refetch.
func TestRotation(t *testing.T) {
	t.Parallel()
	ti, clk, v := newVerified(t, 5*time.Minute, 0)
	ctx := context.Background()

	for _, step := range []struct{ publish, use int }{{1, 1}, {2, 2}} {
		clk.Advance(jwks.DefaultUnknownKIDInterval)
		kids := []int{0}
		for i := 1; i <= step.publish; i++ {
			kids = append(kids, i)
		}
		ti.publish(t, kids...)
		before := ti.jwksHits.Load()
		tok := accessToken(t, ti, step.use, clk.Now())
		for i := 0; i < 5; i++ {
			if _, err := v.Verify(ctx, tok); err != nil {
				t.Fatalf("kid%d: %v", step.use, err)
			}
		}
		if got := ti.jwksHits.Load() - before; got != 1 {
			t.Errorf("kid%d: %d JWKS requests, want exactly 1", step.use, got)
		}
	}
	if s := v.Stats(); s.UnknownKIDRefetches != 2 || s.Fetches != 3 {
		t.Errorf("stats %+v, want 2 unknown-kid refetches and 3 fetches", s)
	}

	// A revoked kid disappears with the next fetch (here one caused by
	// another unknown kid).
	clk.Advance(jwks.DefaultUnknownKIDInterval)
	ti.publish(t, 1, 2)
	tok0 := accessToken(t, ti, 0, clk.Now())
	if _, err := v.Verify(ctx, tok0); err != nil {
		t.Fatalf("kid0 before any refetch: %v", err)
	}
	if _, err := v.Verify(ctx, accessToken(t, ti, attacker, clk.Now())); !errors.Is(err, jwks.ErrUnknownKey) {
		t.Fatalf("token with the unpublished kid3: %v, want ErrUnknownKey", err)
	}
	if _, err := v.Verify(ctx, tok0); !errors.Is(err, jwks.ErrUnknownKey) {
		t.Errorf("revoked kid0 after a refetch: %v, want ErrUnknownKey", err)
	}
}

// TestConcurrentUnknownKID: many requests carrying the same new kid at once
// share a single fetch.
func TestConcurrentUnknownKID(t *testing.T) {
	t.Parallel()
	ti, clk, v := newVerified(t, 5*time.Minute, 0)
	clk.Advance(time.Minute)
	ti.publish(t, 0, 1)
	tok := accessToken(t, ti, 1, clk.Now())
	before := ti.jwksHits.Load()

	const n = 16
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			<-start
			_, errs[i] = v.Verify(context.Background(), tok)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("goroutine %d: %v", i, err)
		}
	}
	if got := ti.jwksHits.Load() - before; got != 1 {
		t.Errorf("%d JWKS requests for %d concurrent verifications of a new kid, want 1", got, n)
	}
}

// TestUnknownKIDFlood: made-up kids cost the issuer at most one request
// per interval, and do not disturb genuine tokens.
func TestUnknownKIDFlood(t *testing.T) {
	t.Parallel()
	ti, clk, v := newVerified(t, 5*time.Minute, 0)
	genuine := accessToken(t, ti, 0, clk.Now())
	// One forged token, re-headed with a different kid each time: signing
	// 2000 tokens would only slow the test down, and the kid lookup comes
	// before the signature check anyway.
	forged := signJWT(t, jwa.RS256, vkeys(t)[attacker], header("x"), claims(ti, clk.Now()))
	rest := forged[strings.IndexByte(forged, '.'):]
	withKID := func(kid string) string {
		h, _ := json.Marshal(map[string]any{"alg": "RS256", "kid": kid, "typ": "at+jwt"})
		return jwtforge.B64(h) + rest
	}

	flood := func(round int) {
		const n, workers = 2000, 8
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := w; i < n; i += workers {
					_, err := v.Verify(context.Background(), withKID(fmt.Sprintf("forged-%d-%d", round, i)))
					if !errors.Is(err, jwks.ErrUnknownKey) {
						t.Errorf("forged kid: %v, want ErrUnknownKey", err)
						return
					}
					if i%100 == 0 {
						if _, err := v.Verify(context.Background(), genuine); err != nil {
							t.Errorf("genuine token during the flood: %v", err)
							return
						}
					}
				}
			})
		}
		wg.Wait()
	}

	before := ti.jwksHits.Load()
	flood(0) // right after NewVerifier's fetch: no refetch at all
	if got := ti.jwksHits.Load() - before; got != 0 {
		t.Errorf("flood right after the initial fetch: %d JWKS requests, want 0", got)
	}
	for round := 1; round <= 3; round++ {
		clk.Advance(jwks.DefaultUnknownKIDInterval)
		before := ti.jwksHits.Load()
		flood(round)
		if got := ti.jwksHits.Load() - before; got != 1 {
			t.Errorf("round %d: %d JWKS requests for 2000 forged kids in one interval, want 1", round, got)
		}
	}
	if s := v.Stats(); s.Failures != 8000 {
		t.Errorf("Failures = %d, want 8000", s.Failures)
	}
}

// TestIssuerDown: while the issuer fails, cached keys keep verifying and
// the failure is counted; a new kid is refused until the issuer is back.
func TestIssuerDown(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		mode int32
	}{{"500", mode500}, {"garbage", modeGarbage}, {"connection reset", modeReset}} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ti, clk, v := newVerified(t, 5*time.Minute, 0)
			ctx := context.Background()
			tok0 := accessToken(t, ti, 0, clk.Now())
			tok1 := accessToken(t, ti, 1, clk.Now())

			ti.mode.Store(tt.mode)
			ti.publish(t, 0, 1) // kid1 published, but the issuer cannot serve it
			for range 3 {
				clk.Advance(jwks.DefaultUnknownKIDInterval)
				if _, err := v.Verify(ctx, tok1); !errors.Is(err, jwks.ErrUnknownKey) {
					t.Fatalf("new kid while the issuer is down: %v, want ErrUnknownKey", err)
				}
				if _, err := v.Verify(ctx, tok0); err != nil {
					t.Fatalf("cached kid while the issuer is down: %v", err)
				}
			}
			if s := v.Stats(); s.RefreshFailures != 3 {
				t.Errorf("RefreshFailures = %d, want 3", s.RefreshFailures)
			}
			if got := v.KeyIDs(); !slices.Equal(got, []string{kidOf(0)}) {
				t.Errorf("cached kids after failed refreshes = %v, want [kid0]", got)
			}

			ti.mode.Store(modeOK)
			if _, err := v.Verify(ctx, tok1); !errors.Is(err, jwks.ErrUnknownKey) {
				t.Errorf("new kid within the interval after a failure: %v, want ErrUnknownKey", err)
			}
			clk.Advance(jwks.DefaultUnknownKIDInterval)
			if _, err := v.Verify(ctx, tok1); err != nil {
				t.Errorf("new kid once the issuer is back: %v", err)
			}
			if _, err := v.Verify(ctx, tok0); err != nil {
				t.Errorf("old kid once the issuer is back: %v", err)
			}
		})
	}
}

// TestBackgroundRefresh runs jwk.Cache's real-time refresh with 1 s bounds:
// the issuer's max-age of one hour is clamped to the upper bound, a failed
// background refresh keeps the last good set, and a revoked kid disappears.
func TestBackgroundRefresh(t *testing.T) {
	t.Parallel()
	ti := newTestIssuer(t, time.Hour, 0, 1)
	clk := newFakeClock()
	v := newTestVerifier(t, ti, clk, jwks.Config{MinRefresh: time.Second, MaxRefresh: time.Second})
	ctx := context.Background()
	tok0, tok1 := accessToken(t, ti, 0, clk.Now()), accessToken(t, ti, 1, clk.Now())

	// Failures first: the set must survive them.
	ti.mode.Store(modeGarbage)
	poll.Until(t, 10*time.Second, "a failed background refresh", func() bool { return v.Stats().RefreshFailures >= 1 })
	ti.mode.Store(mode500)
	failures := v.Stats().RefreshFailures
	poll.Until(t, 10*time.Second, "another failed background refresh", func() bool { return v.Stats().RefreshFailures > failures })
	if _, err := v.Verify(ctx, tok0); err != nil {
		t.Fatalf("cached kid after failed background refreshes: %v", err)
	}

	// Then kid0 is revoked; the refresh, although the issuer says max-age
	// 3600, comes within the 1 s bound and drops it.
	ti.publish(t, 1)
	ti.mode.Store(modeOK)
	poll.Until(t, 10*time.Second, "the revoked kid to disappear", func() bool {
		return slices.Equal(v.KeyIDs(), []string{kidOf(1)})
	})
	if _, err := v.Verify(ctx, tok0); !errors.Is(err, jwks.ErrUnknownKey) {
		t.Errorf("revoked kid: %v, want ErrUnknownKey", err)
	}
	if _, err := v.Verify(ctx, tok1); err != nil {
		t.Errorf("remaining kid: %v", err)
	}
}

// TestCloseStopsRefresh: after Close, no more requests reach the issuer and
// cached keys still verify.
func TestCloseStopsRefresh(t *testing.T) {
	t.Parallel()
	ti, clk, v := newVerified(t, time.Hour, 0)
	_ = v.Close()
	_ = v.Close()
	clk.Advance(time.Hour)
	hits := ti.jwksHits.Load()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := v.Verify(ctx, accessToken(t, ti, 1, clk.Now())); !errors.Is(err, jwks.ErrUnknownKey) {
		t.Errorf("unknown kid after Close: %v", err)
	}
	if ti.jwksHits.Load() != hits {
		t.Error("fetched after Close")
	}
	cl := claims(ti, clk.Now())
	if _, err := v.Verify(ctx, signJWT(t, jwa.RS256, vkeys(t)[0], header(kidOf(0)), cl)); err != nil {
		t.Errorf("cached kid after Close: %v", err)
	}
}

// TestRefetchRespectsContext: a request whose context ends while waiting
// for a refetch gives up with an error wrapping both ErrUnknownKey and the
// context's error.
func TestRefetchRespectsContext(t *testing.T) {
	t.Parallel()
	ti, clk, v := newVerified(t, time.Hour, 0)
	clk.Advance(time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := v.Verify(ctx, accessToken(t, ti, 1, clk.Now()))
	if !errors.Is(err, jwks.ErrUnknownKey) || !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want ErrUnknownKey and context.Canceled", err)
	}
}

// TestKeySetFiltering: keys that cannot verify signatures here are left
// out of the index, and a key published without "alg" is usable with the
// accepted algorithms only.
func TestKeySetFiltering(t *testing.T) {
	t.Parallel()
	keys := vkeys(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	mk := func(raw any, members map[string]any) jwk.Key {
		k, err := jwk.FromRaw(raw)
		if err != nil {
			t.Fatal(err)
		}
		for n, v := range members {
			if err := k.Set(n, v); err != nil {
				t.Fatal(err)
			}
		}
		return k
	}
	set := jwk.NewSet()
	for _, k := range []jwk.Key{
		mk(&keys[0].PublicKey, map[string]any{"kid": "noalg"}),
		mk(&keys[1].PublicKey, map[string]any{"kid": "enc", "use": "enc"}),
		mk(&keys[1].PublicKey, map[string]any{"kid": "oaep", "alg": "RSA-OAEP"}),
		mk(&keys[1].PublicKey, map[string]any{"alg": "RS256"}), // no kid
		mk(&small.PublicKey, map[string]any{"kid": "small", "alg": "RS256"}),
		mk(&ec.PublicKey, map[string]any{"kid": "ec", "alg": "ES256"}),
		mk(&p384.PublicKey, map[string]any{"kid": "p384", "alg": "ES384"}),
		mk(&p384.PublicKey, map[string]any{"kid": "p384noalg"}),
		mk(&keys[2].PublicKey, map[string]any{"kid": "dup", "alg": "RS256"}),
		mk(&keys[1].PublicKey, map[string]any{"kid": "dup", "alg": "RS256"}),
	} {
		_ = set.AddKey(k)
	}
	body, _ := json.Marshal(set)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=300")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)

	clk := newFakeClock()
	v, err := jwks.NewVerifier(context.Background(), srv.URL+"/jwks", jwks.Config{Issuer: "https://id.example", Now: clk.Now, Logger: discardLogger})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if got := v.KeyIDs(); !slices.Equal(got, []string{"noalg", "ec", "dup"}) {
		t.Errorf("KeyIDs = %v, want [noalg ec dup]", got)
	}
	cl := map[string]any{"iss": "https://id.example", "exp": clk.Now().Add(time.Minute).Unix()}
	if _, err := v.Verify(context.Background(), signJWT(t, jwa.RS256, keys[0], header("noalg"), cl)); err != nil {
		t.Errorf("RS256 with an alg-less key: %v", err)
	}
	if _, err := v.Verify(context.Background(), signJWT(t, jwa.RS256, keys[0], header("ec"), cl)); !errors.Is(err, jwks.ErrAlgorithm) {
		t.Errorf("RS256 header naming an EC key: %v", err)
	}
	if _, err := v.Verify(context.Background(), signJWT(t, jwa.PS256, keys[0], header("noalg"), cl)); !errors.Is(err, jwks.ErrAlgorithm) {
		t.Errorf("PS256 (not accepted) with an alg-less key: %v", err)
	}
	if _, err := v.Verify(context.Background(), signJWT(t, jwa.RS256, keys[2], header("dup"), cl)); err != nil {
		t.Errorf("first key of a duplicated kid: %v", err)
	}
	if _, err := v.Verify(context.Background(), signJWT(t, jwa.RS256, small, header("small"), cl)); !errors.Is(err, jwks.ErrUnknownKey) {
		t.Errorf("1024-bit key: %v, want ErrUnknownKey", err)
	}
}

// TestClaimsOutsideTheFastPath: claims with escapes and non-ASCII text
// decode through encoding/json, with the same result.
func TestClaimsOutsideTheFastPath(t *testing.T) {
	t.Parallel()
	ti, clk, v := newVerified(t, 5*time.Minute, 0)
	cl := claims(ti, clk.Now())
	cl["sub"] = "Zoë \"the\" admin\n"
	cl["scope"] = "read\twrite"
	c, err := v.Verify(context.Background(), signJWT(t, jwa.RS256, vkeys(t)[0], header(kidOf(0)), cl))
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "Zoë \"the\" admin\n" || !slices.Equal(c.Scope, []string{"read", "write"}) {
		t.Errorf("claims %+v", c)
	}
}
