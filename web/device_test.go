package web_test

// The device authorization grant (RFC 8628) over HTTP: /device/code, the
// verification page /device and the device_code grant at /token, with an
// injected clock; and, in real headless Chromium, a user approving a device
// while a goroutine polls as the device would.

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/keygate/keygate/idp"
	"github.com/keygate/keygate/internal/kgtest"
	"github.com/keygate/keygate/internal/stampede"
	"github.com/keygate/keygate/throttle"
)

// tvClient is a public device client.
func tvClient() *idp.Client {
	return &idp.Client{ID: "tv", Name: "Living-room TV", Public: true, GrantTypes: []string{idp.GrantDeviceCode, idp.GrantRefreshToken},
		Scopes: []string{"openid", "profile", "email"}}
}

// deviceAuth is /device/code's answer.
type deviceAuth struct {
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete"`
	ExpiresIn               int    `json:"expires_in"`
	Interval                int    `json:"interval"`
}

func startDevice(t *testing.T, base, client, scope string) deviceAuth {
	t.Helper()
	r := send(t, base, request{path: "/device/code", form: formOf("client_id", client, "scope", scope)})
	if r.status != http.StatusOK || r.hdr.Get("Cache-Control") != "no-store" {
		t.Fatalf("/device/code: %s", r)
	}
	var da deviceAuth
	if err := json.Unmarshal(r.body, &da); err != nil {
		t.Fatal(err)
	}
	return da
}

func TestDeviceFlowHTTP(t *testing.T) {
	e := newBrEnv(t, kgtest.Options{UserLimits: throttle.Limits{Burst: 3, Every: time.Minute}})
	if _, err := e.IDP.Directory().RegisterClient(t.Context(), tvClient(), false); err != nil {
		t.Fatal(err)
	}
	disc := send(t, e.URL, request{method: http.MethodGet, path: "/.well-known/openid-configuration"}).object(t)
	grants, _ := disc["grant_types_supported"].([]any)
	if disc["device_authorization_endpoint"] != e.URL+"/device/code" || !slices.Contains(grants, any(idp.GrantDeviceCode)) {
		t.Errorf("discovery: device_authorization_endpoint %v, grant_types_supported %v", disc["device_authorization_endpoint"], grants)
	}
	brWantOAuthError(t, send(t, e.URL, request{path: "/device/code", form: formOf("client_id", "webapp")}),
		http.StatusBadRequest, "unauthorized_client", "device_code")
	brWantOAuthError(t, send(t, e.URL, request{path: "/device/code", form: formOf("client_id", "tv", "scope", "admin")}),
		http.StatusBadRequest, "invalid_scope", "admin")

	da := startDevice(t, e.URL, "tv", "openid profile")
	if da.VerificationURI != e.URL+"/device" || da.VerificationURIComplete != e.URL+"/device?user_code="+da.UserCode ||
		da.ExpiresIn != 600 || da.Interval != 5 || len(da.UserCode) != 9 {
		t.Errorf("device authorization %+v", da)
	}
	poll := func() reply {
		return e.token(t, "tv", "grant_type", idp.GrantDeviceCode, "device_code", da.DeviceCode)
	}
	brWantOAuthError(t, poll(), http.StatusBadRequest, "authorization_pending", "")
	brWantOAuthError(t, poll(), http.StatusBadRequest, "slow_down", "10 seconds")

	b := e.browser(t)
	complete := "/device?user_code=" + da.UserCode
	r := b.get(t, complete)
	if loc := r.location(t); r.status != http.StatusSeeOther || loc.Path != "/login" || loc.Query().Get("return_to") != complete {
		t.Fatalf("not logged in: %s, Location %s; want the login page returning to %s", r, loc, complete)
	}
	r = b.submit(t, "/login", brLoginPage(t, b.get(t, r.location(t).String())), "username", "alice", "password", brAlicePW)
	if loc := r.location(t); loc.String() != complete {
		t.Fatalf("after login: Location %s, want %s", loc, complete)
	}
	page := b.get(t, complete)
	brWantPage(t, page, http.StatusOK, `value="`+da.UserCode+`"`)
	hidden := brHiddenFields(t, page)
	brWantPage(t, b.post(t, "/device", formOf("user_code", da.UserCode)), http.StatusForbidden, "did not come from this site")
	confirm := b.submit(t, "/device", hidden, "user_code", strings.ToLower(da.UserCode))
	for _, want := range []string{"Living-room TV", da.UserCode, "<li>openid</li><li>profile</li>", `value="approve"`} {
		brWantPage(t, confirm, http.StatusOK, want)
	}
	brWantPage(t, b.submit(t, "/device", brHiddenFields(t, confirm), "action", "approve"), http.StatusOK, "Device connected")

	e.clock.Advance(10 * time.Second)
	tr := poll()
	tok := checkTokenResponse(t, tr)
	_, claims := e.verifyIDToken(t, "tv", tr.object(t)["id_token"].(string), tok.AccessToken)
	if claims["preferred_username"] != "alice" || tr.object(t)["refresh_token"] == nil {
		t.Errorf("id_token claims %v, response %s", claims, tr)
	}
	e.clock.Advance(10 * time.Second)
	brWantOAuthError(t, poll(), http.StatusBadRequest, "invalid_grant", "already used")

	t.Run("denied", func(t *testing.T) {
		da2 := startDevice(t, e.URL, "tv", "")
		confirm := b.submit(t, "/device", hidden, "user_code", da2.UserCode)
		brWantPage(t, b.submit(t, "/device", brHiddenFields(t, confirm), "action", "deny"), http.StatusOK, "Device not connected")
		brWantOAuthError(t, e.token(t, "tv", "grant_type", idp.GrantDeviceCode, "device_code", da2.DeviceCode),
			http.StatusBadRequest, "access_denied", "")
	})
	t.Run("expired", func(t *testing.T) {
		da3 := startDevice(t, e.URL, "tv", "openid")
		e.clock.Advance(idp.DeviceCodeTTL)
		brWantPage(t, b.submit(t, "/device", hidden, "user_code", da3.UserCode), http.StatusOK, "not valid")
		brWantOAuthError(t, e.token(t, "tv", "grant_type", idp.GrantDeviceCode, "device_code", da3.DeviceCode),
			http.StatusBadRequest, "expired_token", "")
	})
	t.Run("guessing is throttled", func(t *testing.T) {
		e.clock.Advance(time.Minute) // the expired code's miss is paid back
		da4 := startDevice(t, e.URL, "tv", "openid")
		for _, guess := range []string{"BBBB-BBBB", "CCCC-CCCC", "DDDD-DDDD"} {
			brWantPage(t, b.submit(t, "/device", hidden, "user_code", guess), http.StatusOK, "not valid")
		}
		r := b.submit(t, "/device", hidden, "user_code", da4.UserCode) // even the right one, now
		brWantPage(t, r, http.StatusTooManyRequests, "Too many wrong codes")
		if r.hdr.Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
		brWantPage(t, b.submit(t, "/device", hidden, "user_code", da4.UserCode, "action", "approve"), http.StatusTooManyRequests, "Too many")
		e.clock.Advance(time.Minute)
		brWantPage(t, b.submit(t, "/device", hidden, "user_code", da4.UserCode), http.StatusOK, "Living-room TV")
	})
}

