package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/keygate/keygate/internal/kgtest"
	"github.com/keygate/keygate/rotation"
	"github.com/keygate/keygate/store/sqlite"
	"github.com/keygate/keygate/web"
)

const adminToken = "test-admin-token-0123456789abcdef0123"

type harness struct {
	srv   *httptest.Server
	mgr   *rotation.Manager
	store *sqlite.Store
}

// start runs the real server on a real SQLite file behind httptest.
func start(t *testing.T, admin string) *harness {
	t.Helper()
	s := kgtest.Start(t, kgtest.Options{AdminToken: admin})
	return &harness{srv: s.HTTP, mgr: s.Keys, store: s.Store}
}

func (h *harness) do(t *testing.T, method, path string, hdr map[string]string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	return kgtest.Send(t, nil, method, h.srv.URL+path, hdr, body)
}

var admin = map[string]string{"Authorization": "Bearer " + adminToken}

func TestJWKSRoutes(t *testing.T) {
	h := start(t, adminToken)
	etag, b1 := h.wantJWKSRoutes(t)
	h.wantJWKSMembers(t, b1)
	h.wantJWKSConditional(t, etag)
	h.wantJWKSETagFollowsKeys(t, etag, b1)
}

// wantJWKSRoutes checks /jwks and /.well-known/jwks.json serve the same set
// with the same caching headers and a strong ETag, and returns the ETag and
// the set.
func (h *harness) wantJWKSRoutes(t *testing.T) (string, []byte) {
	r1, b1 := h.do(t, "GET", "/jwks", nil, nil)
	r2, b2 := h.do(t, "GET", "/.well-known/jwks.json", nil, nil)
	if r1.StatusCode != 200 || r2.StatusCode != 200 || !bytes.Equal(b1, b2) || r1.Header.Get("ETag") != r2.Header.Get("ETag") {
		t.Fatalf("routes differ: %d %d\n%s\n%s", r1.StatusCode, r2.StatusCode, b1, b2)
	}
	for k, want := range map[string]string{"Cache-Control": "public, max-age=600", "Access-Control-Allow-Origin": "*", "Content-Type": "application/json"} {
		if got := r1.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	etag := r1.Header.Get("ETag")
	if !strings.HasPrefix(etag, `"`) {
		t.Errorf("ETag %q is not a strong validator", etag)
	}
	return etag, b1
}

// wantJWKSMembers checks the set b1 publishes the active and next keys with
// exactly kty, kid, use, alg, n, e each (nothing private, nothing else), and
// that jwx parses it.
func (h *harness) wantJWKSMembers(t *testing.T, b1 []byte) {
	var doc struct{ Keys []map[string]any }
	if err := json.Unmarshal(b1, &doc); err != nil {
		t.Fatal(err)
	}
	snap := h.mgr.Current()
	if len(doc.Keys) != len(snap.Published()) || len(doc.Keys) != 2 {
		t.Fatalf("%d keys published, want active + next", len(doc.Keys))
	}
	for i, k := range doc.Keys {
		if len(k) != 6 || k["kty"] != "RSA" || k["use"] != "sig" || k["alg"] != "RS256" || k["n"] == nil || k["e"] == nil {
			t.Errorf("key %d has members %v", i, k)
		}
		if k["kid"] != snap.Published()[i].KID {
			t.Errorf("key %d kid %v, want %s", i, k["kid"], snap.Published()[i].KID)
		}
	}
	if set, err := jwk.Parse(b1); err != nil || set.Len() != 2 {
		t.Fatalf("jwx cannot parse the set: %v", err)
	}
}

// wantJWKSConditional checks conditional and HEAD requests on /jwks, and that
// POST is not allowed.
func (h *harness) wantJWKSConditional(t *testing.T, etag string) {
	if r, b := h.do(t, "GET", "/jwks", map[string]string{"If-None-Match": etag}, nil); r.StatusCode != 304 || len(b) != 0 {
		t.Errorf("If-None-Match with the current ETag: %d, %d bytes", r.StatusCode, len(b))
	}
	if r, _ := h.do(t, "GET", "/jwks", map[string]string{"If-None-Match": `"stale"`}, nil); r.StatusCode != 200 {
		t.Errorf("If-None-Match with a stale ETag: %d", r.StatusCode)
	}
	if r, b := h.do(t, "HEAD", "/jwks", nil, nil); r.StatusCode != 200 || len(b) != 0 || r.Header.Get("ETag") != etag {
		t.Errorf("HEAD: %d, %d bytes, ETag %q", r.StatusCode, len(b), r.Header.Get("ETag"))
	}
	if r, _ := h.do(t, "POST", "/jwks", nil, nil); r.StatusCode != 405 {
		t.Errorf("POST /jwks: %d, want 405", r.StatusCode)
	}
}

// wantJWKSETagFollowsKeys checks the ETag stays while the key set does and
// changes with a rotation.
func (h *harness) wantJWKSETagFollowsKeys(t *testing.T, etag string, b1 []byte) {
	// The ETag does not change without a key-set change ...
	if _, err := h.mgr.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r, _ := h.do(t, "GET", "/jwks", nil, nil); r.Header.Get("ETag") != etag {
		t.Error("ETag changed although the key set did not")
	}
	// ... and changes when it does.
	if r, b := h.do(t, "POST", "/admin/keys/rotate?force=true", admin, nil); r.StatusCode != 200 {
		t.Fatalf("rotate: %d %s", r.StatusCode, b)
	}
	r3, b3 := h.do(t, "GET", "/jwks", map[string]string{"If-None-Match": etag}, nil)
	if r3.StatusCode != 200 || r3.Header.Get("ETag") == etag || bytes.Equal(b3, b1) {
		t.Errorf("after rotation: %d, ETag %q (was %q)", r3.StatusCode, r3.Header.Get("ETag"), etag)
	}
}

// TestDiscoveryParsesWithGoOIDC: a standard client library accepts the document.
func TestDiscoveryParsesWithGoOIDC(t *testing.T) {
	h := start(t, "")
	ctx := context.Background()
	p, err := oidc.NewProvider(ctx, h.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		JWKSURI string   `json:"jwks_uri"`
		Algs    []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := p.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if claims.JWKSURI != h.srv.URL+"/jwks" || len(claims.Algs) != 1 || claims.Algs[0] != "RS256" {
		t.Errorf("discovery: %+v", claims)
	}
	_, b1 := h.do(t, "GET", "/.well-known/openid-configuration", nil, nil)
	_, b2 := h.do(t, "GET", "/.well-known/oauth-authorization-server", nil, nil)
	if !bytes.Equal(b1, b2) {
		t.Error("the two discovery documents differ")
	}
	// Every endpoint advertised must answer (not 404).
	var doc map[string]any
	json.Unmarshal(b1, &doc)
	for k, v := range doc {
		if s, ok := v.(string); ok && (strings.HasSuffix(k, "_uri") || strings.HasSuffix(k, "_endpoint")) {
			path := strings.TrimPrefix(s, h.srv.URL)
			if r, _ := h.do(t, "GET", path, nil, nil); r.StatusCode == 404 {
				t.Errorf("discovery advertises %s = %s, which answers 404", k, s)
			}
		}
	}
}

func TestHealthAndReadiness(t *testing.T) {
	h := start(t, "")
	if r, _ := h.do(t, "GET", "/healthz", nil, nil); r.StatusCode != 200 {
		t.Errorf("healthz: %d", r.StatusCode)
	}
	if r, b := h.do(t, "GET", "/readyz", nil, nil); r.StatusCode != 200 {
		t.Errorf("readyz: %d %s", r.StatusCode, b)
	}
	h.store.Close() // the database goes away
	if r, b := h.do(t, "GET", "/readyz", nil, nil); r.StatusCode != 503 || !strings.Contains(string(b), "unreachable") {
		t.Errorf("readyz with the store closed: %d %s", r.StatusCode, b)
	}
	// The key set keeps being served from memory.
	if r, _ := h.do(t, "GET", "/jwks", nil, nil); r.StatusCode != 200 {
		t.Errorf("jwks with the store closed: %d", r.StatusCode)
	}
}

func TestAdminAPI(t *testing.T) {
	h := start(t, adminToken)
	cases := []struct {
		name   string
		method string
		path   string
		hdr    map[string]string
		want   int
	}{
		{"no token", "GET", "/admin/keys", nil, 401},
		{"wrong token", "GET", "/admin/keys", map[string]string{"Authorization": "Bearer " + adminToken + "x"}, 401},
		{"basic scheme", "GET", "/admin/keys", map[string]string{"Authorization": "Basic " + adminToken}, 401},
		{"list", "GET", "/admin/keys", admin, 200},
		{"bad force", "POST", "/admin/keys/rotate?force=maybe", admin, 400},
		{"revoke unknown", "POST", "/admin/keys/nope/revoke", admin, 404},
		{"unknown route", "GET", "/admin/nothing", admin, 404},
	}
	for _, c := range cases {
		r, b := h.do(t, c.method, c.path, c.hdr, nil)
		if r.StatusCode != c.want {
			t.Errorf("%s: %d %s, want %d", c.name, r.StatusCode, b, c.want)
		}
		var e map[string]any
		if err := json.Unmarshal(b, &e); err != nil {
			t.Errorf("%s: body is not JSON: %s", c.name, b)
		}
		if c.want >= 400 && e["error"] == nil {
			t.Errorf("%s: no error member: %s", c.name, b)
		}
	}

	// Revoking the active key removes it from the JWKS at once and another signs.
	active := h.mgr.Current().Signing.KID
	r, b := h.do(t, "POST", "/admin/keys/"+active+"/revoke", admin, nil)
	if r.StatusCode != 200 {
		t.Fatalf("revoke: %d %s", r.StatusCode, b)
	}
	_, set := h.do(t, "GET", "/jwks", nil, nil)
	if strings.Contains(string(set), active) {
		t.Error("revoked kid is still published")
	}
	if h.mgr.Current().Signing.KID == active {
		t.Error("the revoked key still signs")
	}
	if r, _ := h.do(t, "POST", "/admin/keys/"+active+"/revoke", admin, nil); r.StatusCode != 409 {
		t.Errorf("second revoke: %d, want 409", r.StatusCode)
	}
	var list struct{ Keys []web.KeyView }
	_, b = h.do(t, "GET", "/admin/keys", admin, nil)
	json.Unmarshal(b, &list)
	states := map[string]int{}
	for _, k := range list.Keys {
		states[k.State]++
	}
	if states["active"] != 1 || states["next"] != 1 || states["revoked"] != 1 {
		t.Errorf("states after revocation: %v", states)
	}
	// Oversized bodies are refused before any handler reads them.
	if r, _ := h.do(t, "POST", "/admin/keys/rotate", admin, strings.NewReader(strings.Repeat("x", 128<<10))); r.StatusCode != 413 {
		t.Errorf("oversized body: %d, want 413", r.StatusCode)
	}
}

// TestAdminWithoutBootstrapSecret: with no admin.token configured, nothing
// but a valid admin user's token opens /admin.
func TestAdminWithoutBootstrapSecret(t *testing.T) {
	h := start(t, "")
	for _, tok := range []string{"", " ", adminToken, "eyJhbGciOiJub25lIn0.e30."} {
		r, _ := h.do(t, "GET", "/admin/keys", map[string]string{"Authorization": "Bearer " + tok}, nil)
		if r.StatusCode != 401 {
			t.Errorf("bearer %q without a configured secret: %d, want 401", tok, r.StatusCode)
		}
	}
}

func TestMetrics(t *testing.T) {
	h := start(t, adminToken)
	h.do(t, "GET", "/jwks", nil, nil)
	h.do(t, "GET", "/jwks", nil, nil)
	h.do(t, "POST", "/admin/keys/rotate?force=true", admin, nil)
	_, b := h.do(t, "GET", "/metrics", nil, nil)
	for _, want := range []string{
		`keygate_jwks_requests_total{code="200"} 2`,
		`keygate_key_rotations_total{reason="manual"} 1`,
		`keygate_key_rotations_total{reason="initial"} 1`,
		`keygate_keys{state="active"} 1`,
		`keygate_keys{state="retired"} 1`,
		"keygate_signing_key_age_seconds ",
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestErrorsAreJSON(t *testing.T) {
	h := start(t, "")
	r, b := h.do(t, "GET", "/no/such/page", nil, nil)
	if r.StatusCode != 404 || !strings.Contains(r.Header.Get("Content-Type"), "application/json") || !strings.Contains(string(b), `"error"`) {
		t.Errorf("404: %d %s %s", r.StatusCode, r.Header.Get("Content-Type"), b)
	}
	if r.Header.Get("X-Request-Id") == "" {
		t.Error("no request ID on the response")
	}
}
