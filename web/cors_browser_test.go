package web_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/keygate/keygate/idp"
	"github.com/keygate/keygate/internal/kgtest"
)

// corsPage is a single-page app: it fetch()es Keygate's /token (a refresh,
// no preflight) or /userinfo (with Authorization: a preflight first) as the
// fragment says, and shows the JSON it read or the error fetch gave.
const corsPage = `<!doctype html><title>SPA</title><body><script>
const p = new URLSearchParams(location.hash.slice(1));
const show = s => { const d = document.createElement('pre'); d.id = 'result'; d.textContent = s; document.body.append(d); };
const req = p.get('what') === 'token'
  ? fetch(p.get('issuer') + '/token', {method: 'POST', body: new URLSearchParams({grant_type: 'refresh_token', client_id: 'spa', refresh_token: p.get('rt')})})
  : fetch(p.get('issuer') + '/userinfo', {headers: {Authorization: 'Bearer ' + p.get('at')}});
req.then(r => r.json()).then(j => show('read ' + JSON.stringify(j)), e => show('failed ' + e));
</script></body>`

// TestBrowserCORS: in real Chromium, a page at the client's allowed origin
// reads /token and /userinfo; the same page at another origin cannot.
func TestBrowserCORS(t *testing.T) {
	t.Parallel()
	newTab := startChromium(t)
	e := newBrEnv(t, kgtest.Options{})
	page := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, corsPage)
	})
	allowed, other := httptest.NewServer(page), httptest.NewServer(page)
	t.Cleanup(allowed.Close)
	t.Cleanup(other.Close)
	cb := allowed.URL + "/cb"
	spa := &idp.Client{ID: "spa", Public: true, GrantTypes: []string{idp.GrantAuthorizationCode, idp.GrantRefreshToken},
		Scopes: []string{"openid", "profile"}, RedirectURIs: []string{cb}, AllowedOrigins: []string{allowed.URL}}
	if _, err := e.IDP.Directory().RegisterClient(t.Context(), spa, false); err != nil {
		t.Fatal(err)
	}
	verifier, challenge := brPKCE("browser-cors")
	code := e.browser(t).login(t, brAuthParams("spa", cb, challenge, "scope", "openid profile"), "alice", brAlicePW)
	tr := e.exchange(t, "spa", code, cb, verifier)

	run := func(t *testing.T, origin, what string) string {
		t.Helper()
		frag := url.Values{"issuer": {e.URL}, "what": {what}, "rt": {tr.RefreshToken}, "at": {tr.AccessToken}}
		tab := newTab(t)
		do(t, tab, "run the page", chromedp.Navigate(origin+"/#"+frag.Encode()), chromedp.WaitVisible(chromedp.CSS(`#result`)))
		return text(t, tab, "#result")
	}
	t.Run("allowed origin reads userinfo", func(t *testing.T) {
		if got := run(t, allowed.URL, "userinfo"); !strings.HasPrefix(got, "read ") || !strings.Contains(got, `"preferred_username":"alice"`) {
			t.Errorf("page shows %q", got)
		}
	})
	t.Run("other origin cannot read userinfo", func(t *testing.T) {
		if got := run(t, other.URL, "userinfo"); !strings.HasPrefix(got, "failed TypeError") {
			t.Errorf("page shows %q, want a failed fetch", got)
		}
	})
	t.Run("allowed origin refreshes at /token", func(t *testing.T) {
		got := run(t, allowed.URL, "token")
		if !strings.HasPrefix(got, "read ") || !strings.Contains(got, `"access_token":`) || !strings.Contains(got, `"refresh_token":`) {
			t.Errorf("page shows %q", got)
		}
	})
	t.Run("other origin cannot read /token", func(t *testing.T) {
		if got := run(t, other.URL, "token"); !strings.HasPrefix(got, "failed TypeError") {
			t.Errorf("page shows %q, want a failed fetch", got)
		}
	})
}
