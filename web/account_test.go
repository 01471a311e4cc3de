package web_test

// HTTP tests of the account page's actions: listing and ending sessions and
// changing the password, their CSRF protection, and the refusal of another
// user's session handle.

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/kgtest"
	"github.com/keygate/keygate/throttle"
)

// acLogin logs b in through the login form and checks it lands on /account.
func acLogin(t *testing.T, b *brBrowser, user, pw string) {
	t.Helper()
	hidden := brLoginPage(t, b.get(t, "/login"))
	r := b.submit(t, "/login", hidden, "username", user, "password", pw)
	if r.status != http.StatusSeeOther || r.hdr.Get("Location") != "/account" {
		t.Fatalf("login as %s: %s (Location %q)", user, r, r.hdr.Get("Location"))
	}
}

var (
	acHandles   = regexp.MustCompile(`data-handle="([0-9a-f]{8})"`)
	acEndable   = regexp.MustCompile(`name="session" value="([0-9a-f]{8})"`)
	acCSRFField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
)

// acPage is b's account page: its CSRF token, every session handle listed,
// and the handles that have an End button.
type acPage struct {
	body           string
	csrf           string
	handles, other []string
}

func acAccount(t *testing.T, b *brBrowser) acPage {
	t.Helper()
	return acAccountAt(t, b, "/account")
}

// acAccountAt is acAccount at path, e.g. where an action redirected to.
func acAccountAt(t *testing.T, b *brBrowser, path string) acPage {
	t.Helper()
	r := b.get(t, path)
	if r.status != http.StatusOK {
		t.Fatalf("GET /account: %s (Location %q)", r, r.hdr.Get("Location"))
	}
	p := acPage{body: string(r.body)}
	if m := acCSRFField.FindStringSubmatch(p.body); m != nil {
		p.csrf = m[1]
	}
	for _, m := range acHandles.FindAllStringSubmatch(p.body, -1) {
		p.handles = append(p.handles, m[1])
	}
	for _, m := range acEndable.FindAllStringSubmatch(p.body, -1) {
		p.other = append(p.other, m[1])
	}
	return p
}

// acLoggedOut checks that b's /account sends it to the login page.
func acLoggedOut(t *testing.T, b *brBrowser) {
	t.Helper()
	r := b.get(t, "/account")
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.hdr.Get("Location"), "/login") {
		t.Fatalf("GET /account: %s (Location %q), want a redirect to the login page", r, r.hdr.Get("Location"))
	}
}

func acDigest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// acFixture is alice logged in in two browsers, bob in a third, and the
// account page of alice's first browser.
type acFixture struct {
	e              *brEnv
	one, two, bobs *brBrowser
	p              acPage
	other          string // the handle of alice's other session
}

func TestAccountSessions(t *testing.T) {
	t.Parallel()
	e := newBrEnv(t, kgtest.Options{})
	f := &acFixture{e: e, one: e.browser(t), two: e.browser(t), bobs: e.browser(t)}
	acLogin(t, f.one, "alice", brAlicePW)
	acLogin(t, f.two, "alice", brAlicePW)
	acLogin(t, f.bobs, "bob", brBobPW)

	f.p = acAccount(t, f.one)
	if len(f.p.handles) != 2 || len(f.p.other) != 1 || strings.Count(f.p.body, "this browser") != 1 {
		t.Fatalf("account page lists %v, endable %v; want 2 sessions, 1 endable, 1 this browser:\n%s", f.p.handles, f.p.other, f.p.body)
	}
	for _, b := range []*brBrowser{f.one, f.two} {
		cookie := b.cookie("keygate_session")
		if strings.Contains(f.p.body, cookie) || strings.Contains(f.p.body, acDigest(cookie)) || strings.Contains(f.p.body, acDigest(cookie)[:8]) {
			t.Error("the account page shows a session id or its digest")
		}
	}
	f.other = f.p.other[0]

	t.Run("CSRF token missing or wrong", f.csrfRefused)
	t.Run("another user's handle is refused", f.foreignHandleRefused)
	t.Run("the current session cannot be ended as another", f.currentRefused)
	t.Run("end one session", f.endOne)
	t.Run("end all other sessions", f.endOthers)
}

