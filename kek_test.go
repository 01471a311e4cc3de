package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keygate/keygate/config"
)

func tokenWorks(t *testing.T, s *server, id, secret string) {
	t.Helper()
	code, tok := s.post(t, "/token", url.Values{"grant_type": {"client_credentials"}}, id, secret)
	if code != 200 || tok["access_token"] == nil {
		t.Fatalf("POST /token: %d %v", code, tok)
	}
}

// addTOTPUser creates the user alice with the CLI and enrols her TOTP on the
// server s, returning the secret.
func addTOTPUser(t *testing.T, in *instance, s *server, env []string) string {
	t.Helper()
	in.addUser(t, env, alicePassword, "alice")
	return enrolTOTP(t, s.url, "alice", alicePassword)
}

const alicePassword = "correct horse battery staple"

// staleWarning is the start-up (and keys list) warning about secrets sealed
// under an older key-encryption key.
const staleWarning = "sealed under an older key-encryption key: run `keygate keys rewrap`"

// wantStaleWarning fails unless log holds the stale-KEK warning exactly when
// want says so.
func wantStaleWarning(t *testing.T, what, log string, want bool) {
	t.Helper()
	if strings.Contains(log, staleWarning) != want {
		t.Errorf("%s: stale-KEK warning present = %v, want %v:\n%s", what, !want, want, log)
	}
}

// rewrapPrints runs `keys rewrap` with env and fails unless it prints each of wants.
func rewrapPrints(t *testing.T, in *instance, env string, wants ...string) {
	t.Helper()
	out, errOut, err := in.run(t, []string{env}, "keys", "rewrap")
	for _, w := range wants {
		if err != nil || !strings.Contains(out, w) {
			t.Fatalf("keys rewrap: %v, want %q in:\n%s%s", err, w, out, errOut)
		}
	}
}

// TestKEKChangeWithoutDowntime changes the key-encryption key the documented way
// with the real binary: a server on [old]; restarted on [new, old]; `keys rewrap`
// while it runs (twice: the second changes nothing); restarted on [new] alone.
// The kids, the JWKS ETag and /token survive; [old] alone no longer starts.
// A TOTP user enrolled under [old] still signs in on [new] alone, and until
// the rewrap the server and `keys list` warn that secrets are under the old
// key, naming how many.
func TestKEKChangeWithoutDowntime(t *testing.T) {
	in := newInstance(t, "")
	oldK := "KEYGATE_KEY_ENCRYPTION_KEY=" + strings.Repeat("ab", 32)
	ring := "KEYGATE_KEY_ENCRYPTION_KEY=" + strings.Repeat("cd", 32) + "," + strings.Repeat("ab", 32)
	newK := "KEYGATE_KEY_ENCRYPTION_KEY=" + strings.Repeat("cd", 32)

	s := in.serve(t, oldK)
	_, etag := s.jwks(t)
	kid := s.kid
	secret := in.addClient(t, []string{oldK}, "svc", "client_credentials")
	tokenWorks(t, s, "svc", secret)
	totpSecret := addTOTPUser(t, in, s, []string{oldK})
	before := in.keys(t)
	wantStaleWarning(t, "serve on [old]", s.stderr.String(), false)
	s.stop(t)

	s = in.serve(t, ring)
	if s.kid != kid {
		t.Errorf("signing with %s on [new, old], was %s", s.kid, kid)
	}
	wantStaleWarning(t, "serve on [new, old]", s.stderr.String(), true)
	if !strings.Contains(s.stderr.String(), `"signing_keys":2,"totp_secrets":1`) {
		t.Errorf("the start-up warning does not name 2 keys and 1 TOTP secret:\n%s", s.stderr)
	}
	_, errOut, _ := in.run(t, []string{ring}, "keys", "list")
	wantStaleWarning(t, "keys list before the rewrap", errOut, true)
	rewrapPrints(t, in, ring, "rewrapped: 2 keys re-sealed", "rewrapped: 1 TOTP secrets re-sealed")
	rewrapPrints(t, in, ring, "rewrapped: 0 keys re-sealed", "2 already were", "rewrapped: 0 TOTP secrets re-sealed", "1 already were")
	_, errOut, _ = in.run(t, []string{ring}, "keys", "list")
	wantStaleWarning(t, "keys list after the rewrap", errOut, false)
	tokenWorks(t, s, "svc", secret)
	if _, e := s.jwks(t); e != etag {
		t.Errorf("JWKS ETag %s after rewrap, was %s", e, etag)
	}
	s.stop(t)

	if _, errOut, err := in.run(t, []string{oldK}, "serve"); err == nil || !strings.Contains(errOut, "does not open the stored signing keys") {
		t.Errorf("the old KEK alone after rewrap: %v\n%s", err, errOut)
	}
	s = in.serve(t, newK)
	defer s.stop(t)
	if s.kid != kid {
		t.Errorf("signing with %s on [new], was %s", s.kid, kid)
	}
	if _, e := s.jwks(t); e != etag {
		t.Errorf("JWKS ETag %s on [new], was %s", e, etag)
	}
	tokenWorks(t, s, "svc", secret)
	loginWithTOTP(t, s.url, "alice", alicePassword, totpSecret)
	wantStaleWarning(t, "serve on [new] after the rewrap", s.stderr.String(), false)
	after := in.keys(t)
	b1, _ := json.Marshal(before)
	b2, _ := json.Marshal(after)
	if !bytes.Equal(b1, b2) {
		t.Errorf("keys changed:\n%s\n%s", b1, b2)
	}
}

