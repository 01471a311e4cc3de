package web_test

// DPoP (RFC 9449) end to end against a live in-process Keygate: proofs are
// built with jwx (internal/jwtforge.DPoPKey), tokens are asked for and used
// over HTTP, and every attack is a request a thief could send. Time is the
// injected clock.

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/idp"
	"github.com/keygate/keygate/internal/jwtforge"
	"github.com/keygate/keygate/internal/kgtest"
	"github.com/keygate/keygate/internal/stampede"
)

// dpopEnv is tkEnv with a client that requires DPoP and two client keys.
type dpopEnv struct {
	*tkEnv
	key, other *jwtforge.DPoPKey // the client's DPoP key, and a thief's
}

func newDPoPEnv(t *testing.T, o kgtest.Options) *dpopEnv {
	t.Helper()
	e := &dpopEnv{tkEnv: newTkEnv(t, o), key: jwtforge.NewDPoPKey(t, "ES256", "client"), other: jwtforge.NewDPoPKey(t, "ES256", "thief")}
	c := idp.Client{ID: "bound", GrantTypes: []string{tkCC}, Scopes: []string{"read"}, DPoPBoundAccessTokens: true}
	secret, err := e.IDP.Directory().RegisterClient(t.Context(), &c, true)
	if err != nil {
		t.Fatal(err)
	}
	e.secret["bound"] = secret
	return e
}

// proof is a genuine proof by k for method and path on the server, at the
// clock's now, bound to token when it is set.
func (e *dpopEnv) proof(t *testing.T, k *jwtforge.DPoPKey, method, path, token string) string {
	t.Helper()
	return k.Proof(t, method, e.URL+path, e.clock.Now(), token)
}

// dpopToken asks /token with proof (none when "") and checks a DPoP answer.
func (e *dpopEnv) dpopToken(t *testing.T, r request, proof string) (tokenResponse, reply) {
	t.Helper()
	r.path = "/token"
	if proof != "" {
		r.hdr = map[string]string{"DPoP": proof}
	}
	res := e.do(t, r)
	if res.status != http.StatusOK {
		return tokenResponse{}, res
	}
	var tr tokenResponse
	if err := json.Unmarshal(res.body, &tr); err != nil {
		t.Fatal(err)
	}
	return tr, res
}

// passwordForm is alice's password grant as the public client pub.
func passwordForm() request {
	return request{form: formOf("grant_type", tkPW, "username", "alice", "password", tkAlicePW, "client_id", "pub", "scope", "openid profile")}
}

// cnfJKT is the cnf.jkt of an access token, read without verification (the
// signature is checked by every endpoint the test then calls).
func cnfJKT(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Cnf struct {
			JKT string `json:"jkt"`
		} `json:"cnf"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c.Cnf.JKT
}

// wantDPoPChallenge checks a 401 of a protected endpoint refusing a DPoP
// request: a DPoP challenge with the error code and the algs.
func wantDPoPChallenge(t *testing.T, name string, res reply, code string) {
	t.Helper()
	if res.status != http.StatusUnauthorized {
		t.Errorf("%s: %s, want 401", name, res)
		return
	}
	ch := strings.Join(res.hdr.Values("WWW-Authenticate"), " | ")
	if !strings.HasPrefix(ch, "DPoP ") || !strings.Contains(ch, `error="`+code+`"`) || !strings.Contains(ch, `algs="ES256`) {
		t.Errorf("%s: WWW-Authenticate %q, want DPoP error=%q with algs", name, ch, code)
	}
}

