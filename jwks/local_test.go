package jwks_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"

	"github.com/keygate/keygate/jwks"
)

// TestLocalVerifier: the issuer's own verifier follows what is published,
// at once and without HTTP, and applies the same checks as a remote one.
func TestLocalVerifier(t *testing.T) {
	t.Parallel()
	ti := newTestIssuer(t, 5*time.Minute) // publishes nothing yet
	clk := newFakeClock()
	v, err := jwks.NewLocalVerifier(ti.pub.Current, jwks.Config{
		Issuer: ti.URL(), Audience: []string{"api"}, Now: clk.Now, Logger: discardLogger, NoLeeway: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	ctx := context.Background()
	tok0 := accessToken(t, ti, 0, clk.Now())

	if _, err := v.Verify(ctx, tok0); !errors.Is(err, jwks.ErrUnknownKey) {
		t.Fatalf("before any Publish: %v, want ErrUnknownKey", err)
	}
	ti.publish(t, 0, 1)
	if c, err := v.Verify(ctx, tok0); err != nil || c.Subject == "" {
		t.Fatalf("after Publish: %v, %+v", err, c)
	}
	if got := v.KeyIDs(); len(got) != 2 || got[0] != kidOf(0) || got[1] != kidOf(1) {
		t.Errorf("KeyIDs = %q", got)
	}
	if _, err := v.Verify(ctx, accessToken(t, ti, 2, clk.Now())); !errors.Is(err, jwks.ErrUnknownKey) {
		t.Errorf("kid not published: %v, want ErrUnknownKey", err)
	}

	// A withdrawn key stops verifying at the next Verify.
	ti.publish(t, 1)
	if _, err := v.Verify(ctx, tok0); !errors.Is(err, jwks.ErrUnknownKey) {
		t.Errorf("withdrawn key: %v, want ErrUnknownKey", err)
	}
	tok1 := accessToken(t, ti, 1, clk.Now())
	if _, err := v.Verify(ctx, tok1); err != nil {
		t.Fatal(err)
	}

	// Same checks as the remote verifier: typ, audience, exp without leeway.
	idTok := claims(ti, clk.Now())
	idHdr := header(kidOf(1))
	idHdr["typ"] = "JWT"
	if _, err := v.Verify(ctx, signJWT(t, jwa.RS256, vkeys(t)[1], idHdr, idTok)); !errors.Is(err, jwks.ErrWrongType) {
		t.Errorf("typ JWT: %v, want ErrWrongType", err)
	}
	if _, err := v.Verify(ctx, tok1[:len(tok1)-4]+"AAAA"); !errors.Is(err, jwks.ErrBadSignature) {
		t.Errorf("tampered: %v, want ErrBadSignature", err)
	}
	exp, _ := claims(ti, clk.Now())["exp"].(int64)
	clk.Advance(time.Unix(exp, 0).Sub(clk.Now()))
	if _, err := v.Verify(ctx, tok1); !errors.Is(err, jwks.ErrExpired) {
		t.Errorf("at exp with NoLeeway: %v, want ErrExpired", err)
	}
	if s := v.Stats(); s.Fetches != 0 {
		t.Errorf("Stats.Fetches = %d, want 0 for a local verifier", s.Fetches)
	}

	// The middleware takes it like any TokenVerifier.
	clk.Advance(-5 * time.Minute)
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", "Bearer "+tok1)
	rec := httptest.NewRecorder()
	jwks.Middleware(v, jwks.MiddlewareConfig{})(whoami).ServeHTTP(rec, r)
	if rec.Code != http.StatusOK {
		t.Errorf("middleware: %d %s", rec.Code, rec.Body)
	}
}

func TestNewLocalVerifierConfig(t *testing.T) {
	t.Parallel()
	keys := jwks.NewPublisher(time.Minute).Current
	for _, cfg := range []jwks.Config{
		{}, // no issuer
		{Issuer: "https://id", JWKSURL: "https://id/jwks"},
		{Issuer: "https://id", HTTPClient: http.DefaultClient},
		{Issuer: "https://id", MinRefresh: time.Minute},
		{Issuer: "https://id", UnknownKIDInterval: time.Minute},
		{Issuer: "https://id", KeyTTL: time.Minute},
		{Issuer: "https://id", MaxAgeWithoutExpiry: time.Minute},
		{Issuer: "https://id", Leeway: time.Second, NoLeeway: true},
	} {
		if _, err := jwks.NewLocalVerifier(keys, cfg); err == nil {
			t.Errorf("NewLocalVerifier accepted %+v", cfg)
		}
	}
	if _, err := jwks.NewLocalVerifier(nil, jwks.Config{Issuer: "https://id"}); err == nil {
		t.Error("nil key source accepted")
	}
}

// The verifiers satisfy the middleware's interface.
var (
	_ jwks.TokenVerifier = (*jwks.Verifier)(nil)
	_ jwks.TokenVerifier = (*jwks.ClientKeyVerifier)(nil)
)
