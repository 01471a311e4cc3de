// Package examples_test runs every example — the resource server, the curl,
// Python, Node and Go clients — against a live Keygate, as a user would.
package examples_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/keygate/keygate/idp"
	"github.com/keygate/keygate/internal/kgtest"
	"github.com/keygate/keygate/rotation"
)

const secret = "kgs_example-secret-0123456789abcdefghijklmnopqrstuv"

var (
	bin      string // built example binaries
	keyOnce  sync.Once
	rsaKey   *rsa.PrivateKey
	keyPEM   string // the client's private key file
	pubJWKS  jwk.Set
	required = os.Getenv("CI") != "" // CI installs python3-jwt, node and jose; a laptop may not have them
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "keygate-examples")
	if err != nil {
		panic(err)
	}
	bin = dir
	for _, p := range []string{"resource-server", "client"} {
		out, err := exec.Command("go", "build", "-o", filepath.Join(dir, p), "./"+p).CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", p, err, out)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func clientKey(t *testing.T) {
	keyOnce.Do(func() {
		var err error
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		der, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
		keyPEM = filepath.Join(bin, "client.key")
		os.WriteFile(keyPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
		pub, _ := jwk.FromRaw(&rsaKey.PublicKey)
		pubJWKS = jwk.NewSet()
		pubJWKS.AddKey(pub)
	})
}

// env is a live Keygate with the clients the examples use, and the resource server.
type env struct {
	kg       *kgtest.Server
	resource string
}

func start(t *testing.T, future time.Duration, dpop ...idp.DPoPConfig) *env {
	t.Helper()
	clientKey(t)
	var dc idp.DPoPConfig
	if len(dpop) > 0 {
		dc = dpop[0]
	}
	kg := kgtest.Start(t, kgtest.Options{DPoP: dc, Policy: rotation.Policy{RotationPeriod: 24 * time.Hour, PublishAhead: time.Hour,
		Retention: 2 * time.Hour, RSABits: 2048, Algorithms: []string{"RS256", "ES256", "EdDSA"}}, Clients: []idp.Client{
		{ID: "billing", SecretHash: idp.HashSecret(secret), GrantTypes: []string{idp.GrantClientCredentials},
			Scopes: []string{"read"}, Audience: []string{"orders"}, AccessTTL: 3 * time.Minute},
		{ID: "billing-es256", SecretHash: idp.HashSecret(secret), GrantTypes: []string{idp.GrantClientCredentials},
			Scopes: []string{"read"}, Audience: []string{"orders"}, AccessTTL: 3 * time.Minute, SigningAlg: "ES256"},
		{ID: "billing-eddsa", SecretHash: idp.HashSecret(secret), GrantTypes: []string{idp.GrantClientCredentials},
			Scopes: []string{"read"}, Audience: []string{"orders"}, AccessTTL: 3 * time.Minute, SigningAlg: "EdDSA"},
		{ID: "client", Keys: pubJWKS, GrantTypes: []string{idp.GrantJWTBearer}, AllowBareAssertion: true,
			AccessTTL: 3 * future, NotBeforeDelay: future},
	}})
	cmd := exec.Command(filepath.Join(bin, "resource-server"), "-issuer", kg.URL, "-listen", "127.0.0.1:0")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		re := regexp.MustCompile(`listen=(\S+)`)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil && strings.Contains(sc.Text(), "resource server started") {
				addr <- m[1]
			}
		}
	}()
	select {
	case a := <-addr:
		return &env{kg: kg, resource: "http://" + a}
	case <-time.After(30 * time.Second):
		t.Fatal("resource server did not start")
	}
	return nil
}

func (e *env) token(t *testing.T) string { return e.tokenFor(t, "billing") }

