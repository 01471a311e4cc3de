package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keygate/keygate/web"
)

// fleetDSN creates a fresh schema on the test PostgreSQL and returns a DSN
// whose search_path is that schema; the schema is dropped afterwards.
func fleetDSN(t *testing.T) string {
	t.Helper()
	base := os.Getenv("KEYGATE_TEST_POSTGRES_DSN")
	if base == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("KEYGATE_TEST_POSTGRES_DSN is not set; .ci/run sets it")
		}
		t.Skip("KEYGATE_TEST_POSTGRES_DSN not set")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect to %s: %v", base, err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	schema := "kgfleet_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Exec(context.Background(), "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
		conn.Close(context.Background())
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// addClient registers a confidential client with the given grants and scope
// "read" through the CLI, with env added to the instance's environment, and
// returns its secret.
func (in *instance) addClient(t *testing.T, env []string, name, grants string) string {
	t.Helper()
	out, errOut, err := in.run(t, env, "clients", "add", name, "--grant", grants, "--scope", "read")
	if err != nil {
		t.Fatalf("clients add: %v %s", err, errOut)
	}
	return secretOf(t, out)
}

// scheduledActivations lists the kids each process logged as activated by the
// schedule.
func scheduledActivations(logs ...string) []string {
	var kids []string
	for _, l := range logs {
		for _, line := range strings.Split(l, "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "signing key changed" && m["reason"] == "scheduled" {
				kids = append(kids, m["kid"].(string))
			}
		}
	}
	return kids
}

// countStates counts the keys that are in one of states.
func countStates(keys []web.KeyView, states ...string) int {
	n := 0
	for _, k := range keys {
		if slices.Contains(states, string(k.State)) {
			n++
		}
	}
	return n
}

func (s *server) post(t *testing.T, path string, form url.Values, user, pass string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", s.url+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	json.Unmarshal(b, &m)
	return resp.StatusCode, m
}

// TestFleetOnPostgres runs three real keygate processes on one PostgreSQL
// schema with a 4 s rotation period. Replica A creates the keys, holds the
// rotation lease, performs the first scheduled promotion and is SIGKILLed right
// after it (before it could generate the next key); B and C keep serving the
// valid set, take the lease over when it expires, and carry on rotating. Every
// rotation happens once; the replicas serve the same JWKS; a token from one
// verifies at the others; a refresh token used at two replicas at once succeeds
// once.
func TestFleetOnPostgres(t *testing.T) {
	dsn := fleetDSN(t)
	in := newInstance(t, "")
	in.env = append(in.env, "KEYGATE_DATABASE_URL="+dsn, "KEYGATE_KEY_ENCRYPTION_KEY="+strings.Repeat("ab", 32),
		"KEYGATE_ISSUER=http://fleet.test", "KEYGATE_ROTATION_PERIOD=4s", "KEYGATE_PUBLISH_AHEAD=2s",
		"KEYGATE_JWKS_MAX_AGE=1s", "KEYGATE_POLL_INTERVAL=200ms", "KEYGATE_LEASE_TTL=3s")

	a := in.serve(t, "KEYGATE_FAULT=rotation.after-promote", "KEYGATE_LEASE_TTL=6s")
	b, c := in.serve(t), in.serve(t)
	before := in.keys(t)

	// A dies inside its first scheduled rotation.
	waitKilledAtFault(t, a)
	after := in.keys(t)
	checkValid(t, after, false)
	for _, k := range before {
		if k.Published && !contains(after, k.KID) {
			t.Errorf("key %s was published before the crash and is gone after it", k.KID)
		}
	}
	// B or C takes the lease over once A's expires and restores a next key.
	waitFor(t, func() bool {
		return countStates(in.keys(t), "next") == 1
	}, "another replica to generate the next key after the lease holder died")

	// Wait for at least three scheduled rotations in all (two more periods),
	// polling the replicas' logs rather than sleeping a fixed time, and for the
	// lease holder to have generated the next key after the last of them
	// (a rotation promotes the next key first and generates its successor
	// after, so the set is briefly without one).
	waitFor(t, func() bool {
		if len(scheduledActivations(a.stderr.String(), b.stderr.String(), c.stderr.String())) < 3 {
			return false
		}
		return countStates(in.keys(t), "next") == 1
	}, "three scheduled rotations across the replicas, and a next key after them")

	// The lease holder publishes each promoted set at once and generates its
	// next key afterwards, in the background: wait for that key, then every
	// replica serves the same bytes, within the poll bound.
	waitFor(t, func() bool {
		return countStates(in.keys(t), "next") > 0
	}, "the lease holder to generate the next key after the last rotation")
	waitFor(t, func() bool {
		bb, eb := b.jwks(t)
		bc, ec := c.jwks(t)
		return eb == ec && string(bb) == string(bc)
	}, "B and C to serve the same JWKS")

	acts := scheduledActivations(a.stderr.String(), b.stderr.String(), c.stderr.String())
	assertRotatedOnce(t, in.keys(t), acts)

	secret := in.addClient(t, nil, "fleet", "client_credentials,password,refresh_token")
	assertTokensCrossReplicas(t, b, c, secret)
	for _, u := range []string{"fleetuser", "throttled"} {
		in.addUser(t, nil, "a fleet password", u)
	}
	assertSharedLoginThrottle(t, b, c, secret)
	assertRefreshOnceAcross(t, b, c, secret)
}

