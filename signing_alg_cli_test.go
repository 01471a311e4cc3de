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

// TestCLIUpdateSigningAlg: `clients update --signing-alg` changes a stored
// client's algorithm, refusing with a clear message one without keys or not
// supported; `clients list` shows SIGNING_ALG (RS256 marked as the default
// when the client has none) and THIRD_PARTY.
func TestCLIUpdateSigningAlg(t *testing.T) {
	in := newInitialized(t, "keys:\n  algorithms: [RS256, ES256]\n")
	in.must(t, "clients", "add", "fast", "--grant", "client_credentials", "--signing-alg", "ES256")
	in.must(t, "clients", "add", "plain", "--grant", "client_credentials", "--third-party", "--grant", "authorization_code",
		"--redirect-uri", "https://app.example/cb")
	steps := []struct {
		args    []string // clients update …; nil: none
		refused string   // in the error when the update is refused
		want    map[string]string
	}{
		{nil, "", map[string]string{"fast": "ES256", "plain": "RS256 (default)"}},
		{[]string{"fast", "--signing-alg", "EdDSA"}, "EdDSA is not in keys.algorithms (RS256, ES256)", map[string]string{"fast": "ES256"}},
		{[]string{"fast", "--signing-alg", "HS256"}, `"HS256" is not supported`, map[string]string{"fast": "ES256"}},
		{[]string{"fast", "--signing-alg", ""}, "", map[string]string{"fast": "RS256 (default)"}},
		{[]string{"plain", "--signing-alg", "ES256"}, "", map[string]string{"plain": "ES256", "fast": "RS256 (default)"}},
	}
	for _, st := range steps {
		if st.args != nil {
			_, errOut, err := in.run(t, nil, append([]string{"clients", "update"}, st.args...)...)
			if st.refused == "" && err != nil || st.refused != "" && (err == nil || !strings.Contains(errOut, st.refused)) {
				t.Errorf("clients update %q: %v %s (want refused: %q)", st.args, err, errOut, st.refused)
			}
		}
		got := in.listColumn(t, "SIGNING_ALG")
		for id, w := range st.want {
			if got[id] != w {
				t.Errorf("after %q: %s SIGNING_ALG %q, want %q", st.args, id, got[id], w)
			}
		}
	}
	if got := in.listColumn(t, "THIRD_PARTY"); got["plain"] != "true" || got["fast"] != "false" {
		t.Errorf("THIRD_PARTY column: %v", got)
	}
}

// listColumn runs `clients list` and returns column name's value for each
// client id (the values may contain one space, as "RS256 (default)"; the
// next column starts two spaces after the widest value).
func (in *instance) listColumn(t *testing.T, name string) map[string]string {
	t.Helper()
	out, _, err := in.run(t, nil, "clients", "list")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	col := strings.Index(lines[0], name)
	if col < 0 {
		t.Fatalf("clients list has no %s column:\n%s", name, out)
	}
	got := map[string]string{}
	for _, l := range lines[1:] {
		v, _, _ := strings.Cut(strings.TrimLeft(l[col:], " "), "  ")
		got[strings.Fields(l)[0]] = v
	}
	return got
}