func TestDPoPBoundTokenAtKeygateEndpoints(t *testing.T) {
	e := newDPoPEnv(t, kgtest.Options{})
	tr, res := e.dpopToken(t, passwordForm(), e.proof(t, e.key, http.MethodPost, "/token", ""))
	if res.status != http.StatusOK || tr.TokenType != "DPoP" {
		t.Fatalf("token with a proof: %s, want token_type DPoP", res)
	}
	if got := cnfJKT(t, tr.AccessToken); got != e.key.JKT {
		t.Fatalf("cnf.jkt %q, want the proof key's %q", got, e.key.JKT)
	}
	in := e.introspect(t, tr.AccessToken)
	if cnf, _ := in["cnf"].(map[string]any); cnf["jkt"] != e.key.JKT || in["token_type"] != "DPoP" {
		t.Errorf("introspection %v, want cnf.jkt %s and token_type DPoP", in, e.key.JKT)
	}

	use := func(path, scheme, proof string) reply {
		hdr := map[string]string{"Authorization": scheme + " " + tr.AccessToken}
		if proof != "" {
			hdr["DPoP"] = proof
		}
		return e.do(t, request{method: http.MethodGet, path: path, hdr: hdr})
	}
	for _, path := range []string{"/userinfo", "/users/me"} {
		if r := use(path, "DPoP", e.proof(t, e.key, http.MethodGet, path, tr.AccessToken)); r.status != http.StatusOK {
			t.Errorf("%s with its proof: %s", path, r)
		}
	}

	replayed := e.proof(t, e.key, http.MethodGet, "/userinfo", tr.AccessToken)
	if r := use("/userinfo", "DPoP", replayed); r.status != http.StatusOK {
		t.Fatalf("first use of a proof: %s", r)
	}
	cases := []struct {
		name, scheme, proof, code string
	}{
		{"proof from another key", "DPoP", e.proof(t, e.other, http.MethodGet, "/userinfo", tr.AccessToken), "invalid_dpop_proof"},
		{"replayed proof", "DPoP", replayed, "invalid_dpop_proof"},
		{"proof for another URL", "DPoP", e.proof(t, e.key, http.MethodGet, "/users/me", tr.AccessToken), "invalid_dpop_proof"},
		{"proof for another method", "DPoP", e.proof(t, e.key, http.MethodPost, "/userinfo", tr.AccessToken), "invalid_dpop_proof"},
		{"stale iat", "DPoP", e.key.Proof(t, http.MethodGet, e.URL+"/userinfo", e.clock.Now().Add(-5*time.Minute), tr.AccessToken), "invalid_dpop_proof"},
		{"iat in the future", "DPoP", e.key.Proof(t, http.MethodGet, e.URL+"/userinfo", e.clock.Now().Add(5*time.Minute), tr.AccessToken), "invalid_dpop_proof"},
		{"missing ath", "DPoP", e.proof(t, e.key, http.MethodGet, "/userinfo", ""), "invalid_dpop_proof"},
		{"ath of another token", "DPoP", e.proof(t, e.key, http.MethodGet, "/userinfo", "another.token.value"), "invalid_dpop_proof"},
		{"no proof", "DPoP", "", "invalid_dpop_proof"},
		{"proof signed by another key than its jwk", "DPoP", jwtforge.Compact(t, e.key.Header(),
			e.key.Claims(http.MethodGet, e.URL+"/userinfo", e.clock.Now(), tr.AccessToken), e.other.Signer()), "invalid_dpop_proof"},
		{"bound token as Bearer", "Bearer", "", "invalid_token"},
		{"bound token as Bearer with a proof", "Bearer", e.proof(t, e.key, http.MethodGet, "/userinfo", tr.AccessToken), "invalid_token"},
	}
	for _, c := range cases {
		wantDPoPChallenge(t, c.name, use("/userinfo", c.scheme, c.proof), c.code)
	}

	// Two DPoP headers (RFC 9449 §4.3 point 1).
	hr, _ := http.NewRequest(http.MethodGet, e.URL+"/userinfo", nil)
	hr.Header.Set("Authorization", "DPoP "+tr.AccessToken)
	hr.Header.Add("DPoP", e.proof(t, e.key, http.MethodGet, "/userinfo", tr.AccessToken))
	hr.Header.Add("DPoP", e.proof(t, e.key, http.MethodGet, "/userinfo", tr.AccessToken))
	hres, body := kgtest.Do(t, http.DefaultClient, hr)
	wantDPoPChallenge(t, "two DPoP headers", reply{status: hres.StatusCode, hdr: hres.Header, body: body}, "invalid_dpop_proof")

	// A bearer token presented with the DPoP scheme is refused too.
	bearer := e.password(t, "pub", "alice", tkAlicePW, "openid")
	r := e.do(t, request{method: http.MethodGet, path: "/userinfo", hdr: map[string]string{"Authorization": "DPoP " + bearer.AccessToken,
		"DPoP": e.proof(t, e.key, http.MethodGet, "/userinfo", bearer.AccessToken)}})
	wantDPoPChallenge(t, "bearer token with the DPoP scheme", r, "invalid_token")

	// Without any token, both schemes are offered.
	r = e.do(t, request{method: http.MethodGet, path: "/userinfo"})
	if v := r.hdr.Values("WWW-Authenticate"); r.status != http.StatusUnauthorized || len(v) != 2 ||
		!strings.HasPrefix(v[0], "Bearer ") || !strings.HasPrefix(v[1], "DPoP ") {
		t.Errorf("no token: %s, WWW-Authenticate %q; want a Bearer and a DPoP challenge", r, v)
	}
}

