package idp_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/keygate/keygate/idp"
)

// validateClient validates c under the limits the client validation tests
// share: access tokens for 15 minutes by default, an hour at most.
func validateClient(c *idp.Client) error {
	return idp.ValidateClient(c, idp.ClientLimits{AccessTTL: 15 * time.Minute, MaxAccessTTL: time.Hour})
}

// isFieldError reports whether err is an *idp.ValidationError on field whose
// problem contains want.
func isFieldError(err error, field, want string) bool {
	var ve *idp.ValidationError
	return errors.As(err, &ve) && ve.Field == field && strings.Contains(ve.Problem, want)
}

// TestValidateClient is the one client validation's table: the
// configuration file, idp.New and RegisterClient all apply it.
func TestValidateClient(t *testing.T) {
	pub, err := jwk.FromRaw(fuzzClientKey().Public())
	if err != nil {
		t.Fatal(err)
	}
	keys := jwk.NewSet()
	keys.AddKey(pub)
	secret := idp.HashSecret("kgs_x")
	cc := []string{idp.GrantClientCredentials}
	cases := []struct {
		name   string
		client idp.Client
		field  string // "" for valid
		want   string // in the problem
	}{
		{name: "confidential with a secret", client: idp.Client{ID: "svc", SecretHash: secret, GrantTypes: cc}},
		{name: "confidential with keys only", client: idp.Client{ID: "svc", Keys: keys, GrantTypes: []string{idp.GrantJWTBearer}}},
		{name: "confidential with a jwks_uri", client: idp.Client{ID: "svc", JWKSURI: "https://svc.example/jwks", GrantTypes: cc}},
		{name: "public code client", client: idp.Client{ID: "spa", Public: true, GrantTypes: []string{idp.GrantAuthorizationCode},
			RedirectURIs: []string{"https://spa.example/cb", "com.example.app:/cb"}}},
		{name: "id that needs form encoding", client: idp.Client{ID: "app:1+é/x", SecretHash: secret, GrantTypes: cc}},
		{name: "seed 000: 30 s tokens valid from +10 s", client: idp.Client{ID: "s", Keys: keys, GrantTypes: cc,
			AccessTTL: 30 * time.Second, NotBeforeDelay: 10 * time.Second}},
		{name: "not_before_delay just under the default lifetime", client: idp.Client{ID: "s", SecretHash: secret, GrantTypes: cc,
			NotBeforeDelay: 15*time.Minute - time.Second}},

		{name: "tokens never valid: 1h delay, 30s lifetime", client: idp.Client{ID: "s", SecretHash: secret, GrantTypes: cc,
			AccessTTL: 30 * time.Second, NotBeforeDelay: time.Hour}, field: "not_before_delay", want: "(access_ttl 30s)"},
		{name: "delay equal to the lifetime", client: idp.Client{ID: "s", SecretHash: secret, GrantTypes: cc,
			AccessTTL: time.Minute, NotBeforeDelay: time.Minute}, field: "not_before_delay", want: "shorter than the token lifetime"},
		{name: "delay equal to the default lifetime", client: idp.Client{ID: "s", SecretHash: secret, GrantTypes: cc,
			NotBeforeDelay: 15 * time.Minute}, field: "not_before_delay", want: "(tokens.access_ttl 15m0s)"},
		{name: "negative delay", client: idp.Client{ID: "s", SecretHash: secret, GrantTypes: cc, NotBeforeDelay: -time.Second},
			field: "not_before_delay"},
		{name: "lifetime over the maximum", client: idp.Client{ID: "s", SecretHash: secret, GrantTypes: cc, AccessTTL: 2 * time.Hour},
			field: "access_ttl", want: "tokens.max_access_ttl (1h0m0s)"},
		{name: "negative lifetime", client: idp.Client{ID: "s", SecretHash: secret, GrantTypes: cc, AccessTTL: -time.Second},
			field: "access_ttl"},
		{name: "empty id", client: idp.Client{SecretHash: secret, GrantTypes: cc}, field: "id"},
		{name: "id with a space", client: idp.Client{ID: "my app", SecretHash: secret, GrantTypes: cc}, field: "id"},
		{name: "id with a control character", client: idp.Client{ID: "app\x00", SecretHash: secret, GrantTypes: cc}, field: "id"},
		{name: "id shaped like a user id", client: idp.Client{ID: "6f1c1a34-9b2e-4c59-9a4f-0d6b0f1e2a3b", SecretHash: secret, GrantTypes: cc},
			field: "id", want: "UUID"},
		{name: "no grant", client: idp.Client{ID: "s", SecretHash: secret}, field: "grant_types", want: "at least one"},
		{name: "unknown grant", client: idp.Client{ID: "s", SecretHash: secret, GrantTypes: []string{"implicit"}},
			field: "grant_types", want: `"implicit"`},
		{name: "public with a secret", client: idp.Client{ID: "p", Public: true, SecretHash: secret, GrantTypes: cc},
			field: "public", want: "no secret and no keys"},
		{name: "public with keys", client: idp.Client{ID: "p", Public: true, Keys: keys, GrantTypes: cc}, field: "public"},
		{name: "confidential without credentials", client: idp.Client{ID: "c", GrantTypes: cc},
			field: "public", want: "needs a secret or public keys"},
		{name: "jwks_uri not http", client: idp.Client{ID: "c", JWKSURI: "file:///etc/keys", GrantTypes: cc}, field: "jwks_uri"},
		{name: "code flow without redirect URI", client: idp.Client{ID: "c", SecretHash: secret, GrantTypes: []string{idp.GrantAuthorizationCode}},
			field: "redirect_uris", want: "at least one"},
		{name: "relative redirect URI", client: idp.Client{ID: "c", SecretHash: secret, GrantTypes: cc, RedirectURIs: []string{"/cb"}},
			field: "redirect_uris", want: "absolute"},
		{name: "redirect URI with a fragment", client: idp.Client{ID: "c", SecretHash: secret, GrantTypes: cc,
			RedirectURIs: []string{"https://c.example/cb#x"}}, field: "redirect_uris", want: "fragment"},
		{name: "private-use scheme for a confidential client", client: idp.Client{ID: "c", SecretHash: secret, GrantTypes: cc,
			RedirectURIs: []string{"com.example.app:/cb"}}, field: "redirect_uris", want: "public clients"},
		{name: "scheme that is not private-use", client: idp.Client{ID: "p", Public: true, GrantTypes: cc,
			RedirectURIs: []string{"javascript:alert(1)"}}, field: "redirect_uris", want: "private-use"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := validateClient(&c.client)
			if c.field == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !isFieldError(err, c.field, c.want) {
				t.Fatalf("error %v, want a ValidationError on %s containing %q", err, c.field, c.want)
			}
		})
	}
}

