package examples_test

import (
	"bufio"
	"context"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/idp"
	"github.com/keygate/keygate/internal/kgtest"
)

// deviceUser is a person with a browser session at Keygate, approving
// devices over plain HTTP: a cookie jar, and the CSRF token each form holds.
type deviceUser struct {
	base string
	c    *http.Client
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// post sends a form and returns the answer's status and body; the CSRF token
// is taken from the page at formPage first.
func (u *deviceUser) post(t *testing.T, formPage, path string, form url.Values) (int, string) {
	t.Helper()
	_, page := u.get(t, formPage)
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token on %s: %.400s", formPage, page)
	}
	form.Set("csrf", html.UnescapeString(m[1]))
	res, err := u.c.PostForm(u.base+path, form)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func (u *deviceUser) get(t *testing.T, path string) (int, string) {
	t.Helper()
	res, err := u.c.Get(u.base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// logIn creates the user and logs in with the HTML form.
func logIn(t *testing.T, kg *kgtest.Server, username, pw string) *deviceUser {
	t.Helper()
	if _, err := kg.IDP.Directory().CreateUser(context.Background(), idp.NewUser{Username: username, Password: pw}); err != nil {
		t.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	u := &deviceUser{base: kg.URL, c: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
	status, body := u.post(t, "/login", "/login", url.Values{"username": {username}, "password": {pw}})
	if status != http.StatusOK || !strings.Contains(body, username) {
		t.Fatalf("login: %d %.400s", status, body)
	}
	return u
}

// approve enters the user code on the verification page, checks what the
// page says about the request, and allows it.
func (u *deviceUser) approve(t *testing.T, userCode, clientName string) {
	t.Helper()
	page := "/device?user_code=" + url.QueryEscape(userCode)
	status, body := u.post(t, page, "/device", url.Values{"user_code": {userCode}})
	if status != http.StatusOK || !strings.Contains(body, clientName) || !strings.Contains(body, `id="approve"`) {
		t.Fatalf("entering the code: %d %.600s", status, body)
	}
	status, body = u.post(t, page, "/device", url.Values{"user_code": {userCode}, "action": {"approve"}})
	if status != http.StatusOK || !strings.Contains(body, "Device connected") {
		t.Fatalf("approving: %d %.600s", status, body)
	}
}

// TestDeviceLoginPython runs examples/scripts/device_login.py against a live
// Keygate: it prints the verification URI and the user code, a logged-in
// user enters the code and allows the device, and the script, polling, gets
// its tokens and prints the access token's claims.
func TestDeviceLoginPython(t *testing.T) {
	py := python(t)
	kg := kgtest.Start(t, kgtest.Options{Clients: []idp.Client{
		{ID: "cli", Name: "Keygate CLI example", Public: true, GrantTypes: []string{idp.GrantDeviceCode, idp.GrantRefreshToken},
			Scopes: []string{"openid", "profile"}},
	}})
	user := logIn(t, kg, "alice", "alice's long passphrase")

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, "device_login.py", kg.URL, "cli", "openid profile")
	cmd.Dir = "scripts"
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	var lines []string
	prompt := regexp.MustCompile(`open (\S+) and enter the code ([B-Z]{4}-[B-Z]{4})$`)
	var m []string
	for m == nil && sc.Scan() {
		lines = append(lines, sc.Text())
		m = prompt.FindStringSubmatch(sc.Text())
	}
	if m == nil {
		cmd.Wait()
		t.Fatalf("device_login.py printed no code:\n%s\n%s", strings.Join(lines, "\n"), stderr.String())
	}
	if m[1] != kg.URL+"/device" {
		t.Errorf("verification URI %s, want %s/device", m[1], kg.URL)
	}
	user.approve(t, m[2], "Keygate CLI example")
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("device_login.py: %v\n%s\n%s", err, strings.Join(lines, "\n"), stderr.String())
	}
	var claims map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &claims); err != nil {
		t.Fatalf("last line is not the claims: %v\n%s", err, strings.Join(lines, "\n"))
	}
	alice, _ := kg.IDP.Directory().UserByLogin(context.Background(), "alice")
	if claims["sub"] != alice.ID || claims["client_id"] != "cli" || claims["preferred_username"] != "alice" || claims["scope"] != "openid profile" {
		t.Errorf("claims %v", claims)
	}
	if out := strings.Join(lines, "\n"); !strings.Contains(out, "refresh token: yes, id token: yes") {
		t.Errorf("output:\n%s", out)
	}
}