// TestMissingDevKEKWithKeysRefused: the development key file is gone but the
// database holds keys sealed under it: every command that needs it refuses,
// naming the path, and no new key file is written.
func TestMissingDevKEKWithKeysRefused(t *testing.T) {
	in := newInitialized(t, "")
	if _, errOut, err := in.run(t, nil, "keys", "rotate"); err != nil {
		t.Fatalf("create keys: %v\n%s", err, errOut)
	}
	kek := filepath.Join(in.dir, "data", "keygate.kek")
	saved, err := os.ReadFile(kek)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(kek); err != nil {
		t.Fatal(err)
	}
	before := in.keys(t)
	for _, args := range [][]string{{"serve"}, {"keys", "rotate", "--force"}, {"keys", "rewrap"}} {
		_, errOut, err := in.run(t, nil, args...)
		if err == nil || !strings.Contains(errOut, kek) || !strings.Contains(errOut, "is missing") {
			t.Errorf("%v without the key file: %v\n%s", args, err, errOut)
		}
		if _, err := os.Stat(kek); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%v created %s: %v", args, kek, err)
		}
	}
	b1, _ := json.Marshal(before)
	b2, _ := json.Marshal(in.keys(t))
	if !bytes.Equal(b1, b2) {
		t.Errorf("stored keys changed:\n%s\n%s", b1, b2)
	}
	if err := os.WriteFile(kek, saved, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errOut, err := in.run(t, nil, "keys", "rotate", "--force"); err != nil {
		t.Errorf("the restored key file no longer works: %v\n%s", err, errOut)
	}
}

// TestHTTPSIssuerNeedsAConfiguredKEK: an https issuer does not start on the
// development key file (before anything is created) unless
// keys.allow_dev_kek_with_https says so; a configured key file (here, the former
// development file) is enough.
func TestHTTPSIssuerNeedsAConfiguredKEK(t *testing.T) {
	in := newInstance(t, "")
	in.env = append(in.env, "KEYGATE_ISSUER=https://id.example.com")
	_, errOut, err := in.run(t, nil, "serve")
	if err == nil || !strings.Contains(errOut, "KEYGATE_KEY_ENCRYPTION_KEY") || !strings.Contains(errOut, "keys.allow_dev_kek_with_https: true") {
		t.Fatalf("https issuer on the development KEK: %v\n%s", err, errOut)
	}
	if _, err := os.Stat(filepath.Join(in.dir, "data")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the refused start created the data directory: %v", err)
	}

	s := in.serve(t, "KEYGATE_ALLOW_DEV_KEK_WITH_HTTPS=true")
	kid := s.kid
	s.stop(t)

	s = in.serve(t, "KEYGATE_KEY_ENCRYPTION_KEY_FILE="+filepath.Join(in.dir, "data", "keygate.kek"))
	if s.kid != kid {
		t.Errorf("signing with %s, was %s", s.kid, kid)
	}
	s.stop(t)
}

