package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/idp"
)

// adminCall sends a JSON body (or none) to the admin API with token.
func (e *atkEnv) adminCall(t *testing.T, token, method, path, body string) atkReply {
	t.Helper()
	hdr := map[string]string{"Authorization": "Bearer " + token}
	var r io.Reader
	if body != "" {
		hdr["Content-Type"] = "application/json"
		r = strings.NewReader(body)
	}
	return e.do(t, method, path, hdr, r)
}

func wantAdminStatus(t *testing.T, what string, r atkReply, status int) atkReply {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s: %d %s, want %d", what, r.status, r.body, status)
	}
	if status >= 400 {
		if msg, _ := r.object(t)["error"].(string); msg == "" {
			t.Errorf("%s: body %s, want {\"error\": ...}", what, r.body)
		}
	}
	return r
}

func (e *atkEnv) clientCredentials(t *testing.T, id, secret string) atkReply {
	t.Helper()
	return e.post(t, "/token", url.Values{"grant_type": {"client_credentials"}}, id, secret)
}

// TestAdminManageClients: list and show clients with effective values and
// no secret hashes, PATCH re-validated (400), static clients refused (409),
// unknown ones 404, and rotate-secret with a grace period.
func TestAdminManageClients(t *testing.T) {
	e := newAtkEnv(t)
	admin := e.password(t, "root", atkRootPW, "admin").AccessToken
	_, err := e.IDP.Directory().RegisterClient(context.Background(), &idp.Client{ID: "billing", GrantTypes: []string{"client_credentials"},
		Scopes: []string{"read", "write"}}, true)
	if err != nil {
		t.Fatal(err)
	}

	r := wantAdminStatus(t, "GET /admin/clients", e.adminCall(t, admin, "GET", "/admin/clients", ""), 200)
	if strings.Contains(strings.ToLower(string(r.body)), "secret_hash") || strings.Contains(string(r.body), `"SecretHash"`) {
		t.Errorf("client list shows secret hashes: %s", r.body)
	}
	var list struct{ Clients []map[string]any }
	if err := json.Unmarshal(r.body, &list); err != nil || len(list.Clients) != 4 {
		t.Fatalf("client list %s: %v, want the 3 static clients and billing", r.body, err)
	}
	r = wantAdminStatus(t, "GET /admin/clients/billing", e.adminCall(t, admin, "GET", "/admin/clients/billing", ""), 200)
	got := r.object(t)
	if got["source"] != "store" || got["has_secret"] != true || got["access_ttl_default"] != true || got["access_ttl"] == "0s" ||
		got["audience_default"] != true {
		t.Errorf("billing: %s, want the effective default lifetime and audience", r.body)
	}
	wantAdminStatus(t, "GET unknown client", e.adminCall(t, admin, "GET", "/admin/clients/nobody", ""), 404)

	r = wantAdminStatus(t, "PATCH billing", e.adminCall(t, admin, "PATCH", "/admin/clients/billing", `{"scopes":["read"],"access_ttl":"5m","name":"Billing"}`), 200)
	if got := r.object(t); got["access_ttl"] != "5m0s" || got["access_ttl_default"] != false || got["name"] != "Billing" ||
		len(got["scopes"].([]any)) != 1 || len(got["grant_types"].([]any)) != 1 {
		t.Errorf("after PATCH: %s", r.body)
	}
	for _, c := range []struct{ what, path, body string }{
		{"code flow without redirect URI", "/admin/clients/billing", `{"grant_types":["authorization_code"]}`},
		{"bad duration", "/admin/clients/billing", `{"access_ttl":"soon"}`},
		{"unknown field", "/admin/clients/billing", `{"secret_hash":"00"}`},
		{"not JSON", "/admin/clients/billing", `scopes=read`},
		{"negative grace", "/admin/clients/billing/rotate-secret", `{"grace":"-1h"}`},
	} {
		method := "PATCH"
		if strings.HasSuffix(c.path, "rotate-secret") {
			method = "POST"
		}
		wantAdminStatus(t, c.what, e.adminCall(t, admin, method, c.path, c.body), 400)
	}
	r = wantAdminStatus(t, "PATCH a static client", e.adminCall(t, admin, "PATCH", "/admin/clients/app", `{"name":"x"}`), 409)
	if !strings.Contains(string(r.body), "defined in config.yaml; edit it there") {
		t.Errorf("static client refusal: %s", r.body)
	}
	wantAdminStatus(t, "rotate a static client", e.adminCall(t, admin, "POST", "/admin/clients/app/rotate-secret", ""), 409)
	wantAdminStatus(t, "PATCH unknown client", e.adminCall(t, admin, "PATCH", "/admin/clients/nobody", `{"name":"x"}`), 404)
}

