package main

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/keygate/keygate/internal/kgtest"
)

// secretOf is the client secret a command printed (see clientSecret).
func secretOf(t *testing.T, out string) string {
	t.Helper()
	s := clientSecret(out)
	if s == "" {
		t.Fatalf("no client_secret in:\n%s", out)
	}
	return s
}

func (in *instance) must(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := in.run(t, nil, args...)
	if err != nil {
		t.Fatalf("keygate %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// addUser runs `keygate users add` with args (the username, flags) and
// password on stdin, with env added to the instance's environment, and fails
// the test if it fails.
func (in *instance) addUser(t *testing.T, env []string, password string, args ...string) {
	t.Helper()
	cmd := in.command(env, append([]string{"users", "add"}, args...)...)
	cmd.Stdin = strings.NewReader(password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("users add: %v\n%s", err, out)
	}
}

// tokenStatus is the status of a token request with form, as client id.
func tokenStatus(t *testing.T, s *server, form url.Values, id, secret string) int {
	t.Helper()
	code, _ := s.post(t, "/token", form, id, secret)
	return code
}

// TestCLIManageClients: clients update changes only the flags given and is
// re-validated, static clients are refused, and clients list shows effective
// values.
func TestCLIManageClients(t *testing.T) {
	in := newInitialized(t, "clients:\n  - id: static\n    secret_sha256: "+strings.Repeat("ab", 32)+"\n    grant_types: [client_credentials]\n")
	in.must(t, "clients", "add", "billing", "--grant", "client_credentials", "--scope", "read,write")

	in.must(t, "clients", "update", "billing", "--name", "Billing", "--access-ttl", "5m", "--introspect")
	out := in.must(t, "clients", "list")
	if !strings.Contains(out, "15m0s (default)") {
		t.Errorf("clients list shows 0s or no effective default:\n%s", out)
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "billing ") && (!strings.Contains(l, "5m0s") || !strings.Contains(l, "read,write") || !strings.Contains(l, " any ")) {
			t.Errorf("billing after update: %q", l)
		}
		if strings.HasPrefix(l, "static ") && !strings.Contains(l, "(default)") {
			t.Errorf("static client without effective defaults: %q", l)
		}
	}
	if _, errOut, err := in.run(t, nil, "clients", "update", "billing", "--grant", "authorization_code"); err == nil || !strings.Contains(errOut, "redirect_uris") {
		t.Errorf("update to an invalid client: %v\n%s", err, errOut)
	}
	if _, errOut, err := in.run(t, nil, "clients", "update", "static", "--name", "x"); err == nil || !strings.Contains(errOut, "defined in config.yaml; edit it there") {
		t.Errorf("update of a static client: %v\n%s", err, errOut)
	}
	if _, errOut, err := in.run(t, nil, "clients", "rotate-secret", "static"); err == nil || !strings.Contains(errOut, "defined in config.yaml; edit it there") {
		t.Errorf("rotate-secret of a static client: %v\n%s", err, errOut)
	}

}

// TestCLIRotateSecret: rotate-secret keeps the old secret for the grace
// period (here 1h, then 0) against the running server.
func TestCLIRotateSecret(t *testing.T) {
	in := newInitialized(t, "")
	old := secretOf(t, in.must(t, "clients", "add", "billing", "--grant", "client_credentials"))
	s := in.serve(t)
	cc := url.Values{"grant_type": {"client_credentials"}}
	if st := tokenStatus(t, s, cc, "billing", old); st != 200 {
		t.Fatalf("first secret: %d", st)
	}
	out := in.must(t, "clients", "rotate-secret", "billing", "--grace", "1h")
	cur := secretOf(t, out)
	// The server sees another process's client write within its cache's
	// check interval (idp.DefaultClientCheckInterval): poll for it.
	waitFor(t, func() bool { return tokenStatus(t, s, cc, "billing", cur) == 200 }, "the server to accept the new secret")
	if !strings.Contains(out, "old secret works until") {
		t.Errorf("rotate-secret --grace 1h:\n%s", out)
	}
	for _, sec := range []string{old, cur} {
		if st := tokenStatus(t, s, cc, "billing", sec); st != 200 {
			t.Errorf("during the grace period: %d", st)
		}
	}
	next := secretOf(t, in.must(t, "clients", "rotate-secret", "billing", "--grace", "0"))
	waitFor(t, func() bool { return tokenStatus(t, s, cc, "billing", next) == 200 }, "the server to accept the newest secret")
	if st := tokenStatus(t, s, cc, "billing", cur); st != 401 {
		t.Errorf("secret rotated out with --grace 0: %d, want 401", st)
	}
	if st := tokenStatus(t, s, cc, "billing", old); st != 401 {
		t.Errorf("the older secret after a second rotation: %d, want 401", st)
	}
	if st := tokenStatus(t, s, cc, "billing", next); st != 200 {
		t.Errorf("newest secret: %d", st)
	}
}

// TestCLIManageUsers: users update changes the profile, and --disable
// refuses the password grant of the running server at once and revokes
// refresh tokens; --enable lets the user in again.
func TestCLIManageUsers(t *testing.T) {
	in := newInitialized(t, "")
	secret := secretOf(t, in.must(t, "clients", "add", "app", "--grant", "password,refresh_token", "--scope", "openid"))
	cmd := func(args ...string) (string, string, error) { return in.run(t, nil, args...) }
	in.addUser(t, nil, "correct horse battery staple", "alice")
	in.must(t, "users", "update", "alice", "--email", "alice@example.com", "--name", "Alice", "--admin")
	out := in.must(t, "users", "list")
	if !strings.Contains(out, "alice@example.com") || !strings.Contains(out, "DISABLED") || !strings.Contains(out, "true") {
		t.Errorf("users list after update:\n%s", out)
	}
	if _, errOut, err := cmd("users", "update", "alice", "--admin", "--no-admin"); err == nil || !strings.Contains(errOut, "contradict") {
		t.Errorf("--admin --no-admin: %v\n%s", err, errOut)
	}
	// alice is the only admin: disabling her is refused until another exists.
	if _, errOut, err := cmd("users", "update", "alice", "--disable"); err == nil || !strings.Contains(errOut, "last enabled admin") {
		t.Errorf("disable the last admin: %v\n%s", err, errOut)
	}
	if _, errOut, err := in.runStdin(t, "another horse battery staple\n", "users", "add", "root", "--admin"); err != nil {
		t.Fatalf("users add root: %v\n%s", err, errOut)
	}

	s := in.serve(t)
	pw := url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"correct horse battery staple"}}
	if st := tokenStatus(t, s, pw, "app", secret); st != 200 {
		t.Fatalf("password grant: %d", st)
	}
	out = in.must(t, "users", "update", "alice@example.com", "--disable")
	if !strings.Contains(out, "disabled since") {
		t.Errorf("users update --disable:\n%s", out)
	}
	if st := tokenStatus(t, s, pw, "app", secret); st != 400 {
		t.Errorf("password grant of a disabled user: %d, want 400", st)
	}
	in.must(t, "users", "update", "alice", "--enable")
	if st := tokenStatus(t, s, pw, "app", secret); st != 200 {
		t.Errorf("password grant after --enable: %d", st)
	}
}

