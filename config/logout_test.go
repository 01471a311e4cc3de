package config_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/keygate/keygate/config"
)

// TestStaticClientPostLogoutRedirectURIs: post_logout_redirect_uris reach
// the client idp serves, and are validated like redirect_uris.
func TestStaticClientPostLogoutRedirectURIs(t *testing.T) {
	const head = "clients:\n  - id: web\n    public: true\n    grant_types: [authorization_code]\n    redirect_uris: [https://app.example/cb]\n"
	cfg, err := config.Load(write(t, head+"    post_logout_redirect_uris: [https://app.example/bye]\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	c, err := cfg.Clients[0].IDPClient()
	if err != nil || !slices.Equal(c.PostLogoutRedirectURIs, []string{"https://app.example/bye"}) {
		t.Fatalf("IDPClient: %+v, %v", c.PostLogoutRedirectURIs, err)
	}
	_, err = config.Load(write(t, head+"    post_logout_redirect_uris: [/bye]\n"), env(nil))
	if err == nil || !strings.Contains(err.Error(), `("web"): post_logout_redirect_uris:`) {
		t.Errorf("a relative post_logout_redirect_uri: %v", err)
	}
}