// TestAdminManageUsers: list users without password hashes, PATCH them
// (400, 404, 409), and disabling refuses logins and the user's own admin
// token at once.
func TestAdminManageUsers(t *testing.T) {
	e := newAtkEnv(t)
	ctx := context.Background()
	admin := e.password(t, "root", atkRootPW, "admin").AccessToken
	if _, err := e.IDP.Directory().CreateUser(ctx, idp.NewUser{Username: "bob", Password: atkAlicePW, Email: "bob@example.com"}); err != nil {
		t.Fatal(err)
	}
	aliceRefresh := e.password(t, "alice", atkAlicePW, "openid").RefreshToken

	r := wantAdminStatus(t, "GET /admin/users", e.adminCall(t, admin, "GET", "/admin/users", ""), 200)
	if strings.Contains(string(r.body), "argon2") || strings.Contains(strings.ToLower(string(r.body)), "password") {
		t.Errorf("user list shows password hashes: %s", r.body)
	}
	var list struct{ Users []map[string]any }
	if err := json.Unmarshal(r.body, &list); err != nil || len(list.Users) != 3 {
		t.Fatalf("user list %s: %v", r.body, err)
	}

	r = wantAdminStatus(t, "disable alice", e.adminCall(t, admin, "PATCH", "/admin/users/alice", `{"disabled":true,"name":"Alice L."}`), 200)
	if got := r.object(t); got["disabled"] != true || got["disabled_at"] == nil || got["name"] != "Alice L." || got["email"] != "alice@example.com" {
		t.Errorf("after disabling: %s", r.body)
	}
	if r := e.post(t, "/token", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {atkAlicePW}}, "app", atkAppSecret); r.status != 400 {
		t.Errorf("password grant of a disabled user: %d %s, want 400", r.status, r.body)
	}
	if r := e.post(t, "/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {aliceRefresh}}, "app", atkAppSecret); r.status != 400 {
		t.Errorf("refresh of a disabled user: %d %s, want 400", r.status, r.body)
	}
	wantAdminStatus(t, "enable alice (by email)", e.adminCall(t, admin, "PATCH", "/admin/users/alice@example.com", `{"disabled":false}`), 200)
	e.password(t, "alice", atkAlicePW, "openid")

	wantAdminStatus(t, "taken email", e.adminCall(t, admin, "PATCH", "/admin/users/alice", `{"email":"BOB@example.com"}`), 409)
	wantAdminStatus(t, "bad email", e.adminCall(t, admin, "PATCH", "/admin/users/alice", `{"email":"nope"}`), 400)
	wantAdminStatus(t, "bad type", e.adminCall(t, admin, "PATCH", "/admin/users/alice", `{"admin":"yes"}`), 400)
	wantAdminStatus(t, "unknown field", e.adminCall(t, admin, "PATCH", "/admin/users/alice", `{"password_hash":"x"}`), 400)
	wantAdminStatus(t, "unknown user", e.adminCall(t, admin, "PATCH", "/admin/users/nobody", `{"name":"x"}`), 404)

	// Granting admin works at once; a disabled admin's token no longer opens /admin.
	wantAdminStatus(t, "make bob admin", e.adminCall(t, admin, "PATCH", "/admin/users/bob", `{"admin":true}`), 200)
	bobAdmin := e.password(t, "bob", atkAlicePW, "admin").AccessToken
	wantAdminStatus(t, "bob lists users", e.adminCall(t, bobAdmin, "GET", "/admin/users", ""), 200)
	wantAdminStatus(t, "disable bob", e.adminCall(t, admin, "PATCH", "/admin/users/bob", `{"disabled":true}`), 200)
	if r := e.adminCall(t, bobAdmin, "GET", "/admin/users", ""); r.status != 403 {
		t.Errorf("a disabled admin's token: %d %s, want 403", r.status, r.body)
	}
}