// pollDevice polls /token as a device would, every interval (longer after
// slow_down), until it gets tokens or another error, and returns the last
// answer.
func pollDevice(ctx context.Context, t *testing.T, base string, da deviceAuth) (map[string]any, error) {
	interval := time.Duration(da.Interval) * time.Second
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(interval):
		}
		res, err := http.PostForm(base+"/token", url.Values{"grant_type": {idp.GrantDeviceCode}, "client_id": {"tv"},
			"device_code": {da.DeviceCode}})
		if err != nil {
			return nil, err
		}
		var body map[string]any
		err = json.NewDecoder(res.Body).Decode(&body)
		res.Body.Close()
		switch {
		case err != nil:
			return nil, err
		case body["error"] == "authorization_pending":
		case body["error"] == "slow_down":
			interval += 5 * time.Second
		default:
			return body, nil
		}
	}
}

// TestBrowserDeviceLogin: a device (a goroutine) starts a device
// authorization and polls; its user, in headless Chromium, opens the
// verification URI, logs in, enters the code, sees the client and the
// scopes, and allows it; the device gets its tokens. A second device is
// denied.
func TestBrowserDeviceLogin(t *testing.T) {
	t.Parallel()
	kg, newTab := startWithAlice(t)
	ctx := t.Context()
	if _, err := kg.IDP.Directory().RegisterClient(ctx, tvClient(), false); err != nil {
		t.Fatal(err)
	}
	type result struct {
		body map[string]any
		err  error
	}
	device := func(da deviceAuth) chan result {
		ch := make(chan result, 1)
		go func() {
			pctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			body, err := pollDevice(pctx, t, kg.URL, da)
			ch <- result{body, err}
		}()
		return ch
	}
	tab := newTab(t)

	da := startDevice(t, kg.URL, "tv", "openid profile")
	got := device(da)
	do(t, tab, "open the verification URI and log in",
		chromedp.Navigate(da.VerificationURI),
		chromedp.WaitVisible(chromedp.CSS(`input[name=username]`)))
	fillLogin(t, tab, "alice", brAlicePW)
	do(t, tab, "enter the code",
		chromedp.WaitVisible(chromedp.CSS(`#user_code`)),
		chromedp.SendKeys(chromedp.CSS(`#user_code`), strings.ToLower(da.UserCode)),
		chromedp.Click(chromedp.CSS(`#continue`)),
		chromedp.WaitVisible(chromedp.CSS(`#approve`)))
	if h, code, scopes := text(t, tab, "h1"), text(t, tab, "#user-code"), text(t, tab, "ul.scopes"); !strings.Contains(h, "Living-room TV") ||
		code != da.UserCode || !strings.Contains(scopes, "openid") || !strings.Contains(scopes, "profile") {
		t.Errorf("confirmation page: heading %q, code %q, scopes %q", h, code, scopes)
	}
	do(t, tab, "allow the device", chromedp.Click(chromedp.CSS(`#approve`)), chromedp.WaitVisible(chromedp.CSS(`p.notice`)))
	if h := text(t, tab, "h1"); h != "Device connected" {
		t.Errorf("after allowing: %q", h)
	}
	res := <-got
	if res.err != nil || res.body["access_token"] == nil || res.body["id_token"] == nil || res.body["refresh_token"] == nil {
		t.Fatalf("the device got %v, %v; want access, ID and refresh tokens", res.body, res.err)
	}
	claims, err := kg.IDP.ValidateAccessToken(ctx, res.body["access_token"].(string))
	alice, _ := kg.IDP.Directory().UserByLogin(ctx, "alice")
	if err != nil || claims.Subject != alice.ID || claims.ClientID != "tv" || claims.Scope != "openid profile" {
		t.Errorf("access token %+v, %v", claims, err)
	}

	// verification_uri_complete: the code is filled in; this time, deny.
	da2 := startDevice(t, kg.URL, "tv", "openid")
	got2 := device(da2)
	do(t, tab, "open the complete verification URI and deny",
		chromedp.Navigate(da2.VerificationURIComplete),
		chromedp.WaitVisible(chromedp.CSS(`#continue`)),
		chromedp.Click(chromedp.CSS(`#continue`)),
		chromedp.WaitVisible(chromedp.CSS(`#deny`)),
		chromedp.Click(chromedp.CSS(`#deny`)),
		chromedp.WaitVisible(chromedp.CSS(`p.notice`)))
	if res := <-got2; res.err != nil || res.body["error"] != "access_denied" {
		t.Errorf("the denied device got %v, %v; want access_denied", res.body, res.err)
	}
}