func (f *acFixture) csrfRefused(t *testing.T) {
	for _, csrf := range []string{"", strings.Repeat("x", 32)} {
		for path, form := range map[string]url.Values{
			"/account/sessions/end":        {"csrf": {csrf}, "session": {f.other}},
			"/account/sessions/end-others": {"csrf": {csrf}},
			"/account/password": {"csrf": {csrf}, "current_password": {brAlicePW},
				"new_password": {"a brand new passphrase"}, "new_password2": {"a brand new passphrase"}},
		} {
			brWantPage(t, f.one.post(t, path, form), http.StatusForbidden, "did not come from this site")
		}
	}
	if got := acAccount(t, f.two); len(got.handles) != 2 {
		t.Errorf("after refused forms the other browser sees %d sessions", len(got.handles))
	}
	if r := f.e.token(t, "pwonly", "grant_type", "password", "username", "alice", "password", brAlicePW, "scope", "openid"); r.status != http.StatusOK {
		t.Errorf("the password changed: %s", r)
	}
}

func (f *acFixture) foreignHandleRefused(t *testing.T) {
	bp := acAccount(t, f.bobs)
	r := f.bobs.post(t, "/account/sessions/end", url.Values{"csrf": {bp.csrf}, "session": {f.other}})
	brWantPage(t, r, http.StatusNotFound, "not one of yours")
	for _, h := range []string{"", "zzzzzzzz", f.p.handles[0] + "0", acDigest(f.two.cookie("keygate_session"))} {
		r := f.one.post(t, "/account/sessions/end", url.Values{"csrf": {f.p.csrf}, "session": {h}})
		brWantPage(t, r, http.StatusNotFound, "not one of yours")
	}
	acAccount(t, f.two) // still logged in
	acAccount(t, f.bobs)
}

func (f *acFixture) currentRefused(t *testing.T) {
	cur := ""
	for _, h := range f.p.handles {
		if h != f.other {
			cur = h
		}
	}
	r := f.one.post(t, "/account/sessions/end", url.Values{"csrf": {f.p.csrf}, "session": {cur}})
	brWantPage(t, r, http.StatusNotFound, "not one of yours")
	acAccount(t, f.one)
}

func (f *acFixture) endOne(t *testing.T) {
	r := f.one.post(t, "/account/sessions/end", url.Values{"csrf": {f.p.csrf}, "session": {f.other}})
	if r.status != http.StatusSeeOther || r.hdr.Get("Location") != "/account?done=session-ended" {
		t.Fatalf("end session: %s (Location %q)", r, r.hdr.Get("Location"))
	}
	acLoggedOut(t, f.two)
	after := acAccountAt(t, f.one, r.hdr.Get("Location"))
	if len(after.handles) != 1 || len(after.other) != 0 || strings.Contains(after.body, "End all other sessions") ||
		!strings.Contains(after.body, "The session has ended.") {
		t.Errorf("after ending it the page lists %v", after.handles)
	}
	acAccount(t, f.bobs) // bob's session is untouched
}

func (f *acFixture) endOthers(t *testing.T) {
	three, four := f.e.browser(t), f.e.browser(t)
	acLogin(t, three, "alice", brAlicePW)
	acLogin(t, four, "alice", brAlicePW)
	f.e.clock.Advance(10 * time.Minute)
	before := acAccount(t, f.one)
	if len(before.handles) != 3 {
		t.Fatalf("want 3 sessions, got %v", before.handles)
	}
	old := f.one.cookie("keygate_session")
	r := f.one.post(t, "/account/sessions/end-others", url.Values{"csrf": {before.csrf}})
	if r.status != http.StatusSeeOther || r.hdr.Get("Location") != "/account?done=others-ended" {
		t.Fatalf("end others: %s (Location %q)", r, r.hdr.Get("Location"))
	}
	if now := f.one.cookie("keygate_session"); now == "" || now == old {
		t.Error("the session was not rotated")
	}
	acLoggedOut(t, three)
	acLoggedOut(t, four)
	stale := f.e.browser(t)
	stale.setCookie("keygate_session", old)
	acLoggedOut(t, stale)
	after := acAccountAt(t, f.one, r.hdr.Get("Location"))
	if len(after.handles) != 1 || !strings.Contains(after.body, "Every other session has ended.") {
		t.Errorf("after ending the others: %v\n%s", after.handles, after.body)
	}
	acAccount(t, f.bobs)
}

