package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/keygate/keygate/store/sqlite"
)

// TestCLISigningAlg: with keys.algorithms listing ES256, `keygate init` makes
// an ES256 key set beside the RSA one, `clients add --signing-alg ES256`
// stores the choice, and an algorithm without keys is refused.
func TestCLISigningAlg(t *testing.T) {
	in := newInitialized(t, "keys:\n  algorithms: [RS256, ES256]\n")
	in.must(t, "clients", "add", "fast", "--grant", "client_credentials", "--signing-alg", "ES256")
	s, err := sqlite.Open(t.Context(), filepath.Join(in.dir, "data", "keygate.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := s.GetClient(t.Context(), "fast")
	if err != nil || c.SigningAlg != "ES256" {
		t.Fatalf("stored signing_alg %q, %v", c.SigningAlg, err)
	}
	keys, err := s.ListKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	n := map[string]int{}
	for _, k := range keys {
		n[k.Algorithm+"/"+string(k.State)]++
	}
	if n["RS256/active"] != 1 || n["ES256/active"] != 1 || n["ES256/next"] != 1 {
		t.Errorf("keys after init: %v", n)
	}
	if _, errOut, err := in.run(t, nil, "clients", "add", "ed", "--grant", "client_credentials", "--signing-alg", "EdDSA"); err == nil ||
		!strings.Contains(errOut, "signing_alg") {
		t.Errorf("--signing-alg EdDSA without EdDSA keys: %v %s", err, errOut)
	}
}
