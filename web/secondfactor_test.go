package web_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/keygate/keygate/idp"
	"github.com/keygate/keygate/internal/kgtest"
	"github.com/keygate/keygate/internal/stampede"
	"github.com/keygate/keygate/throttle"
)

var (
	sfSecret   = regexp.MustCompile(`id="totp-secret">([A-Z2-7]+)<`)
	sfRecovery = regexp.MustCompile(`<li><code>([A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4})</code></li>`)
	sfContinue = regexp.MustCompile(`<a class="button" href="([^"]+)">Continue</a>`)
)

// sfCode is the code an authenticator app shows for secret at at,
// computed by pquerna/otp in the test.
func sfCode(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	code, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// sfEnrolPage checks r is the enrolment page and returns its secret and
// hidden fields; the QR code it shows is a PNG the browser can load.
func sfEnrolPage(t *testing.T, b *brBrowser, r reply) (string, url.Values) {
	t.Helper()
	hidden := brFormPage(t, r, "the enrolment page", "Set up two-factor authentication")
	m := sfSecret.FindStringSubmatch(string(r.body))
	if m == nil {
		t.Fatalf("no secret on the enrolment page: %s", r)
	}
	qr := b.get(t, "/totp/qr.png")
	if qr.status != http.StatusOK || qr.hdr.Get("Content-Type") != "image/png" || !strings.HasPrefix(string(qr.body), "\x89PNG") ||
		qr.hdr.Get("Cache-Control") != "no-store" {
		t.Errorf("QR code: %d %s %q", qr.status, qr.hdr.Get("Content-Type"), qr.hdr.Get("Cache-Control"))
	}
	return m[1], hidden
}

// sfRecoveryPage checks r shows ten recovery codes and returns them and
// where Continue leads.
func sfRecoveryPage(t *testing.T, r reply) ([]string, string) {
	t.Helper()
	var codes []string
	for _, m := range sfRecovery.FindAllStringSubmatch(string(r.body), -1) {
		codes = append(codes, m[1])
	}
	next := sfContinue.FindStringSubmatch(string(r.body))
	if r.status != http.StatusOK || len(codes) != idp.RecoveryCodeCount || next == nil {
		t.Fatalf("want the recovery codes page with %d codes, got %s", idp.RecoveryCodeCount, r)
	}
	return codes, strings.ReplaceAll(next[1], "&amp;", "&")
}

// sfEnrolFromAccount logs user in with a password and turns TOTP on from
// /account; it returns the secret and the recovery codes.
func sfEnrolFromAccount(t *testing.T, e *brEnv, user, pw string) (string, []string) {
	t.Helper()
	b := e.browser(t)
	hidden := brLoginPage(t, b.get(t, "/login"))
	if r := b.submit(t, "/login", hidden, "username", user, "password", pw); r.status != http.StatusSeeOther {
		t.Fatalf("password login: %s", r)
	}
	account := b.get(t, "/account")
	hidden = brFormPage(t, account, "the account page", `action="/account/totp/start"`)
	secret, hidden := sfEnrolPage(t, b, b.submit(t, "/account/totp/start", hidden))
	brWantPage(t, b.submit(t, "/account/totp/confirm", hidden, "code", "000000"), http.StatusOK, "That code is not valid")
	codes, next := sfRecoveryPage(t, b.submit(t, "/account/totp/confirm", hidden, "code", sfCode(t, secret, e.clock.Now())))
	if next != "/account?done=totp-on" {
		t.Errorf("continue to %q", next)
	}
	brWantPage(t, b.get(t, next), http.StatusOK, "10 recovery codes left")
	return secret, codes
}

// sfPassword runs /authorize (params) and the password form, and returns
// the reply to the password.
func sfPassword(t *testing.T, b *brBrowser, params url.Values, user, pw string) reply {
	t.Helper()
	hidden := brLoginPage(t, b.get(t, "/authorize?"+params.Encode()))
	return b.submit(t, "/login", hidden, "username", user, "password", pw)
}

// sfCodePage checks r is the code step and returns its hidden fields.
func sfCodePage(t *testing.T, r reply) url.Values {
	t.Helper()
	return brFormPage(t, r, "the code step", `action="/login/totp"`)
}

// TestSecondFactorLogin: TOTP enrolled from /account; a code flow then asks
// for the code after the password, and the ID token (checked by go-oidc)
// says how the user logged in. A replayed code and a spent recovery code
// are refused.
func TestSecondFactorLogin(t *testing.T) {
	t.Parallel()
	e := newBrEnv(t, kgtest.Options{})
	secret, recovery := sfEnrolFromAccount(t, e, "alice", brAlicePW)
	e.clock.Advance(30 * time.Second)

	verifier, challenge := brPKCE("mfa")
	params := brAuthParams("webapp", brAppCB, challenge)
	b := e.browser(t)
	hidden := sfCodePage(t, sfPassword(t, b, params, "alice", brAlicePW))
	if b.cookie("keygate_session") != "" {
		t.Error("a session before the second factor")
	}
	brWantPage(t, b.submit(t, "/login/totp", hidden, "code", "000000"), http.StatusOK, "That code is not valid")
	used := sfCode(t, secret, e.clock.Now())
	code := e.wantCodeRedirect(t, b.submit(t, "/login/totp", hidden, "code", used), brAppCB, params.Get("state"))
	tr := e.exchange(t, "webapp", code, brAppCB, verifier)
	_, claims := e.verifyIDToken(t, "webapp", tr.IDToken, tr.AccessToken)
	if amr, _ := claims["amr"].([]any); !slices.Equal(amr, []any{"pwd", "otp", "mfa"}) || claims["acr"] != idp.ACRMultiFactor {
		t.Errorf("id_token amr %v acr %v, want [pwd otp mfa] %s", claims["amr"], claims["acr"], idp.ACRMultiFactor)
	}
	// The pending login is spent: its form cannot finish a second login.
	brWantPage(t, b.submit(t, "/login/totp", hidden, "code", used), http.StatusBadRequest, "expired")

	t.Run("replayed code", func(t *testing.T) {
		b := e.browser(t)
		hidden := sfCodePage(t, sfPassword(t, b, params, "alice", brAlicePW))
		brWantPage(t, b.submit(t, "/login/totp", hidden, "code", used), http.StatusOK, "That code is not valid")
	})
	t.Run("recovery code once", func(t *testing.T) {
		e.clock.Advance(2 * time.Minute) // the failure above is regained
		b := e.browser(t)
		hidden := sfCodePage(t, sfPassword(t, b, params, "alice", brAlicePW))
		e.wantCodeRedirect(t, b.submit(t, "/login/totp", hidden, "code", strings.ToLower(recovery[0])), brAppCB, params.Get("state"))
		b = e.browser(t)
		hidden = sfCodePage(t, sfPassword(t, b, params, "alice", brAlicePW))
		brWantPage(t, b.submit(t, "/login/totp", hidden, "code", recovery[0]), http.StatusOK, "That code is not valid")
	})
	t.Run("wrong password never reaches the code step", func(t *testing.T) {
		brWantPage(t, sfPassword(t, e.browser(t), params, "alice", "wrong password!"), http.StatusOK, "Invalid username or password.")
	})
	t.Run("password grant refused", func(t *testing.T) {
		r := e.token(t, "pwonly", "grant_type", "password", "username", "alice", "password", brAlicePW)
		brWantOAuthError(t, r, http.StatusBadRequest, "invalid_grant", "second factor")
		if r := e.token(t, "pwonly", "grant_type", "password", "username", "bob", "password", brBobPW); r.status != http.StatusOK {
			t.Errorf("bob, without a second factor: %s", r)
		}
	})
	t.Run("removal needs a code", func(t *testing.T) {
		e.clock.Advance(2 * time.Minute)
		b := e.browser(t)
		hidden := sfCodePage(t, sfPassword(t, b, params, "alice", brAlicePW))
		e.wantCodeRedirect(t, b.submit(t, "/login/totp", hidden, "code", sfCode(t, secret, e.clock.Now())), brAppCB, params.Get("state"))
		hidden = brFormPage(t, b.get(t, "/account"), "the account page", `action="/account/totp/remove"`)
		brWantPage(t, b.submit(t, "/account/totp/remove", hidden, "code", "111111"), http.StatusOK, "still on")
		e.clock.Advance(30 * time.Second)
		r := b.submit(t, "/account/totp/remove", hidden, "code", sfCode(t, secret, e.clock.Now()))
		if r.status != http.StatusSeeOther || r.hdr.Get("Location") != "/account?done=totp-off" {
			t.Fatalf("removal: %s", r)
		}
		e.wantCodeRedirect(t, sfPassword(t, e.browser(t), params, "alice", brAlicePW), brAppCB, params.Get("state"))
	})
}

// TestSecondFactorThrottleHTTP: wrong codes posted at once reach
// verification at most user_burst times; while the code step is locked, the
// password step answers exactly as before (the code page for the right
// password, "invalid" for a wrong one), so the lockout reveals nothing about
// the password; a correct password does not unlock the code step.
func TestSecondFactorThrottleHTTP(t *testing.T) {
	t.Parallel()
	e := newBrEnv(t, kgtest.Options{UserLimits: throttle.Limits{Burst: 3, Every: time.Hour}})
	secret, _ := sfEnrolFromAccount(t, e, "alice", brAlicePW)
	e.clock.Advance(30 * time.Second)
	params := brAuthParams("conf", brConfCB, "")
	b := e.browser(t)
	hidden := sfCodePage(t, sfPassword(t, b, params, "alice", brAlicePW))
	replies := stampede.Run(20, func(int) reply { return b.submit(t, "/login/totp", hidden, "code", "000000") })
	checked := 0
	for _, r := range replies {
		switch r.status {
		case http.StatusOK:
			checked++
		case http.StatusTooManyRequests:
			if r.hdr.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
		default:
			t.Errorf("unexpected %s", r)
		}
	}
	if checked > 3 {
		t.Errorf("%d of 20 concurrent wrong codes were checked, want at most the burst, 3", checked)
	}
	// The password step is unchanged by the lockout.
	fresh := e.browser(t)
	right := sfPassword(t, fresh, params, "alice", brAlicePW)
	sfCodePage(t, right)
	brWantPage(t, sfPassword(t, e.browser(t), params, "alice", "a wrong password"), http.StatusOK, "Invalid username or password.")
	// ... and the right code is refused until the bucket refills.
	h := brHiddenFields(t, right)
	brWantPage(t, fresh.submit(t, "/login/totp", h, "code", sfCode(t, secret, e.clock.Now())), http.StatusTooManyRequests, "Too many failed attempts")
}

// TestSecondFactorDemanded: acr_values=urn:keygate:acr:mfa sends a user
// without TOTP to enrol after the password, even with a live password
// session; the login policy does the same for every login.
func TestSecondFactorDemanded(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		policy idp.SecondFactorPolicy
		acr    string
	}{
		{"acr_values", "", idp.ACRMultiFactor},
		{"policy all", idp.SecondFactorAll, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newBrEnv(t, kgtest.Options{SecondFactor: c.policy})
			b := e.browser(t)
			verifier, challenge := brPKCE("bob")
			params := brAuthParams("webapp", brAppCB, challenge)
			if c.acr != "" {
				// A password session first: not enough for the app.
				e.wantCodeRedirect(t, sfPassword(t, b, params, "bob", brBobPW), brAppCB, params.Get("state"))
				params.Set("acr_values", c.acr)
			}
			secret, hidden := sfEnrolPage(t, b, sfPassword(t, b, params, "bob", brBobPW))
			_, next := sfRecoveryPage(t, b.submit(t, "/login/totp/enrol", hidden, "code", sfCode(t, secret, e.clock.Now())))
			code := e.wantCodeRedirect(t, b.get(t, next), brAppCB, params.Get("state"))
			tr := e.exchange(t, "webapp", code, brAppCB, verifier)
			if _, claims := e.verifyIDToken(t, "webapp", tr.IDToken, tr.AccessToken); claims["acr"] != idp.ACRMultiFactor {
				t.Errorf("acr %v, want %s", claims["acr"], idp.ACRMultiFactor)
			}
		})
	}
}