// TestDeviceCodeReuseRevokesTokens: a device code redeemed a second time
// has leaked, so the tokens of its first redemption are revoked, as for a
// reused authorization code (RFC 6749 §4.1.2); of concurrent redemptions
// one gets tokens, and the others revoke them.
func TestDeviceCodeReuseRevokesTokens(t *testing.T) {
	t.Parallel()
	e := newBrEnv(t, kgtest.Options{})
	if _, err := e.IDP.Directory().RegisterClient(t.Context(), tvClient(), false); err != nil {
		t.Fatal(err)
	}
	_, challenge := brPKCE("device reuse")
	b := e.browser(t)
	b.login(t, brAuthParams("webapp", brAppCB, challenge), "alice", brAlicePW)
	redeem := func(code string) reply {
		return e.token(t, "tv", "grant_type", idp.GrantDeviceCode, "device_code", code)
	}
	tokensOf := func(r reply) brTokens {
		var tr brTokens
		if r.status != http.StatusOK || json.Unmarshal(r.body, &tr) != nil || tr.RefreshToken == "" {
			t.Fatalf("device tokens: %s", r)
		}
		return tr
	}

	t.Run("second redemption", func(t *testing.T) {
		code := b.approveDevice(t, "tv", "openid profile")
		first := tokensOf(redeem(code))
		if !e.active(t, first.AccessToken) || !e.active(t, first.RefreshToken) {
			t.Fatal("the first tokens are not active")
		}
		brWantOAuthError(t, redeem(code), http.StatusBadRequest, "invalid_grant", "already used")
		for name, tok := range map[string]string{"access": first.AccessToken, "refresh": first.RefreshToken} {
			if e.active(t, tok) {
				t.Errorf("%s token of the first redemption still active after reuse", name)
			}
		}
		if status, _ := e.userinfo(t, first.AccessToken); status != http.StatusUnauthorized {
			t.Errorf("userinfo with a revoked token: %d", status)
		}
	})

	t.Run("concurrent redemptions", func(t *testing.T) {
		code := b.approveDevice(t, "tv", "openid")
		e.wantWinnerRevoked(t, stampede.Run(6, func(int) reply { return redeem(code) }))
	})
}
