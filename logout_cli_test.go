package main

import (
	"net/http"
	"net/url"
	"testing"
)

// TestCLIPostLogoutRedirectURI: `clients add/update --post-logout-redirect-uri`
// registers where the running server's end_session_endpoint may return the
// browser, matched exactly.
func TestCLIPostLogoutRedirectURI(t *testing.T) {
	t.Parallel()
	in := newInitialized(t, "")
	const bye, bye2 = "https://app.example/bye", "https://app.example/bye2"
	in.must(t, "clients", "add", "webapp", "--public", "--grant", "authorization_code", "--scope", "openid",
		"--redirect-uri", "https://app.example/cb", "--post-logout-redirect-uri", bye)
	srv := in.serve(t)
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	endSession := func(uri string) (int, string) {
		t.Helper()
		q := url.Values{"client_id": {"webapp"}, "post_logout_redirect_uri": {uri}, "state": {"s"}}
		res, err := c.Get(srv.url + "/end_session?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode, res.Header.Get("Location")
	}
	if st, loc := endSession(bye); st != http.StatusSeeOther || loc != bye+"?state=s" {
		t.Errorf("registered URI: %d %q", st, loc)
	}
	in.must(t, "clients", "update", "webapp", "--post-logout-redirect-uri", bye2)
	// Seen by the server within its client cache's check interval.
	waitFor(t, func() bool { st, _ := endSession(bye2); return st == http.StatusSeeOther }, "the server to see the updated client")
	if st, loc := endSession(bye); st != http.StatusBadRequest || loc != "" {
		t.Errorf("URI replaced by update: %d %q", st, loc)
	}
	if st, loc := endSession(bye2); st != http.StatusSeeOther || loc != bye2+"?state=s" {
		t.Errorf("URI set by update: %d %q", st, loc)
	}
	if _, errOut, err := in.run(t, nil, "clients", "update", "webapp", "--post-logout-redirect-uri", "/relative"); err == nil {
		t.Errorf("a relative post-logout redirect URI was accepted: %s", errOut)
	}
}
