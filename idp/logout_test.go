package idp_test

import (
	"testing"

	"github.com/keygate/keygate/idp"
)

// TestPostLogoutRedirectURIsValidated: post_logout_redirect_uris are checked
// like redirect_uris, and are never required.
func TestPostLogoutRedirectURIsValidated(t *testing.T) {
	client := func(uris ...string) *idp.Client {
		return &idp.Client{ID: "web", Public: true, GrantTypes: []string{idp.GrantAuthorizationCode},
			RedirectURIs: []string{"https://app.example/cb"}, PostLogoutRedirectURIs: uris}
	}
	for _, ok := range [][]string{nil, {"https://app.example/bye", "https://app.example/bye?x=1", "com.example.app:/logout"}} {
		if err := validateClient(client(ok...)); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for uri, want := range map[string]string{"/bye": "absolute", "https://app.example/bye#x": "fragment",
		"https:///bye": "no host", "https://app.example/b ye": "whitespace"} {
		if err := validateClient(client("https://app.example/bye", uri)); !isFieldError(err, "post_logout_redirect_uris", want) {
			t.Errorf("%q: %v, want a ValidationError on post_logout_redirect_uris containing %q", uri, err, want)
		}
	}
}