// TestClientValidationIsShared: the client the configuration file and
// idp.New used to accept while RegisterClient refused it (tokens that
// expire before they become valid) is now refused by all three.
func TestClientValidationIsShared(t *testing.T) {
	ctx := context.Background()
	bad := idp.Client{ID: "never", SecretHash: idp.HashSecret("kgs_x"), GrantTypes: []string{idp.GrantClientCredentials},
		AccessTTL: 30 * time.Second, NotBeforeDelay: time.Hour}
	cfg, _ := grantConfig(t)
	cfg.Clients = append(cfg.Clients, bad)
	if _, err := idp.New(cfg); err == nil || !strings.Contains(err.Error(), `client "never": not_before_delay:`) {
		t.Errorf("idp.New with the static client: %v", err)
	}
	cfg.Clients = nil
	p, err := idp.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := bad
	if _, err := p.Directory().RegisterClient(ctx, &c, false); err == nil || !strings.Contains(err.Error(), "not_before_delay:") {
		t.Errorf("RegisterClient: %v", err)
	}
	if _, err := p.Directory().Client(ctx, "never"); err == nil {
		t.Error("the refused client was stored")
	}
	c = bad
	c.NotBeforeDelay = 10 * time.Second
	if secret, err := p.Directory().RegisterClient(ctx, &c, true); err != nil || !strings.HasPrefix(secret, "kgs_") {
		t.Errorf("RegisterClient of the consistent client: %q, %v", secret, err)
	}
}
