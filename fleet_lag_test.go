package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/jwks"
	"github.com/keygate/keygate/web"
)

// mintToken gets a client_credentials access token from s (safe off the test
// goroutine: it reports errors instead of failing the test).
func mintToken(s *server, client, secret string) (string, error) {
	code, res := tokenRequest(s.url, client, secret)
	if tok, _ := res["access_token"].(string); code == 200 && tok != "" {
		return tok, nil
	}
	return "", fmt.Errorf("token at %s: %d %v", s.url, code, res)
}

// newKID returns a kid that s publishes and known lacks, or "".
func newKID(t *testing.T, s *server, known map[string]bool) string {
	t.Helper()
	body, _ := s.jwks(t)
	var set struct {
		Keys []struct {
			KID string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		t.Fatalf("JWKS of %s: %v", s.url, err)
	}
	for _, k := range set.Keys {
		if !known[k.KID] {
			return k.KID
		}
	}
	return ""
}

// consumerLoad mints tokens at the minting replicas, round robin, and
// verifies each with one consumer, counting failures and the kids seen.
type consumerLoad struct {
	verified, failed atomic.Int64
	mu               sync.Mutex
	byKID            map[string]int
	errs             []string
}

func (l *consumerLoad) run(ctx context.Context, v *jwks.Verifier, minters []*server, client, secret string) {
	for i := 0; ctx.Err() == nil; i++ {
		tok, err := mintToken(minters[i%len(minters)], client, secret)
		if err != nil {
			if ctx.Err() == nil {
				l.fail(err)
			}
			continue
		}
		c, err := v.Verify(ctx, tok)
		if err != nil {
			l.fail(err)
			continue
		}
		l.verified.Add(1)
		l.mu.Lock()
		l.byKID[c.KeyID]++
		l.mu.Unlock()
	}
}

func (l *consumerLoad) fail(err error) {
	l.failed.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.errs) < 5 {
		l.errs = append(l.errs, err.Error())
	}
}

func (l *consumerLoad) count(kid string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.byKID[kid]
}

// forceRotation runs `keygate keys rotate --force` and measures how long
// after the CLI returned replica a publishes the next key the CLI stored and
// signs with the key the CLI activated (it must not keep signing with the
// retired one). It returns once the consumer's cache (maxAge) has expired and
// the new active key has signed a few of the tokens it verified, so the next
// rotation is spaced above the max-age.
func forceRotation(t *testing.T, in *instance, a *server, secret string, keys []web.KeyView, maxAge time.Duration, load *consumerLoad) (after []web.KeyView, lag, signLag time.Duration) {
	t.Helper()
	known := map[string]bool{}
	activated := ""
	for _, k := range keys {
		known[k.KID] = true
		if k.State == "next" {
			activated = k.KID
		}
	}
	if _, errOut, err := in.run(t, nil, "keys", "rotate", "--force"); err != nil {
		t.Fatalf("keys rotate --force: %v\n%s", err, errOut)
	}
	rotated := time.Now()
	lag, signLag = -1, -1
	var published string
	waitFor(t, func() bool {
		if lag < 0 {
			if published = newKID(t, a, known); published != "" {
				lag = time.Since(rotated)
			}
		}
		if signLag < 0 {
			if tok, err := mintToken(a, "lag", secret); err == nil && tokenKID(t, tok) == activated {
				signLag = time.Since(rotated)
			}
		}
		return lag >= 0 && signLag >= 0
	}, "replica A to publish a new next key and sign with "+activated)
	after = in.keys(t)
	if after[0].State != "active" || after[0].KID != activated || after[1].State != "next" || after[1].KID != published {
		t.Fatalf("A published %s; stored keys %+v, want %s active and %s next", published, after[:2], activated, published)
	}
	waitFor(t, func() bool { return time.Since(rotated) > maxAge+maxAge/4 && load.count(activated) >= 3 },
		"the consumer to verify tokens signed by "+activated)
	return after, lag, signLag
}

// TestFleetConsumerDoesNotLag: three replicas on one PostgreSQL schema with
// 3072-bit keys. Replica A holds the rotation lease (it created the keys and
// has the longest lease), so after every forced rotation it is the replica
// that wants to generate the missing next key. A consumer (the jwks SDK's
// Verifier) reads A's JWKS, refreshing it at the 1 s max-age, while tokens are
// minted at B and C. Five `keygate keys rotate --force`, each run once the
// previous one has been out for longer than the max-age: the consumer must
// never fail, which needs A to publish each new next key as soon as the CLI
// stores it, not after A's own key generation.
func TestFleetConsumerDoesNotLag(t *testing.T) {
	dsn := fleetDSN(t)
	start := time.Now()
	const maxAge = time.Second
	in := newInstance(t, "")
	in.env = append(in.env, "KEYGATE_DATABASE_URL="+dsn, "KEYGATE_KEY_ENCRYPTION_KEY="+strings.Repeat("ab", 32),
		"KEYGATE_ISSUER=http://fleet.test", "KEYGATE_ROTATION_PERIOD=1h", "KEYGATE_PUBLISH_AHEAD=10m", "KEYGATE_RSA_BITS=2048",
		"KEYGATE_JWKS_MAX_AGE="+maxAge.String(), "KEYGATE_POLL_INTERVAL=200ms", "KEYGATE_LEASE_TTL=3s")
	a := in.serve(t, "KEYGATE_LEASE_TTL=10m", "KEYGATE_RSA_BITS=4096")
	b, c := in.serve(t), in.serve(t)

	secret := in.addClient(t, nil, "lag", "client_credentials")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	v, err := jwks.NewVerifier(ctx, a.url+"/jwks", jwks.Config{Issuer: "http://fleet.test",
		MinRefresh: maxAge, MaxRefresh: maxAge, UnknownKIDInterval: maxAge})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	load := &consumerLoad{byKID: map[string]int{}}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); load.run(ctx, v, []*server{b, c}, "lag", secret) }()

	const rotations = 5
	var worstLag, worstSignLag time.Duration
	keys := in.keys(t)
	for i := range rotations {
		var lag, signLag time.Duration
		keys, lag, signLag = forceRotation(t, in, a, secret, keys, maxAge, load)
		worstLag, worstSignLag = max(worstLag, lag), max(worstSignLag, signLag)
		t.Logf("rotation %d: A published the next key %s and signed with the new active key %s after the CLI returned", i, lag.Round(time.Millisecond), signLag.Round(time.Millisecond))
	}
	cancel()
	wg.Wait()
	t.Logf("%d forced rotations: %d tokens verified by the consumer at A, %d failures; A published each next key at most %s and signed with each new active key at most %s after the CLI returned; test ran %s",
		rotations, load.verified.Load(), load.failed.Load(), worstLag.Round(time.Millisecond), worstSignLag.Round(time.Millisecond), time.Since(start).Round(100*time.Millisecond))
	if n := load.failed.Load(); n != 0 {
		t.Errorf("the consumer failed %d times (first errors: %q)", n, load.errs)
	}
}
