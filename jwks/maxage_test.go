package jwks_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/keygate/keygate/jwks"
)

// TestClientTokenWithoutExp: a client-signed request {"query", "iss", "iat"} has no exp; it is
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
	cv := newTestClientVerifier(t, ks, clk, jwks.Config{MaxAgeWithoutExpiry: time.Minute, NoLeeway: true})
	c, err := cv.Verify(context.Background(), tok)
	if err != nil || c.Raw()["query"] != "meaning of life" {
		t.Fatalf("fresh client-signed token: %v", err)
	}
	noIat := clientToken(t, key, "client", clk.Now(), func(m map[string]any) { noExp(m); delete(m, "iat") })
	if _, err := cv.Verify(context.Background(), noIat); !errors.Is(err, jwks.ErrMalformed) {
		t.Errorf("neither exp nor iat: err = %v, want ErrMalformed", err)
	}
	clk.Advance(time.Minute)
	if _, err := cv.Verify(context.Background(), tok); !errors.Is(err, jwks.ErrExpired) {
		t.Errorf("seed-001 token older than the max age: err = %v, want ErrExpired", err)
	}
}
