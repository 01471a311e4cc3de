package jwks_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/keygate/keygate/jwks"
)

// TestClientTokenWithoutExp: seed 001's {"query", "iss", "iat"} has no exp; it is
// refused by default and accepted with Config.MaxAgeWithoutExpiry only while iat is recent.
func TestClientTokenWithoutExp(t *testing.T) {
	ks := newKeyServer(t)
	key := vkeys(t)[0]
	ks.set("client", &key.PublicKey)
	clk := newFakeClock()
	noExp := func(m map[string]any) { delete(m, "exp"); m["query"] = "meaning of life" }
	tok := clientToken(t, key, "client", clk.Now(), noExp)

	strict := newTestClientVerifier(t, ks, clk)
	if _, err := strict.Verify(context.Background(), tok); !errors.Is(err, jwks.ErrMalformed) {
		t.Errorf("without MaxAgeWithoutExpiry: err = %v, want ErrMalformed", err)
	}
	seed := newTestClientVerifier(t, ks, clk, jwks.Config{MaxAgeWithoutExpiry: time.Minute, NoLeeway: true})
	c, err := seed.Verify(context.Background(), tok)
	if err != nil || c.Raw()["query"] != "meaning of life" {
		t.Fatalf("fresh seed-001 token: %v", err)
	}
	noIat := clientToken(t, key, "client", clk.Now(), func(m map[string]any) { noExp(m); delete(m, "iat") })
	if _, err := seed.Verify(context.Background(), noIat); !errors.Is(err, jwks.ErrMalformed) {
		t.Errorf("neither exp nor iat: err = %v, want ErrMalformed", err)
	}
	clk.Advance(time.Minute)
	if _, err := seed.Verify(context.Background(), tok); !errors.Is(err, jwks.ErrExpired) {
		t.Errorf("seed-001 token older than the max age: err = %v, want ErrExpired", err)
	}
}