func TestDPoPTokenEndpointRefusesBadProofs(t *testing.T) {
	e := newDPoPEnv(t, kgtest.Options{})
	url := e.URL + "/token"
	now := e.clock.Now()
	replayed := e.proof(t, e.key, http.MethodPost, "/token", "")
	if _, res := e.dpopToken(t, passwordForm(), replayed); res.status != http.StatusOK {
		t.Fatalf("first use: %s", res)
	}
	cases := []struct{ name, proof, desc string }{
		{"replayed proof", replayed, "already used"},
		{"proof for another URL", e.key.Proof(t, http.MethodPost, e.URL+"/userinfo", now, ""), "htu"},
		{"proof for another method", e.key.Proof(t, http.MethodGet, url, now, ""), "htm"},
		{"stale iat", e.key.Proof(t, http.MethodPost, url, now.Add(-2*time.Minute), ""), "iat"},
		{"typ JWT", e.key.Forge(t, map[string]any{"typ": "JWT"}, nil, http.MethodPost, url, now, ""), ""},
		{"no jti", e.key.Forge(t, nil, map[string]any{"jti": nil}, http.MethodPost, url, now, ""), ""},
		{"private key in the header", e.key.Forge(t, map[string]any{"jwk": jwtforge.With(e.key.JWK, map[string]any{"d": "AAAA"})}, nil, http.MethodPost, url, now, ""), ""},
		{"not a JWT", "not-a-proof", ""},
	}
	for _, c := range cases {
		_, res := e.dpopToken(t, passwordForm(), c.proof)
		if !wantOAuthError(t, res, http.StatusBadRequest, "invalid_dpop_proof", c.desc) {
			t.Errorf("case %s", c.name)
		}
	}
	// A client that requires DPoP gets no token without a proof, and a
	// DPoP-bound one with it.
	cc := request{form: formOf("grant_type", tkCC), basic: e.basic("bound")}
	_, res := e.dpopToken(t, cc, "")
	wantOAuthError(t, res, http.StatusBadRequest, "invalid_dpop_proof", "must send a DPoP proof")
	if tr, res := e.dpopToken(t, cc, e.proof(t, e.key, http.MethodPost, "/token", "")); res.status != http.StatusOK || tr.TokenType != "DPoP" {
		t.Errorf("bound client with a proof: %s", res)
	}
	// Other clients still get bearer tokens without one.
	if tr := e.password(t, "pub", "alice", tkAlicePW, ""); cnfJKT(t, tr.AccessToken) != "" {
		t.Errorf("a bearer token carries cnf")
	}
}