// TestResetMFAAdminAPI: the admin API removes a user's second factor; the
// next login asks for the password only.
func TestResetMFAAdminAPI(t *testing.T) {
	t.Parallel()
	token := strings.Repeat("a", 40)
	e := newBrEnv(t, kgtest.Options{AdminToken: token})
	sfEnrolFromAccount(t, e, "alice", brAlicePW)
	params := brAuthParams("conf", brConfCB, "")
	sfCodePage(t, sfPassword(t, e.browser(t), params, "alice", brAlicePW))
	auth := map[string]string{"Authorization": "Bearer " + token}
	// The user list shows the second factor, read-only, before and after.
	aliceFactor := func() map[string]any {
		r := send(t, e.URL, request{method: http.MethodGet, path: "/admin/users", hdr: auth})
		var list struct{ Users []map[string]any }
		if err := json.Unmarshal(r.body, &list); err != nil {
			t.Fatalf("GET /admin/users: %s: %v", r, err)
		}
		for _, u := range list.Users {
			if u["username"] == "alice" {
				sf, _ := u["second_factor"].(map[string]any)
				return sf
			}
		}
		t.Fatalf("no alice in %s", r.body)
		return nil
	}
	if sf := aliceFactor(); sf["totp"] != true || sf["recovery_codes_left"].(float64) < 1 || sf["passkeys"] != float64(0) {
		t.Errorf("second_factor of an enrolled user: %v", sf)
	}
	defer func() {
		if sf := aliceFactor(); sf["totp"] != false || sf["recovery_codes_left"] != float64(0) {
			t.Errorf("second_factor after reset-mfa: %v", sf)
		}
	}()
	for _, want := range []string{`"removed":true`, `"removed":false`} {
		r := send(t, e.URL, request{method: http.MethodPost, path: "/admin/users/alice/reset-mfa", hdr: auth})
		if r.status != http.StatusOK || !strings.Contains(string(r.body), want) {
			t.Errorf("reset-mfa: %s, want %s", r, want)
		}
	}
	if r := send(t, e.URL, request{method: http.MethodPost, path: "/admin/users/nobody/reset-mfa", hdr: auth}); r.status != http.StatusNotFound {
		t.Errorf("reset-mfa of an unknown user: %s", r)
	}
	e.wantCodeRedirect(t, sfPassword(t, e.browser(t), params, "alice", brAlicePW), brConfCB, params.Get("state"))
}

