package config_test

import (
	"strings"
	"testing"

	"github.com/keygate/keygate/config"
)

// TestThirdPartyClient: third_party: true in config.yaml makes a static
// client third party; the default is first party.
func TestThirdPartyClient(t *testing.T) {
	entry := func(id, extra string) string {
		return "  - id: " + id + "\n    grant_types: [authorization_code]\n    secret_sha256: " + strings.Repeat("ab", 32) +
			"\n    redirect_uris: [https://" + id + ".example/cb]\n" + extra
	}
	c, err := config.Load(write(t, "clients:\n"+entry("photos", "    third_party: true\n")+entry("ours", "")), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{true, false} {
		ic, err := c.Clients[i].IDPClient()
		if err != nil || ic.ThirdParty != want {
			t.Errorf("client %s: third party %v (%v), want %v", c.Clients[i].ID, ic.ThirdParty, err, want)
		}
	}
}