func TestDPoPRefreshOfPublicClientBoundToItsKey(t *testing.T) {
	e := newDPoPEnv(t, kgtest.Options{})
	tr, res := e.dpopToken(t, passwordForm(), e.proof(t, e.key, http.MethodPost, "/token", ""))
	if res.status != http.StatusOK || tr.RefreshToken == "" {
		t.Fatalf("token: %s", res)
	}
	refresh := func(rt, proof string) (tokenResponse, reply) {
		return e.dpopToken(t, request{form: formOf("grant_type", tkRefresh, "refresh_token", rt, "client_id", "pub")}, proof)
	}
	_, res = refresh(tr.RefreshToken, e.proof(t, e.other, http.MethodPost, "/token", ""))
	wantOAuthError(t, res, http.StatusBadRequest, "invalid_grant", "another DPoP key")
	_, res = refresh(tr.RefreshToken, "")
	wantOAuthError(t, res, http.StatusBadRequest, "invalid_dpop_proof", "bound to a DPoP key")
	next, res := refresh(tr.RefreshToken, e.proof(t, e.key, http.MethodPost, "/token", ""))
	if res.status != http.StatusOK || next.TokenType != "DPoP" || cnfJKT(t, next.AccessToken) != e.key.JKT {
		t.Fatalf("refresh with its key: %s", res)
	}
	// The next link of the family is bound too.
	_, res = refresh(next.RefreshToken, e.proof(t, e.other, http.MethodPost, "/token", ""))
	wantOAuthError(t, res, http.StatusBadRequest, "invalid_grant", "another DPoP key")
	if in := e.introspect(t, next.RefreshToken); in["cnf"] == nil {
		t.Errorf("introspection of a bound refresh token without cnf: %v", in)
	}

	// A confidential client's family is not bound: it authenticates anyway.
	f := formOf("grant_type", tkPW, "username", "alice", "password", tkAlicePW)
	ctr, res := e.dpopToken(t, request{form: f, basic: e.basic("script")}, e.proof(t, e.key, http.MethodPost, "/token", ""))
	if res.status != http.StatusOK {
		t.Fatalf("confidential token: %s", res)
	}
	if res := e.refresh(t, "script", ctr.RefreshToken, ""); res.status != http.StatusOK {
		t.Errorf("confidential refresh without a proof: %s", res)
	}
}

func TestDPoPNonces(t *testing.T) {
	const lifetime = time.Minute
	e := newDPoPEnv(t, kgtest.Options{DPoP: idp.DPoPConfig{NonceSecret: []byte("0123456789abcdef0123456789abcdef"), NonceLifetime: lifetime}})
	url := e.URL + "/token"
	_, res := e.dpopToken(t, passwordForm(), e.proof(t, e.key, http.MethodPost, "/token", ""))
	wantOAuthError(t, res, http.StatusBadRequest, "use_dpop_nonce", "nonce")
	nonce := res.hdr.Get("DPoP-Nonce")
	if nonce == "" {
		t.Fatalf("use_dpop_nonce without a DPoP-Nonce header: %v", res.hdr)
	}
	withNonce := func(k *jwtforge.DPoPKey, method, url, n, token string) string {
		return k.Forge(t, nil, map[string]any{"nonce": n}, method, url, e.clock.Now(), token)
	}
	tr, res := e.dpopToken(t, passwordForm(), withNonce(e.key, http.MethodPost, url, nonce, ""))
	if res.status != http.StatusOK || res.hdr.Get("DPoP-Nonce") == "" {
		t.Fatalf("token with the nonce: %s (DPoP-Nonce %q)", res, res.hdr.Get("DPoP-Nonce"))
	}
	_, res = e.dpopToken(t, passwordForm(), withNonce(e.key, http.MethodPost, url, "made-up", ""))
	wantOAuthError(t, res, http.StatusBadRequest, "use_dpop_nonce", "expired")

	// Keygate's own endpoints require it as well (RFC 9449 §9).
	get := func(proof string) reply {
		return e.do(t, request{method: http.MethodGet, path: "/userinfo",
			hdr: map[string]string{"Authorization": "DPoP " + tr.AccessToken, "DPoP": proof}})
	}
	r := get(e.proof(t, e.key, http.MethodGet, "/userinfo", tr.AccessToken))
	wantDPoPChallenge(t, "userinfo without the nonce", r, "use_dpop_nonce")
	if r.hdr.Get("DPoP-Nonce") != nonce {
		t.Errorf("userinfo DPoP-Nonce %q, want %q", r.hdr.Get("DPoP-Nonce"), nonce)
	}
	if r := get(withNonce(e.key, http.MethodGet, e.URL+"/userinfo", nonce, tr.AccessToken)); r.status != http.StatusOK {
		t.Errorf("userinfo with the nonce: %s", r)
	}

	// A nonce stays good into the next slot, not beyond.
	e.clock.Advance(lifetime)
	if r := get(withNonce(e.key, http.MethodGet, e.URL+"/userinfo", nonce, tr.AccessToken)); r.status != http.StatusOK {
		t.Errorf("userinfo with the previous slot's nonce: %s", r)
	}
	e.clock.Advance(lifetime)
	r = get(withNonce(e.key, http.MethodGet, e.URL+"/userinfo", nonce, tr.AccessToken))
	wantDPoPChallenge(t, "userinfo with a nonce two slots old", r, "use_dpop_nonce")
	if fresh := r.hdr.Get("DPoP-Nonce"); fresh == "" || fresh == nonce {
		t.Errorf("fresh DPoP-Nonce %q after two slots (old %q)", fresh, nonce)
	}
}