// tokenFor is an access token for client id (billing: RS256, billing-es256,
// billing-eddsa: those algorithms).
func (e *env) tokenFor(t *testing.T, id string) string {
	t.Helper()
	res, err := e.kg.IDP.Token(context.Background(), &idp.Request{Form: map[string][]string{
		"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}})
	if err != nil {
		t.Fatal(err)
	}
	return res.AccessToken
}

// algClients are the example clients by the algorithm their tokens use.
var algClients = map[string]string{"RS256": "billing", "ES256": "billing-es256", "EdDSA": "billing-eddsa"}

// checkAlg fails unless tok's header names alg.
func checkAlg(t *testing.T, tok, alg string) {
	t.Helper()
	h, err := base64.RawURLEncoding.DecodeString(strings.SplitN(tok, ".", 2)[0])
	var hdr struct{ Alg string }
	if err != nil || json.Unmarshal(h, &hdr) != nil || hdr.Alg != alg {
		t.Fatalf("token header %s, want alg %s", h, alg)
	}
}

func run(t *testing.T, dir string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func need(t *testing.T, path, what string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		if required {
			t.Fatalf("%s missing (%s): .ci/run installs it", what, path)
		}
		t.Skipf("%s not installed (%s)", what, path)
	}
}

func python(t *testing.T) string {
	need(t, "/usr/bin/python3", "Debian python3")
	if out, err := exec.Command("/usr/bin/python3", "-c", "import jwt, requests").CombinedOutput(); err != nil {
		if required {
			t.Fatalf("python3-jwt / python3-requests missing: %s", out)
		}
		t.Skip("python3-jwt / python3-requests not installed")
	}
	return "/usr/bin/python3"
}

func TestGetTokenShellScript(t *testing.T) {
	e := start(t, time.Second)
	out, err := run(t, "scripts", "bash", "get-token.sh", e.kg.URL, "billing", secret, "read", e.resource+"/api/secret")
	if err != nil || !strings.HasSuffix(strings.TrimSpace(out), "200") || !strings.Contains(out, `"sub":"billing"`) {
		t.Fatalf("get-token.sh: %v\n%s", err, out)
	}
	if out, err := run(t, "scripts", "bash", "get-token.sh", e.kg.URL, "billing", "wrong"); err == nil {
		t.Errorf("get-token.sh with a wrong secret succeeded:\n%s", out)
	}
}

func TestGoClient(t *testing.T) {
	e := start(t, time.Second)
	out, err := run(t, ".", filepath.Join(bin, "client"), "-issuer", e.kg.URL, "-client-id", "billing",
		"-client-secret", secret, "-scope", "read", "-url", e.resource+"/api/secret")
	if err != nil || !strings.Contains(out, "200 ") {
		t.Fatalf("client: %v\n%s", err, out)
	}
}

func TestVerifyPython(t *testing.T) {
	py := python(t)
	e := start(t, time.Second)
	for alg, id := range algClients {
		tok := e.tokenFor(t, id)
		checkAlg(t, tok, alg)
		out, err := run(t, "scripts", py, "verify.py", e.kg.URL, tok, "orders")
		var claims map[string]any
		if err != nil || json.Unmarshal([]byte(out), &claims) != nil || claims["sub"] != id {
			t.Fatalf("verify.py, %s: %v\n%s", alg, err, out)
		}
	}
	tok := e.token(t)
	for name, bad := range map[string][]string{
		"tampered":       {tok[:len(tok)-4] + "AAAA", "orders"},
		"wrong audience": {tok, "payments"},
	} {
		if out, err := run(t, "scripts", py, append([]string{"verify.py", e.kg.URL}, bad...)...); err == nil || !strings.Contains(out, "invalid") {
			t.Errorf("verify.py accepted a %s token: %s", name, out)
		}
	}
}

func TestVerifyNode(t *testing.T) {
	need(t, "/usr/bin/node", "node")
	need(t, "scripts/node_modules/jose/package.json", "npm jose (npm ci in examples/scripts)")
	e := start(t, time.Second)
	for alg, id := range algClients {
		tok := e.tokenFor(t, id)
		checkAlg(t, tok, alg)
		out, err := run(t, "scripts", "node", "verify.mjs", e.kg.URL, tok, "orders")
		var claims map[string]any
		if err != nil || json.Unmarshal([]byte(out), &claims) != nil || claims["client_id"] != id {
			t.Fatalf("verify.mjs, %s: %v\n%s", alg, err, out)
		}
	}
	tok := e.token(t)
	if out, err := run(t, "scripts", "node", "verify.mjs", e.kg.URL, tok, "payments"); err == nil || !strings.Contains(out, "invalid") {
		t.Errorf("verify.mjs accepted a token for another audience: %s", out)
	}
}

// TestFutureTokensScriptLogin runs the script-login client (future_tokens.py): its use token is valid from
// +4 s to +12 s here (the seed's +10 s / +30 s scaled so the test takes 16 s),
// polled every 2 s: two 403 "not yet valid", then 200s, then 403 "expired".
func TestFutureTokensScriptLogin(t *testing.T) {
	py := python(t)
	e := start(t, 4*time.Second)
	out, err := run(t, "scripts", py, "future_tokens.py", e.kg.URL, e.resource+"/", "client", keyPEM, "2", "8")
	if err != nil {
		t.Fatalf("future_tokens.py: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 9 || !strings.Contains(lines[0], "'nbf'") {
		t.Fatalf("unexpected output:\n%s", out)
	}
	want := []string{"403 Token is not yet valid (nbf)", "403 Token is not yet valid (nbf)", "200 ", "200 ", "200 ", "200 ",
		"403 Token has expired", "403 Token has expired"}
	for i, w := range want {
		if !strings.HasPrefix(lines[i+1], w) {
			t.Errorf("line %d = %q, want it to start with %q\n%s", i+1, lines[i+1], w, out)
		}
	}
}

// TestResourceServerRoutes: the protected route (RS256, ES256 and EdDSA
// tokens) and the client-signed query route.
func TestResourceServerRoutes(t *testing.T) {
	e := start(t, time.Second)
	get := func(auth string) (*http.Response, string) {
		req, _ := http.NewRequest("GET", e.resource+"/api/secret", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	if r, _ := get(""); r.StatusCode != 401 || !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("no token: %d %q", r.StatusCode, r.Header.Get("WWW-Authenticate"))
	}
	if r, _ := get("Bearer not.a.token"); r.StatusCode != 401 || !strings.Contains(r.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("bad token: %d %q", r.StatusCode, r.Header.Get("WWW-Authenticate"))
	}
	for alg, id := range algClients { // the SDK verifies every algorithm Keygate signs with
		tok := e.tokenFor(t, id)
		checkAlg(t, tok, alg)
		for _, scheme := range []string{"Bearer ", "JWT "} {
			if r, b := get(scheme + tok); r.StatusCode != 200 || !strings.Contains(b, "42") || !strings.Contains(b, `"client_id":"`+id+`"`) {
				t.Errorf("%s %stoken: %d %s", alg, scheme, r.StatusCode, b)
			}
		}
	}

	query := func(iss string, key *rsa.PrivateKey) (int, string) {
		tok, _ := jwt.NewBuilder().Issuer(iss).IssuedAt(time.Now()).Claim("query", "meaning of life").Build()
		signed, err := jwt.Sign(tok, jwt.WithKey(jwa.RS256, key))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Post(e.resource+"/query", "application/jwt", strings.NewReader(string(signed)))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, b := query("client", rsaKey); code != 200 || strings.TrimSpace(b) != `{"meaning of life":42}` {
		t.Errorf("client-signed query: %d %s", code, b)
	}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	if code, b := query("client", other); code != 403 {
		t.Errorf("query signed by another key: %d %s", code, b)
	}
	if code, b := query("nobody", rsaKey); code != 403 {
		t.Errorf("query from an unknown client: %d %s", code, b)
	}
}