// TestHTTPSIssuerDevKEKConfig: the rule as configuration validation sees it.
func TestHTTPSIssuerDevKEKConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	cases := []struct {
		file string
		env  map[string]string
		ok   bool
	}{
		{file: "issuer: https://id.example.com\n"},
		{file: "issuer: https://id.example.com\nkeys:\n  allow_dev_kek_with_https: true\n", ok: true},
		{file: "issuer: https://id.example.com\n", env: map[string]string{"KEYGATE_ALLOW_DEV_KEK_WITH_HTTPS": "true"}, ok: true},
		{file: "issuer: https://id.example.com\nkeys:\n  encryption_key_file: /etc/keygate/kek\n", ok: true},
		{file: "issuer: https://id.example.com\n", env: map[string]string{"KEYGATE_KEY_ENCRYPTION_KEY": "x"}, ok: true},
		{file: "issuer: http://localhost:8080\n", ok: true},
		{file: "issuer: https://id.example.com\nstorage:\n  dsn: postgres://db/keygate\n", ok: true}, // no development file there: the KEK is required anyway
	}
	for _, c := range cases {
		if err := os.WriteFile(cfg, []byte(c.file), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := config.Load(cfg, func(k string) string { return c.env[k] })
		if (err == nil) != c.ok {
			t.Errorf("%q %v: err = %v, want ok=%v", c.file, c.env, err, c.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "keys.allow_dev_kek_with_https") {
			t.Errorf("%q: the message does not say what to set: %v", c.file, err)
		}
	}
}

// TestKEKChangeRollsThroughReplicas follows docs/keys.md on PostgreSQL: two
// replicas on [old] are restarted one at a time on [new, old], `keys rewrap` runs
// while both serve, then each is restarted on [new] alone. At every step both
// serve the same JWKS and sign with the same key, and a token from one verifies
// at the other.
func TestKEKChangeRollsThroughReplicas(t *testing.T) {
	dsn := fleetDSN(t)
	in := newInstance(t, "")
	in.env = append(in.env, "KEYGATE_DATABASE_URL="+dsn, "KEYGATE_ISSUER=http://fleet.test", "KEYGATE_POLL_INTERVAL=200ms")
	oldK := "KEYGATE_KEY_ENCRYPTION_KEY=" + strings.Repeat("ab", 32)
	ring := "KEYGATE_KEY_ENCRYPTION_KEY=" + strings.Repeat("cd", 32) + "," + strings.Repeat("ab", 32)
	newK := "KEYGATE_KEY_ENCRYPTION_KEY=" + strings.Repeat("cd", 32)

	a := in.serve(t, oldK)
	b := in.serve(t, oldK)
	_, etag := a.jwks(t)
	kid := a.kid
	secret := in.addClient(t, []string{oldK}, "svc", "client_credentials")
	check := func(step string, x, y *server) {
		t.Helper()
		for _, s := range []*server{x, y} {
			if _, e := s.jwks(t); e != etag {
				t.Errorf("%s: %s serves ETag %s, want %s", step, s.url, e, etag)
			}
		}
		code, tok := x.post(t, "/token", url.Values{"grant_type": {"client_credentials"}}, "svc", secret)
		if code != 200 {
			t.Fatalf("%s: token: %d %v", step, code, tok)
		}
		code, res := y.post(t, "/introspect", url.Values{"token": {tok["access_token"].(string)}}, "svc", secret)
		if code != 200 || res["active"] != true {
			t.Errorf("%s: a token from one replica is not active at the other: %v", step, res)
		}
	}
	check("[old] [old]", a, b)
	totpSecret := addTOTPUser(t, in, a, []string{oldK})

	restart := func(s *server, env string) *server {
		t.Helper()
		s.stop(t)
		n := in.serve(t, env)
		if n.kid != kid {
			t.Errorf("restarted replica signs with %s, want %s", n.kid, kid)
		}
		return n
	}
	a = restart(a, ring)
	check("[new,old] [old]", a, b)
	b = restart(b, ring)
	check("[new,old] [new,old]", b, a)

	rewrapPrints(t, in, ring, "rewrapped: 2 keys re-sealed", "rewrapped: 1 TOTP secrets re-sealed")
	check("after rewrap", a, b)

	a = restart(a, newK)
	check("[new] [new,old]", a, b)
	b = restart(b, newK)
	check("[new] [new]", b, a)
	loginWithTOTP(t, a.url, "alice", alicePassword, totpSecret)
	a.stop(t)
	b.stop(t)
}
