package idp_test

import (
	"slices"
	"testing"

	"github.com/keygate/keygate/idp"
)

// TestAllowedOriginsValidation: an allowed origin is exactly
// scheme://host[:port] as a browser sends it, https or loopback http, never
// a wildcard.
func TestAllowedOriginsValidation(t *testing.T) {
	for _, o := range []string{"https://spa.example", "https://spa.example:8443", "http://localhost:5173", "http://127.0.0.1:8080",
		"http://[::1]:3000", "http://app.localhost", "https://xn--bcher-kva.example"} {
		c := idp.Client{ID: "spa", Public: true, GrantTypes: []string{idp.GrantRefreshToken}, AllowedOrigins: []string{o}}
		if err := validateClient(&c); err != nil {
			t.Errorf("%q refused: %v", o, err)
		}
	}
	for o, want := range map[string]string{
		"*":                             "wildcard",
		"https://*.example":             "wildcard",
		"https://spa.example/":          `"https://spa.example"`,
		"https://spa.example/app":       "without a path",
		"https://spa.example?x=1":       "without a path",
		"https://spa.example#f":         "without a path",
		"https://SPA.example":           `"https://spa.example"`,
		"https://spa.example:443":       `"https://spa.example"`,
		"http://spa.example":            "not an https origin",
		"http://10.0.0.1":               "not an https origin",
		"ftp://spa.example":             "not an https origin",
		"spa.example":                   "not an https origin",
		"https://user@spa.example":      "not an https origin",
		"null":                          "not an https origin",
		"":                              "not an https origin",
		"https://spa.example:99999/x y": "not an https origin",
	} {
		c := idp.Client{ID: "spa", Public: true, GrantTypes: []string{idp.GrantRefreshToken}, AllowedOrigins: []string{o}}
		if err := validateClient(&c); !isFieldError(err, "allowed_origins", want) {
			t.Errorf("%q: got %v, want an allowed_origins error mentioning %s", o, err, want)
		}
	}
}

// TestClientOrigins: explicit origins win; without them, the origins of the
// https (and loopback http) redirect URIs.
func TestClientOrigins(t *testing.T) {
	derived := idp.Client{RedirectURIs: []string{"https://app.example/cb", "https://app.example/cb2?x=1", "https://APP.example:443/other",
		"http://localhost:5173/cb", "http://insecure.example/cb", "com.example.app:/cb", "https://app.example:8443/cb"}}
	if got, want := derived.Origins(), []string{"http://localhost:5173", "https://app.example", "https://app.example:8443"}; !slices.Equal(got, want) {
		t.Errorf("derived origins %q, want %q", got, want)
	}
	if !derived.AllowsOrigin("https://app.example") || derived.AllowsOrigin("http://insecure.example") || derived.AllowsOrigin("") {
		t.Error("AllowsOrigin disagrees with Origins")
	}
	explicit := derived
	explicit.AllowedOrigins = []string{"https://spa.example", "https://spa.example"}
	if got, want := explicit.Origins(), []string{"https://spa.example"}; !slices.Equal(got, want) {
		t.Errorf("explicit origins %q, want %q", got, want)
	}
	if explicit.AllowsOrigin("https://app.example") {
		t.Error("explicit allowed_origins must replace the redirect URIs' origins")
	}
}
