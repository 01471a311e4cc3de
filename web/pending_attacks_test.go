package web_test

import (
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/idp"
	"github.com/keygate/keygate/internal/kgtest"
	"github.com/keygate/keygate/internal/stampede"
)

// Attacks on the half-done (pending) login and on TOTP enrolment; see
// docs/security.md, "Second factor (TOTP)".

// TestResetMFAEndsWhatTheFactorGranted: an operator's reset-mfa (the user
// lost the device) ends the user's sessions, pending logins included, and
// revokes their refresh tokens, so nothing on the lost device keeps an mfa
// login; a code step left open across the reset answers 400 "sign in
// again", never 500.
func TestResetMFAEndsWhatTheFactorGranted(t *testing.T) {
	t.Parallel()
	token := strings.Repeat("a", 40)
	e := newBrEnv(t, kgtest.Options{AdminToken: token})
	secret, _ := sfEnrolFromAccount(t, e, "alice", brAlicePW)
	e.clock.Advance(30 * time.Second)
	// The lost device: a browser with an mfa session, and an app with its tokens.
	verifier, challenge := brPKCE("lost")
	params := brAuthParams("webapp", brAppCB, challenge)
	device := e.browser(t)
	hidden := sfCodePage(t, sfPassword(t, device, params, "alice", brAlicePW))
	code := e.wantCodeRedirect(t, device.submit(t, "/login/totp", hidden, "code", sfCode(t, secret, e.clock.Now())), brAppCB, params.Get("state"))
	tr := e.exchange(t, "webapp", code, brAppCB, verifier)
	// A code step left open (the attacker knows the password, not the code).
	open := e.browser(t)
	openForm := sfCodePage(t, sfPassword(t, open, params, "alice", brAlicePW))

	if r := send(t, e.URL, request{method: http.MethodPost, path: "/admin/users/alice/reset-mfa",
		hdr: map[string]string{"Authorization": "Bearer " + token}}); r.status != http.StatusOK {
		t.Fatalf("reset-mfa: %s", r)
	}
	e.clock.Advance(30 * time.Second)
	brWantPage(t, open.submit(t, "/login/totp", openForm, "code", sfCode(t, secret, e.clock.Now())), http.StatusBadRequest, "Sign in again")
	if device.loggedIn(t) {
		t.Error("the lost device's session outlived reset-mfa")
	}
	r := e.token(t, "webapp", "grant_type", "refresh_token", "refresh_token", tr.RefreshToken)
	brWantOAuthError(t, r, http.StatusBadRequest, "invalid_grant", "")
	// prompt=none from the lost device's browser gets no code (no session).
	brWantErrorRedirect(t, device.get(t, "/authorize?"+brAuthParams("webapp", brAppCB, challenge, "prompt", "none").Encode()),
		brAppCB, "login_required", "st-webapp")
}

// TestEnrolmentRaces: the enrolment code of one pending login posted twice
// at once, and the confirmation on /account posted twice at once: one
// request enrols (the recovery codes are shown once), the others are told
// the step is over (400, or back to /account), none is a 500. A pending
// login of a user who already has TOTP cannot be finished by the
// enrolment form either.
func TestEnrolmentRaces(t *testing.T) {
	t.Parallel()
	e := newBrEnv(t, kgtest.Options{SecondFactor: idp.SecondFactorAll})
	t.Run("login enrolment", func(t *testing.T) {
		b := e.browser(t)
		secret, hidden := sfEnrolPage(t, b, sfPassword(t, b, brAuthParams("conf", brConfCB, ""), "bob", brBobPW))
		c := sfCode(t, secret, e.clock.Now())
		replies := stampede.Run(16, func(int) reply { return b.submit(t, "/login/totp/enrol", hidden, "code", c) })
		wantOneWinner(t, replies, http.StatusBadRequest)
	})
	t.Run("account enrolment", func(t *testing.T) {
		b := e.browser(t)
		secret, hidden := sfEnrolPage(t, b, sfPassword(t, b, brAuthParams("conf", brConfCB, ""), "alice", brAlicePW))
		sfRecoveryPage(t, b.submit(t, "/login/totp/enrol", hidden, "code", sfCode(t, secret, e.clock.Now())))
		// Alice removes it and starts again from /account, confirming twice at once.
		e.clock.Advance(30 * time.Second)
		form := brFormPage(t, b.get(t, "/account"), "the account page", `action="/account/totp/remove"`)
		if r := b.submit(t, "/account/totp/remove", form, "code", sfCode(t, secret, e.clock.Now())); r.status != http.StatusSeeOther {
			t.Fatalf("remove: %s", r)
		}
		form = brFormPage(t, b.get(t, "/account"), "the account page", `action="/account/totp/start"`)
		secret, form = sfEnrolPage(t, b, b.submit(t, "/account/totp/start", form))
		c := sfCode(t, secret, e.clock.Now())
		replies := stampede.Run(16, func(int) reply { return b.submit(t, "/account/totp/confirm", form, "code", c) })
		wantOneWinner(t, replies, http.StatusSeeOther)
		e.clock.Advance(30 * time.Second)
		wantEnrolFormRefused(t, e, secret)
	})
}