// TestAdminRotateSecret: POST /admin/clients/{id}/rotate-secret with a day's
// grace: both secrets work, then only the new one; only admins may.
func TestAdminRotateSecret(t *testing.T) {
	e := newAtkEnv(t)
	admin := e.password(t, "root", atkRootPW, "admin").AccessToken
	old, err := e.IDP.Directory().RegisterClient(context.Background(), &idp.Client{ID: "billing", GrantTypes: []string{"client_credentials"}}, true)
	if err != nil {
		t.Fatal(err)
	}
	// Rotation with a day's grace: both secrets work, then only the new one.
	r := wantAdminStatus(t, "rotate-secret", e.adminCall(t, admin, "POST", "/admin/clients/billing/rotate-secret", `{"grace":"24h"}`), 200)
	secret, _ := r.object(t)["client_secret"].(string)
	if secret == "" || secret == old || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("rotate-secret: %s (Cache-Control %q)", r.body, r.header.Get("Cache-Control"))
	}
	for _, s := range []string{old, secret} {
		if r := e.clientCredentials(t, "billing", s); r.status != 200 {
			t.Errorf("during the grace period: %d %s", r.status, r.body)
		}
	}
	e.clock.Advance(24*time.Hour + time.Second)
	if r := e.clientCredentials(t, "billing", old); r.status != 401 {
		t.Errorf("old secret after the grace: %d %s, want 401", r.status, r.body)
	}
	if r := e.clientCredentials(t, "billing", secret); r.status != 200 {
		t.Errorf("new secret after the grace: %d %s", r.status, r.body)
	}

	// Only admins: no token 401, a plain user's 403.
	if r := e.do(t, "GET", "/admin/clients", nil, nil); r.status != 401 {
		t.Errorf("no token: %d", r.status)
	}
	alice := e.password(t, "alice", atkAlicePW, "admin").AccessToken
	if r := e.adminCall(t, alice, "PATCH", "/admin/clients/billing", `{"name":"pwned"}`); r.status != 403 {
		t.Errorf("a plain user's token: %d %s, want 403", r.status, r.body)
	}
}

// TestAdminClientFields: every client setting the CLI's `clients update`
// changes, the admin API changes too (PATCH) and shows back (GET), field by
// field, and a PATCH of one field leaves the others as they were.
func TestAdminClientFields(t *testing.T) {
	e := newAtkEnv(t)
	admin := e.password(t, "root", atkRootPW, "admin").AccessToken
	_, err := e.IDP.Directory().RegisterClient(context.Background(), &idp.Client{ID: "web", GrantTypes: []string{"authorization_code"},
		Scopes: []string{"openid"}, RedirectURIs: []string{"https://app.example/cb"}}, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		field string
		value string // JSON; shown back the same unless shown is set
		shown string
	}{
		{"name", `"Web app"`, ""},
		{"grant_types", `["authorization_code","refresh_token"]`, ""},
		{"scopes", `["openid","profile"]`, ""},
		{"audience", `["orders"]`, ""},
		{"redirect_uris", `["https://app.example/cb","https://app.example/cb2"]`, ""},
		{"post_logout_redirect_uris", `["https://app.example/bye"]`, ""},
		{"allowed_origins", `["https://spa.example"]`, ""},
		{"access_ttl", `"5m"`, `"5m0s"`},
		{"not_before_delay", `"10s"`, ""},
		{"introspect", `true`, ""},
		{"third_party", `true`, ""},
		{"dpop_bound_access_tokens", `true`, ""},
		{"allow_bare_assertion", `true`, ""},
	} {
		t.Run(c.field, func(t *testing.T) {
			before := wantAdminStatus(t, "GET", e.adminCall(t, admin, "GET", "/admin/clients/web", ""), 200).object(t)
			wantAdminStatus(t, "PATCH "+c.field, e.adminCall(t, admin, "PATCH", "/admin/clients/web", `{"`+c.field+`":`+c.value+`}`), 200)
			after := wantAdminStatus(t, "GET", e.adminCall(t, admin, "GET", "/admin/clients/web", ""), 200).object(t)
			want := c.shown
			if want == "" {
				want = c.value
			}
			if got, _ := json.Marshal(after[c.field]); string(got) != want {
				t.Errorf("%s shown as %s after PATCH, want %s", c.field, got, want)
			}
			for k, v := range before {
				derived := map[string]string{"access_ttl": "access_ttl_default", "audience": "audience_default", "allowed_origins": "origins"}
				if k == c.field || derived[c.field] == k {
					continue
				}
				if b, a := fmt.Sprint(v), fmt.Sprint(after[k]); b != a {
					t.Errorf("PATCH %s changed %s from %s to %s", c.field, k, b, a)
				}
			}
		})
	}
}