func TestDPoPConcurrentReplayAtTokenEndpoint(t *testing.T) {
	e := newDPoPEnv(t, kgtest.Options{})
	proof := e.proof(t, e.key, http.MethodPost, "/token", "")
	const n = 16
	statuses := stampede.Run(n, func(int) int {
		_, res := e.dpopToken(t, request{form: formOf("grant_type", tkCC), basic: e.basic("bound")}, proof)
		return res.status
	})
	ok := 0
	for _, s := range statuses {
		switch s {
		case http.StatusOK:
			ok++
		case http.StatusBadRequest:
		default:
			t.Errorf("status %d", s)
		}
	}
	if ok != 1 {
		t.Errorf("%d of %d concurrent uses of one proof succeeded, want exactly 1: %v", ok, n, statuses)
	}
}

func TestDPoPDiscovery(t *testing.T) {
	e := newDPoPEnv(t, kgtest.Options{})
	res := e.do(t, request{method: http.MethodGet, path: "/.well-known/openid-configuration"})
	algs, _ := res.object(t)["dpop_signing_alg_values_supported"].([]any)
	if len(algs) == 0 || algs[0] != "ES256" {
		t.Errorf("dpop_signing_alg_values_supported %v", algs)
	}
}

// TestDPoPAtAdminAPI: /admin goes through the same token check as /userinfo;
// an admin's DPoP-bound token works there only with a fresh proof of its key.
func TestDPoPAtAdminAPI(t *testing.T) {
	e := newDPoPEnv(t, kgtest.Options{})
	c := idp.Client{ID: "ops", Public: true, GrantTypes: []string{tkPW}, Scopes: []string{"admin"}}
	if _, err := e.IDP.Directory().RegisterClient(t.Context(), &c, false); err != nil {
		t.Fatal(err)
	}
	if _, err := e.IDP.Directory().CreateUser(t.Context(), idp.NewUser{Username: "root", Password: tkAlicePW, Admin: true}); err != nil {
		t.Fatal(err)
	}
	form := request{form: formOf("grant_type", tkPW, "username", "root", "password", tkAlicePW, "client_id", "ops", "scope", "admin")}
	tr, res := e.dpopToken(t, form, e.proof(t, e.key, http.MethodPost, "/token", ""))
	if res.status != http.StatusOK || tr.TokenType != "DPoP" {
		t.Fatalf("admin token with a proof: %s, want token_type DPoP", res)
	}
	use := func(scheme, proof string) reply {
		hdr := map[string]string{"Authorization": scheme + " " + tr.AccessToken}
		if proof != "" {
			hdr["DPoP"] = proof
		}
		return e.do(t, request{method: http.MethodGet, path: "/admin/keys", hdr: hdr})
	}
	good := e.proof(t, e.key, http.MethodGet, "/admin/keys", tr.AccessToken)
	if r := use("DPoP", good); r.status != http.StatusOK {
		t.Fatalf("/admin/keys with its proof: %s", r)
	}
	cases := []struct{ name, scheme, proof, code string }{
		{"replayed proof", "DPoP", good, "invalid_dpop_proof"},
		{"proof from another key", "DPoP", e.proof(t, e.other, http.MethodGet, "/admin/keys", tr.AccessToken), "invalid_dpop_proof"},
		{"proof for another admin URL", "DPoP", e.proof(t, e.key, http.MethodGet, "/admin/clients", tr.AccessToken), "invalid_dpop_proof"},
		{"no proof", "DPoP", "", "invalid_dpop_proof"},
		{"bound token as Bearer", "Bearer", "", "invalid_token"},
	}
	for _, c := range cases {
		wantDPoPChallenge(t, c.name, use(c.scheme, c.proof), c.code)
	}
}