func TestAccountPasswordChange(t *testing.T) {
	t.Parallel()
	e := newBrEnv(t, kgtest.Options{UserLimits: throttle.Limits{Burst: 3, Every: time.Minute}})
	const newPW = "alice's brand new passphrase"
	one, two := e.browser(t), e.browser(t)
	acLogin(t, one, "alice", brAlicePW)
	// The other browser signs in to an application, which keeps a refresh token.
	verifier, challenge := brPKCE("account")
	code := two.login(t, brAuthParams("webapp", brAppCB, challenge), "alice", brAlicePW)
	tokens := e.exchange(t, "webapp", code, brAppCB, verifier)
	if tokens.RefreshToken == "" {
		t.Fatal("no refresh token")
	}
	change := func(current, pw, again string) reply {
		t.Helper()
		p := acAccount(t, one)
		return one.post(t, "/account/password", url.Values{"csrf": {p.csrf}, "current_password": {current},
			"new_password": {pw}, "new_password2": {again}})
	}

	brWantPage(t, change(brAlicePW, newPW, newPW+"x"), http.StatusBadRequest, "The two new passwords differ.")
	brWantPage(t, change(brAlicePW, "short", "short"), http.StatusBadRequest, "must be at least 8 characters")
	brWantPage(t, change(brAlicePW, "", ""), http.StatusBadRequest, "Enter your current password")
	brWantPage(t, change("wrong password", newPW, newPW), http.StatusBadRequest, "Your current password is not right.")
	brWantPage(t, change("wrong again!", newPW, newPW), http.StatusBadRequest, "Your current password is not right.")
	// The wrong current passwords were failed logins: one more and the account is throttled, even for the right one.
	brWantPage(t, change("third wrong", newPW, newPW), http.StatusBadRequest, "Your current password is not right.")
	r := change(brAlicePW, newPW, newPW)
	brWantPage(t, r, http.StatusTooManyRequests, "Too many failed attempts")
	if r.hdr.Get("Retry-After") == "" {
		t.Error("throttled without Retry-After")
	}
	acAccount(t, two) // nothing changed yet
	e.clock.Advance(5 * time.Minute)

	old := one.cookie("keygate_session")
	r = change(brAlicePW, newPW, newPW)
	if r.status != http.StatusSeeOther || r.hdr.Get("Location") != "/account?done=password" {
		t.Fatalf("change password: %s (Location %q)", r, r.hdr.Get("Location"))
	}
	if now := one.cookie("keygate_session"); now == "" || now == old {
		t.Error("the session was not rotated")
	}
	p := acAccountAt(t, one, r.hdr.Get("Location"))
	if !strings.Contains(p.body, "Your password has been changed.") || len(p.handles) != 1 {
		t.Errorf("after the change: sessions %v\n%s", p.handles, p.body)
	}
	acLoggedOut(t, two)
	brWantOAuthError(t, e.token(t, "webapp", "grant_type", "refresh_token", "refresh_token", tokens.RefreshToken),
		http.StatusBadRequest, "invalid_grant", "")

	fresh := e.browser(t)
	hidden := brLoginPage(t, fresh.get(t, "/login"))
	brWantPage(t, fresh.submit(t, "/login", hidden, "username", "alice", "password", brAlicePW), http.StatusOK, "Invalid username or password.")
	acLogin(t, fresh, "alice", newPW)
}
