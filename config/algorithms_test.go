package config_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/keygate/keygate/config"
)

// TestSigningAlgorithms: keys.algorithms adds ES256 and EdDSA beside RS256,
// and a client's signing_alg must be one of them.
func TestSigningAlgorithms(t *testing.T) {
	const client = "clients:\n  - id: svc\n    grant_types: [client_credentials]\n    secret_sha256: " +
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n"
	c, err := config.Load(write(t, "keys:\n  algorithms: [RS256, ES256, EdDSA]\n"+client+"    signing_alg: ES256\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.SigningAlgorithms(); !slices.Equal(got, []string{"RS256", "ES256", "EdDSA"}) {
		t.Errorf("SigningAlgorithms = %v", got)
	}
	if ic, err := c.Clients[0].IDPClient(); err != nil || ic.SigningAlg != "ES256" {
		t.Errorf("client signing_alg: %q, %v", ic.SigningAlg, err)
	}
	if c, err := config.Load(write(t, ""), env(nil)); err != nil || !slices.Equal(c.SigningAlgorithms(), []string{"RS256"}) {
		t.Errorf("default: %v, %v", c.SigningAlgorithms(), err)
	}
	for file, want := range map[string]string{
		"keys:\n  algorithms: [ES256]\n":               "keys.algorithms: must include RS256",
		"keys:\n  algorithms: [RS256, ES384]\n":        `keys.algorithms: "ES384" is not supported`,
		"keys:\n  algorithms: [RS256, ES256, ES256]\n": `keys.algorithms: "ES256" is listed twice`,
		client + "    signing_alg: EdDSA\n":            `("svc"): signing_alg: EdDSA is not in keys.algorithms`,
		client + "    signing_alg: HS256\n":            `("svc"): signing_alg: "HS256" is not supported`,
	} {
		_, err := config.Load(write(t, file), env(nil))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", file, err, want)
		}
	}
}