// wantEnrolFormRefused: the enrolment form of a pending login cannot finish
// it for a user (alice) who has TOTP (secret): 400, no session.
func wantEnrolFormRefused(t *testing.T, e *brEnv, secret string) {
	t.Run("enrolment form of a user with TOTP", func(t *testing.T) {
		b2 := e.browser(t)
		codeForm := sfCodePage(t, sfPassword(t, b2, brAuthParams("conf", brConfCB, ""), "alice", brAlicePW))
		brWantPage(t, b2.submit(t, "/login/totp/enrol", codeForm, "code", sfCode(t, secret, e.clock.Now())), http.StatusBadRequest, "Sign in again")
		if b2.loggedIn(t) {
			t.Error("the enrolment form finished a pending login of a user with TOTP")
		}
	})
}

// wantOneWinner checks that exactly one reply is the recovery codes page
// and every other has status loser, or is a 429 with Retry-After: the code
// check reserves a throttle token first, so a burst of confirmations beyond
// the throttle's burst is refused before any is checked.
func wantOneWinner(t *testing.T, replies []reply, loser int) {
	t.Helper()
	won := 0
	for _, r := range replies {
		switch {
		case r.status == http.StatusOK && sfRecovery.Match(r.body):
			won++
		case r.status == http.StatusTooManyRequests && r.hdr.Get("Retry-After") != "":
		case r.status != loser:
			t.Errorf("a concurrent confirmation: %s, want %d (or 429 with Retry-After)", r, loser)
		}
	}
	if won != 1 {
		t.Errorf("%d requests enrolled, want exactly 1", won)
	}
}

// TestSecondFactorLogsNoSecrets: a whole second-factor life (enrolment,
// wrong and right codes, a recovery code, a wrong password) logs none of
// the secrets it handles: the password, the TOTP secret, any code typed,
// the recovery codes, the pending login's and the session's cookies.
func TestSecondFactorLogsNoSecrets(t *testing.T) {
	t.Parallel()
	var logs kgtest.LogBuffer
	e := newBrEnv(t, kgtest.Options{Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	secret, recovery := sfEnrolFromAccount(t, e, "alice", brAlicePW)
	e.clock.Advance(30 * time.Second)
	secrets := []string{brAlicePW, "wrong password!", secret, "123456"}
	b := e.browser(t)
	hidden := brLoginPage(t, b.get(t, "/login"))
	brWantPage(t, b.submit(t, "/login", hidden, "username", "alice", "password", "wrong password!"), http.StatusOK, "Invalid")
	hidden = sfCodePage(t, b.submit(t, "/login", hidden, "username", "alice", "password", brAlicePW))
	secrets = append(secrets, b.cookie("keygate_login"))
	brWantPage(t, b.submit(t, "/login/totp", hidden, "code", "123456"), http.StatusOK, "That code is not valid")
	right := sfCode(t, secret, e.clock.Now())
	if r := b.submit(t, "/login/totp", hidden, "code", right); r.status != http.StatusSeeOther {
		t.Fatalf("code step: %s", r)
	}
	secrets = append(secrets, right, b.cookie("keygate_session"))
	sfLoginWithCode(t, e, "alice", brAlicePW, recovery[0])
	for _, c := range recovery {
		secrets = append(secrets, c, strings.ReplaceAll(c, "-", ""))
	}
	logged := logs.String()
	if !strings.Contains(logged, "second factor used") {
		t.Fatalf("no second-factor audit lines captured: %s", logged)
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(logged, s) {
			t.Errorf("the log holds a secret (%.4s…)", s)
		}
	}
}