// sfLoginWithCode signs user in on a new browser with the password and
// code, ending on /account, and returns the browser.
func sfLoginWithCode(t *testing.T, e *brEnv, user, pw, code string) *brBrowser {
	t.Helper()
	b := e.browser(t)
	hidden := brLoginPage(t, b.get(t, "/login"))
	hidden = sfCodePage(t, b.submit(t, "/login", hidden, "username", user, "password", pw))
	if r := b.submit(t, "/login/totp", hidden, "code", code); r.status != http.StatusSeeOther {
		t.Fatalf("code step: %s", r)
	}
	return b
}

// TestNewRecoveryCodesHTTP: /account shows how many recovery codes are
// left; "New recovery codes" needs a current code (a wrong one changes
// nothing), shows ten new codes once, and from then on every old code is
// refused and the new ones work; the change is audit-logged.
func TestNewRecoveryCodesHTTP(t *testing.T) {
	t.Parallel()
	logs := &kgtest.LogBuffer{}
	e := newBrEnv(t, kgtest.Options{Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	_, old := sfEnrolFromAccount(t, e, "alice", brAlicePW)
	b := sfLoginWithCode(t, e, "alice", brAlicePW, old[0])
	account := b.get(t, "/account")
	brWantPage(t, account, http.StatusOK, "9 recovery codes left")
	hidden := brFormPage(t, account, "the account page", `action="/account/totp/recovery-codes"`)
	brWantPage(t, b.submit(t, "/account/totp/recovery-codes", hidden, "code", "000000"), http.StatusOK, "have not changed")
	brWantPage(t, b.submit(t, "/account/totp/recovery-codes", hidden, "code", old[0]), http.StatusOK, "have not changed") // spent
	fresh, next := sfRecoveryPage(t, b.submit(t, "/account/totp/recovery-codes", hidden, "code", old[1]))
	if next != "/account?done=recovery-codes" {
		t.Errorf("continue to %q", next)
	}
	if slices.ContainsFunc(fresh, func(c string) bool { return slices.Contains(old, c) }) {
		t.Error("a new recovery code equals an old one")
	}
	page := b.get(t, next)
	brWantPage(t, page, http.StatusOK, "the old ones no longer work")
	brWantPage(t, page, http.StatusOK, "10 recovery codes left")
	if !strings.Contains(logs.String(), `"msg":"recovery codes replaced by their user"`) {
		t.Errorf("no audit line:\n%s", logs)
	}
	e.clock.Advance(2 * time.Minute) // the refused codes above are regained
	for _, c := range old[2:4] {
		b := e.browser(t)
		hidden := sfCodePage(t, b.submit(t, "/login", brLoginPage(t, b.get(t, "/login")), "username", "alice", "password", brAlicePW))
		brWantPage(t, b.submit(t, "/login/totp", hidden, "code", c), http.StatusOK, "That code is not valid")
	}
	e.clock.Advance(2 * time.Minute)
	sfLoginWithCode(t, e, "alice", brAlicePW, fresh[0])
}
