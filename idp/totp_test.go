package idp_test

import (
	"context"
	"encoding/base32"
	"errors"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/keygate/keygate/idp"
	"github.com/keygate/keygate/internal/stampede"
	"github.com/keygate/keygate/store"
)

// totpCode is the code an authenticator app shows for secret at t: computed
// by pquerna/otp, the library the server uses only for the same purpose.
func totpCode(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	code, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// enrolTOTP enrols alice's TOTP and returns its secret and recovery codes.
func (e *grantEnv) enrolTOTP(t *testing.T) (string, []string) {
	t.Helper()
	ctx := context.Background()
	en, err := e.p.StartTOTPEnrolment(ctx, e.alice)
	if err != nil {
		t.Fatal(err)
	}
	codes, err := e.p.ConfirmTOTP(ctx, e.alice, totpCode(t, en.Secret, e.clock.Now()), "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	return en.Secret, codes
}

// TestTOTPEnrolment: the secret is shown as an otpauth URL and a QR code,
// stored sealed, and becomes a factor only once a code confirms it.
func TestTOTPEnrolment(t *testing.T) {
	e := newGrantEnv(t)
	ctx := context.Background()
	en, err := e.p.StartTOTPEnrolment(ctx, e.alice)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(en.URL)
	if err != nil || u.Scheme != "otpauth" || u.Query().Get("secret") != en.Secret || u.Query().Get("issuer") != "id.example" {
		t.Errorf("otpauth URL %q", en.URL)
	}
	if png, err := en.QRPNG(256); err != nil || len(png) < 100 || string(png[1:4]) != "PNG" {
		t.Errorf("QR code: %d bytes, %v", len(png), err)
	}
	raw, _ := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(en.Secret)
	stored, err := e.st.GetTOTP(ctx, e.alice.ID)
	if err != nil || slices.Equal(stored.Sealed, raw) || len(stored.Sealed) < len(raw)+16 {
		t.Errorf("stored secret %x is not sealed (%v)", stored.Sealed, err)
	}
	if has, _ := e.p.HasSecondFactor(ctx, e.alice.ID); has {
		t.Error("an unconfirmed TOTP counts as a second factor")
	}
	again, err := e.p.PendingTOTPEnrolment(ctx, e.alice)
	if err != nil || again.Secret != en.Secret {
		t.Errorf("PendingTOTPEnrolment = %+v, %v", again, err)
	}
	if _, err := e.p.ConfirmTOTP(ctx, e.alice, "000000", "192.0.2.1"); !errors.Is(err, idp.ErrInvalidCode) {
		t.Errorf("a wrong confirmation code: %v", err)
	}
	codes, err := e.p.ConfirmTOTP(ctx, e.alice, totpCode(t, en.Secret, e.clock.Now()), "192.0.2.1")
	if err != nil || len(codes) != idp.RecoveryCodeCount {
		t.Fatalf("ConfirmTOTP = %q, %v", codes, err)
	}
	if has, _ := e.p.HasSecondFactor(ctx, e.alice.ID); !has {
		t.Error("a confirmed TOTP is no second factor")
	}
	if _, err := e.p.StartTOTPEnrolment(ctx, e.alice); !errors.Is(err, idp.ErrTOTPActive) {
		t.Errorf("enrolling over a confirmed TOTP: %v", err)
	}
}

// TestSecondFactorCodes: a code is accepted once (the confirming one is
// spent too), a step either side is accepted, recovery codes work once.
func TestSecondFactorCodes(t *testing.T) {
	e := newGrantEnv(t)
	ctx := context.Background()
	secret, recovery := e.enrolTOTP(t)
	verify := func(code string) error { return e.p.VerifySecondFactor(ctx, e.alice, code, "192.0.2.1") }
	steps := []struct {
		name    string
		advance time.Duration
		code    func() string
		want    error
	}{
		{"the confirming code again", 0, func() string { return totpCode(t, secret, e.clock.Now()) }, idp.ErrInvalidCode},
		{"the next step's code", 0, func() string { return totpCode(t, secret, e.clock.Now()) }, nil},
		{"the same code replayed", 0, func() string { return totpCode(t, secret, e.clock.Now()) }, idp.ErrInvalidCode},
		{"a code one step ahead (drift)", 0, func() string { return totpCode(t, secret, e.clock.Now().Add(30*time.Second)) }, nil},
		{"a wrong code", time.Minute, func() string { return "123456" }, idp.ErrInvalidCode},
		{"a code two steps old", 0, func() string { return totpCode(t, secret, e.clock.Now().Add(-time.Minute)) }, idp.ErrInvalidCode},
		{"a recovery code, typed in lower case", 0, func() string { return "  " + lower(recovery[0]) }, nil},
		{"the recovery code again", 0, func() string { return recovery[0] }, idp.ErrInvalidCode},
		{"another recovery code without dashes", 0, func() string { return dashless(recovery[1]) }, nil},
	}
	for _, s := range steps {
		e.clock.Advance(s.advance)
		if err := verify(s.code()); !errors.Is(err, s.want) {
			t.Errorf("%s: %v, want %v", s.name, err, s.want)
		}
		if s.want != nil {
			e.clock.Advance(time.Minute) // refill the throttle after a failure
		}
	}
	if st, _ := e.st.GetTOTP(ctx, e.alice.ID); st.RecoveryLeft != idp.RecoveryCodeCount-2 {
		t.Errorf("%d recovery codes left, want %d", st.RecoveryLeft, idp.RecoveryCodeCount-2)
	}
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func dashless(s string) string {
	out := []byte{}
	for _, c := range []byte(s) {
		if c != '-' {
			out = append(out, c)
		}
	}
	return string(out)
}

// TestSecondFactorThrottle: concurrent wrong codes reach verification at
// most user_burst times; then even the right code is refused, and a correct
// password does not give the code step its attempts back.
func TestSecondFactorThrottle(t *testing.T) {
	e := newGrantEnv(t) // UserThrottle: burst 3, one a minute
	ctx := context.Background()
	secret, _ := e.enrolTOTP(t)
	e.clock.Advance(time.Minute)
	errs := stampede.Run(20, func(i int) error {
		return e.p.VerifySecondFactor(ctx, e.alice, "000000", "192.0.2.1")
	})
	checked, throttled := 0, 0
	for _, err := range errs {
		switch {
		case errors.Is(err, idp.ErrInvalidCode):
			checked++
		case errors.Is(err, idp.ErrThrottled):
			throttled++
		default:
			t.Errorf("unexpected: %v", err)
		}
	}
	if checked > 3 || checked+throttled != 20 {
		t.Errorf("%d wrong codes checked, %d throttled; want at most 3 checked", checked, throttled)
	}
	if _, err := e.p.CheckPassword(ctx, "alice", gtPassword, "192.0.2.1"); err != nil {
		t.Fatalf("the password step is not locked by the code step: %v", err)
	}
	right := totpCode(t, secret, e.clock.Now())
	if err := e.p.VerifySecondFactor(ctx, e.alice, right, "192.0.2.1"); !errors.Is(err, idp.ErrThrottled) {
		t.Errorf("the right code during a lockout: %v, want throttled", err)
	}
	e.clock.Advance(time.Minute)
	if err := e.p.VerifySecondFactor(ctx, e.alice, totpCode(t, secret, e.clock.Now()), "192.0.2.1"); err != nil {
		t.Errorf("after the refill: %v", err)
	}
}

// TestPendingLogin: the state between password and code is server-side,
// no session, single use and short-lived.
func TestPendingLogin(t *testing.T) {
	e := newGrantEnv(t)
	ctx := context.Background()
	token, err := e.p.BeginSecondFactor(ctx, e.alice)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.p.Session(ctx, token); !errors.Is(err, idp.ErrNoSession) {
		t.Errorf("a pending login is a session: %v", err)
	}
	pending, err := e.p.PendingLogin(ctx, token)
	if err != nil || pending.UserID != e.alice.ID {
		t.Fatalf("PendingLogin = %+v, %v", pending, err)
	}
	_, s, err := e.p.FinishSecondFactor(ctx, pending)
	if err != nil || !slices.Equal(s.AMR, []string{"pwd", "otp", "mfa"}) {
		t.Fatalf("FinishSecondFactor = %+v, %v", s, err)
	}
	if _, _, err := e.p.FinishSecondFactor(ctx, pending); !errors.Is(err, idp.ErrNoSession) {
		t.Errorf("finishing twice: %v", err)
	}
	if _, err := e.p.PendingLogin(ctx, token); !errors.Is(err, idp.ErrNoSession) {
		t.Errorf("a finished pending login: %v", err)
	}
	old, _ := e.p.BeginSecondFactor(ctx, e.alice)
	e.clock.Advance(idp.PendingLoginTTL)
	if _, err := e.p.PendingLogin(ctx, old); !errors.Is(err, idp.ErrNoSession) {
		t.Errorf("an expired pending login: %v", err)
	}
	// A session token is no pending login either.
	sessToken, _, _ := e.p.StartSession(ctx, e.alice, nil)
	if _, err := e.p.PendingLogin(ctx, sessToken); !errors.Is(err, idp.ErrNoSession) {
		t.Errorf("a session as a pending login: %v", err)
	}
}

// TestSecondFactorRemovalAndReset: removal needs a current code; an
// operator's reset needs nothing and is reported.
func TestSecondFactorRemovalAndReset(t *testing.T) {
	e := newGrantEnv(t)
	ctx := context.Background()
	secret, _ := e.enrolTOTP(t)
	_, s, _ := e.p.StartSession(ctx, e.alice, []string{"pwd", "otp", "mfa"})
	e.clock.Advance(time.Minute)
	if err := e.p.RemoveTOTP(ctx, s, "999999", "192.0.2.1"); !errors.Is(err, idp.ErrInvalidCode) {
		t.Errorf("removal with a wrong code: %v", err)
	}
	e.clock.Advance(time.Minute)
	if err := e.p.RemoveTOTP(ctx, s, totpCode(t, secret, e.clock.Now()), "192.0.2.1"); err != nil {
		t.Fatalf("removal: %v", err)
	}
	if has, _ := e.p.HasSecondFactor(ctx, e.alice.ID); has {
		t.Error("still has a second factor after removal")
	}
	e.enrolTOTP(t)
	for _, want := range []bool{true, false} {
		had, err := e.dir.ResetSecondFactor(ctx, "ALICE")
		if err != nil || had != want {
			t.Errorf("ResetSecondFactor = %v, %v; want %v", had, err, want)
		}
	}
	if _, err := e.dir.ResetSecondFactor(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("reset of an unknown user: %v", err)
	}
}

// TestPasswordGrantSecondFactor: the password grant follows the browser's
// rule, with a description saying why: refused to a user whom
// login.require_second_factor covers, whatever else; refused to a user with
// any second factor (TOTP or a passkey) unless
// login.password_grant_with_second_factor.
func TestPasswordGrantSecondFactor(t *testing.T) {
	cases := []struct {
		name           string
		enrol, passkey bool
		policy         idp.SecondFactorPolicy
		allow          bool
		refuse         bool
	}{
		{"no second factor", false, false, "", false, false},
		{"with TOTP", true, false, "", false, true},
		{"with TOTP, allowed", true, false, "", true, false},
		{"with a passkey", false, true, "", false, true},
		{"with a passkey, allowed", false, true, "", true, false},
		{"with TOTP and a passkey", true, true, "", false, true},
		{"policy all, not enrolled", false, false, idp.SecondFactorAll, false, true},
		{"policy all, not enrolled, allowed", false, false, idp.SecondFactorAll, true, true},
		{"policy all, with TOTP, allowed", true, false, idp.SecondFactorAll, true, true},
		{"policy admins, not an admin", false, false, idp.SecondFactorAdmins, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, clock := grantConfig(t)
			cfg.SecondFactor, cfg.PasswordGrantWithSecondFactor = c.policy, c.allow
			e := grantEnvFor(t, cfg, clock)
			if c.enrol {
				e.enrolTOTP(t)
			}
			if c.passkey { // a registered passkey as the store keeps it (TestPasskeyLogin registers real ones)
				err := e.st.CreatePasskey(context.Background(), store.Passkey{ID: "cred-1", UserID: e.alice.ID, Name: "laptop",
					PublicKey: []byte{1}, AttestationFormat: "none", AAGUID: make([]byte, 16), UserVerified: true, CreatedAt: clock.Now()}, 10)
				if err != nil {
					t.Fatal(err)
				}
			}
			_, err := e.token("app", gtSecret, url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {gtPassword}})
			if c.refuse {
				wantError(t, "password grant", err, "invalid_grant", "second factor")
			} else if err != nil {
				t.Errorf("password grant: %v", err)
			}
		})
	}
}