// waitKilledAtFault waits for a to be SIGKILLed by its fault point.
func waitKilledAtFault(t *testing.T, a *server) {
	t.Helper()
	select {
	case err := <-a.done:
		a.done <- err // for the cleanup, which waits for it
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ProcessState.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("replica A ended with %v, want SIGKILL at rotation.after-promote\n%s", err, a.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("replica A was not killed inside a rotation:\n%s", a.stderr)
	}
}

// assertRotatedOnce checks that each rotation happened once: no kid of acts
// (the scheduled activations logged) was activated twice, and their number
// matches the keys that ever signed, then that keys is a complete valid set.
func assertRotatedOnce(t *testing.T, keys []web.KeyView, acts []string) {
	t.Helper()
	seen := map[string]bool{}
	for _, k := range acts {
		if seen[k] {
			t.Errorf("kid %s was activated twice", k)
		}
		seen[k] = true
	}
	signed := countStates(keys, "active", "retired")
	if len(acts) < 3 || len(acts) != signed-1 {
		t.Errorf("%d scheduled activations logged, %d keys have signed (1 initial): %v", len(acts), signed, acts)
	}
	checkValid(t, keys, true)
}

// assertTokensCrossReplicas checks that a token from one replica is active
// at the other, both ways.
func assertTokensCrossReplicas(t *testing.T, b, c *server, secret string) {
	t.Helper()
	for _, pair := range [][2]*server{{b, c}, {c, b}} {
		code, tok := pair[0].post(t, "/token", url.Values{"grant_type": {"client_credentials"}}, "fleet", secret)
		if code != 200 {
			t.Fatalf("token: %d %v", code, tok)
		}
		code, res := pair[1].post(t, "/introspect", url.Values{"token": {tok["access_token"].(string)}}, "fleet", secret)
		if code != 200 || res["active"] != true {
			t.Errorf("a token from %s is not active at %s: %v", pair[0].url, pair[1].url, res)
		}
	}
}

// assertSharedLoginThrottle checks that login throttling is shared: failures
// at B and C add up (user_burst 5), and the correct password is then refused
// with 429 at either.
func assertSharedLoginThrottle(t *testing.T, b, c *server, secret string) {
	t.Helper()
	for i := range 5 {
		code, _ := []*server{b, c}[i%2].post(t, "/token", url.Values{"grant_type": {"password"}, "username": {"throttled"},
			"password": {"wrong password"}}, "fleet", secret)
		if code != 400 {
			t.Fatalf("wrong password %d: %d", i, code)
		}
	}
	for _, s := range []*server{b, c} {
		if code, res := s.post(t, "/token", url.Values{"grant_type": {"password"}, "username": {"throttled"},
			"password": {"a fleet password"}}, "fleet", secret); code != 429 {
			t.Errorf("after 5 failures spread over two replicas, %s answered %d %v, want 429", s.url, code, res)
		}
	}
}

// assertRefreshOnceAcross presents a refresh token at B and C at once, five
// rounds: exactly one success each time.
func assertRefreshOnceAcross(t *testing.T, b, c *server, secret string) {
	t.Helper()
	for round := range 5 {
		code, tok := b.post(t, "/token", url.Values{"grant_type": {"password"}, "username": {"fleetuser"},
			"password": {"a fleet password"}, "scope": {"read"}}, "fleet", secret)
		if code != 200 {
			t.Fatalf("password grant: %d %v", code, tok)
		}
		rt := tok["refresh_token"].(string)
		var wg sync.WaitGroup
		codes := make([]int, 2)
		for i, s := range []*server{b, c} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				codes[i], _ = s.post(t, "/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, "fleet", secret)
			}()
		}
		wg.Wait()
		if !(codes[0] == 200) != (codes[1] == 200) || (codes[0] != 200 && codes[0] != 400) || (codes[1] != 200 && codes[1] != 400) {
			t.Errorf("round %d: concurrent refresh at two replicas answered %v, want one 200 and one 400", round, codes)
		}
	}
}