// TestCLIResetMFA: a user who enrolled TOTP through the account page is
// refused the password grant; `keygate users reset-mfa` removes the second
// factor, and the grant works again.
func TestCLIResetMFA(t *testing.T) {
	in := newInitialized(t, "")
	secret := secretOf(t, in.must(t, "clients", "add", "app", "--grant", "password", "--scope", "openid"))
	in.addUser(t, nil, "correct horse battery staple", "alice")
	s := in.serve(t)
	pw := url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"correct horse battery staple"}}
	enrolTOTP(t, s.url, "alice", "correct horse battery staple")
	if st := tokenStatus(t, s, pw, "app", secret); st != http.StatusBadRequest {
		t.Errorf("password grant with a second factor: %d, want 400", st)
	}
	if out := in.must(t, "users", "reset-mfa", "alice"); !strings.Contains(out, "second factor of alice removed") {
		t.Errorf("reset-mfa: %q", out)
	}
	if st := tokenStatus(t, s, pw, "app", secret); st != http.StatusOK {
		t.Errorf("password grant after reset-mfa: %d, want 200", st)
	}
	if out := in.must(t, "users", "reset-mfa", "alice"); !strings.Contains(out, "has no second factor") {
		t.Errorf("reset-mfa again: %q", out)
	}
	if _, errOut, err := in.run(t, nil, "users", "reset-mfa", "nobody"); err == nil {
		t.Errorf("reset-mfa of an unknown user succeeded: %s", errOut)
	}
}

// formClient is a browser without JavaScript (a cookie jar) on the server at
// base: it posts forms with the hidden fields of the page they came from.
type formClient struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newFormClient(t *testing.T, base string) *formClient {
	jar, _ := cookiejar.New(nil)
	return &formClient{t: t, base: base, c: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
}

// post submits page's hidden fields and kv to path and returns the page it
// ends on, which must be a 200.
func (f *formClient) post(path string, page []byte, kv ...string) []byte {
	f.t.Helper()
	form := kgtest.HiddenFields(page)
	for i := 0; i+1 < len(kv); i += 2 {
		form.Set(kv[i], kv[i+1])
	}
	res, err := f.c.PostForm(f.base+path, form)
	if err != nil {
		f.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		f.t.Fatalf("POST %s: %d\n%s", path, res.StatusCode, b)
	}
	return b
}

// login posts user's password on the HTML login form and returns the page
// it ends on: /account, or the code step.
func (f *formClient) login(user, pw string) []byte {
	f.t.Helper()
	res, err := f.c.Get(f.base + "/login")
	if err != nil {
		f.t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return f.post("/login", page, "username", user, "password", pw)
}

// enrolTOTP logs user in through the HTML form of the server at base and
// turns TOTP on from /account with a code computed here; it returns the
// secret.
func enrolTOTP(t *testing.T, base, user, pw string) string {
	t.Helper()
	f := newFormClient(t, base)
	account := f.login(user, pw) // redirected to /account
	enrol := f.post("/account/totp/start", account)
	m := regexp.MustCompile(`id="totp-secret">([A-Z2-7]+)<`).FindSubmatch(enrol)
	if m == nil {
		t.Fatalf("no secret on the enrolment page:\n%s", enrol)
	}
	code, err := totp.GenerateCode(string(m[1]), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if done := f.post("/account/totp/confirm", enrol, "code", code); !strings.Contains(string(done), "recovery codes") {
		t.Fatalf("confirmation:\n%s", done)
	}
	return string(m[1])
}

// loginWithTOTP signs user in with the password and then the TOTP code of
// secret for the next time step (the current one may have been spent by the
// enrolment), and fails unless it ends on the account page.
func loginWithTOTP(t *testing.T, base, user, pw, secret string) {
	t.Helper()
	f := newFormClient(t, base)
	step := f.login(user, pw)
	if !strings.Contains(string(step), `action="/login/totp"`) {
		t.Fatalf("no code step after the password:\n%s", step)
	}
	code, err := totp.GenerateCode(secret, time.Now().Add(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if page := f.post("/login/totp", step, "code", code); !strings.Contains(string(page), "<h1>Your account</h1>") {
		t.Fatalf("the code step did not end on the account page:\n%s", page)
	}
}
