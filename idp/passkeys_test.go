package idp_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/idp"
	"github.com/keygate/keygate/internal/kgtest"
	"github.com/keygate/keygate/internal/stampede"
	"github.com/keygate/keygate/throttle"
)

// passkeyEnv is a Keygate at http://localhost:PORT (a WebAuthn RP ID must
// be a domain name), on a settable clock, logging to logs, with alice and
// bob logged in.
type passkeyEnv struct {
	kg         *kgtest.Server
	clock      *kgtest.Clock
	logs       *kgtest.LogBuffer
	alice, bob *idp.Session
}

func newPasskeyEnv(t *testing.T) *passkeyEnv {
	t.Helper()
	e := &passkeyEnv{clock: kgtest.NewClock(time.Date(2031, 5, 17, 9, 0, 0, 0, time.UTC)), logs: &kgtest.LogBuffer{}}
	e.kg = kgtest.Start(t, kgtest.Options{Localhost: true, Clock: e.clock, Logger: slog.New(slog.NewJSONHandler(e.logs, nil))})
	for _, who := range []string{"alice", "bob"} {
		u, err := e.kg.IDP.Directory().CreateUser(t.Context(), idp.NewUser{Username: who, Password: who + "'s long passphrase"})
		if err != nil {
			t.Fatal(err)
		}
		_, sess, err := e.kg.IDP.StartSession(t.Context(), u, []string{idp.AMRPassword})
		if err != nil {
			t.Fatal(err)
		}
		if who == "alice" {
			e.alice = sess
		} else {
			e.bob = sess
		}
	}
	return e
}

func (e *passkeyEnv) authenticator(t *testing.T) *kgtest.Authenticator {
	return kgtest.NewAuthenticator(t, e.kg.URL, "localhost")
}

func jsonOf(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// register runs a registration of a for sess's user and returns its error.
func (e *passkeyEnv) register(t *testing.T, sess *idp.Session, a *kgtest.Authenticator, name string) error {
	t.Helper()
	opts, err := e.kg.IDP.PasskeyCreationOptions(t.Context(), sess)
	if err != nil {
		t.Fatalf("PasskeyCreationOptions: %v", err)
	}
	_, err = e.kg.IDP.RegisterPasskey(t.Context(), sess, name, a.Create(t, jsonOf(t, opts)))
	return err
}

// loginOptions begins a sign-in and returns the options as JSON.
func (e *passkeyEnv) loginOptions(t *testing.T) []byte {
	t.Helper()
	opts, err := e.kg.IDP.PasskeyRequestOptions(t.Context(), "192.0.2.1")
	if err != nil {
		t.Fatalf("PasskeyRequestOptions: %v", err)
	}
	return jsonOf(t, opts)
}

func (e *passkeyEnv) login(t *testing.T, a *kgtest.Authenticator) (*idp.PasskeyLogin, error) {
	t.Helper()
	return e.kg.IDP.LoginWithPasskey(t.Context(), a.Get(t, e.loginOptions(t)))
}

func TestPasskeyLogin(t *testing.T) {
	t.Parallel()
	e := newPasskeyEnv(t)
	a := e.authenticator(t)
	if err := e.register(t, e.alice, a, "  Work key  "); err != nil {
		t.Fatalf("register: %v", err)
	}
	pks, err := e.kg.IDP.UserPasskeys(t.Context(), e.alice)
	if err != nil || len(pks) != 1 || pks[0].Name != "Work key" || !pks[0].LastUsed.IsZero() {
		t.Fatalf("alice's passkeys %+v, %v; want one named \"Work key\", never used", pks, err)
	}
	e.clock.Advance(time.Minute)
	pl, err := e.login(t, a)
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	if pl.User.ID != e.alice.UserID || !slices.Equal(pl.Methods, []string{"hwk", "user", "mfa"}) {
		t.Errorf("login as %s with methods %v; want alice, [hwk user mfa]", pl.User.Username, pl.Methods)
	}
	stored, err := e.kg.Store.GetPasskey(t.Context(), pks[0].ID)
	if err != nil || stored.SignCount != 2 || !stored.LastUsedAt.Equal(e.clock.Now()) {
		t.Errorf("after the login the passkey has count %d, last used %v (%v); want 2, %v", stored.SignCount, stored.LastUsedAt, err, e.clock.Now())
	}
	// A synced passkey (backup eligible) is a software key.
	synced := e.authenticator(t)
	synced.Backup = true
	if err := e.register(t, e.bob, synced, "Phone"); err != nil {
		t.Fatal(err)
	}
	if pl, err := e.login(t, synced); err != nil || !slices.Equal(pl.Methods, []string{"swk", "user", "mfa"}) {
		t.Errorf("synced passkey login: %+v, %v; want methods [swk user mfa]", pl, err)
	}
	for _, want := range []string{`"msg":"passkey registered"`, `"msg":"passkey sign-in"`} {
		if !strings.Contains(e.logs.String(), want) {
			t.Errorf("no %s audit line", want)
		}
	}
}

// TestPasskeyAttacks: every way a passkey sign-in must be refused.
func TestPasskeyAttacks(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, reason string
		// attack registers what it needs and returns the response to post.
		attack func(t *testing.T, e *passkeyEnv, alice *kgtest.Authenticator) []byte
	}{
		{"replayed response", "unknown or already used challenge", func(t *testing.T, e *passkeyEnv, a *kgtest.Authenticator) []byte {
			resp := a.Get(t, e.loginOptions(t))
			if _, err := e.kg.IDP.LoginWithPasskey(t.Context(), resp); err != nil {
				t.Fatalf("first use: %v", err)
			}
			return resp
		}},
		{"a spent challenge signed again", "unknown or already used challenge", func(t *testing.T, e *passkeyEnv, a *kgtest.Authenticator) []byte {
			opts := e.loginOptions(t)
			if _, err := e.kg.IDP.LoginWithPasskey(t.Context(), a.Get(t, opts)); err != nil {
				t.Fatalf("first use: %v", err)
			}
			return a.Get(t, opts)
		}},
		{"expired challenge", "expired challenge", func(t *testing.T, e *passkeyEnv, a *kgtest.Authenticator) []byte {
			opts := e.loginOptions(t)
			e.clock.Advance(5 * time.Minute)
			return a.Get(t, opts)
		}},
		{"a challenge the server never gave", "unknown or already used challenge", func(t *testing.T, e *passkeyEnv, a *kgtest.Authenticator) []byte {
			return a.Get(t, []byte(`{"publicKey":{"challenge":"c2VsZi1tYWRlIGNoYWxsZW5nZSBvZiAzMiBieXRlcyEh"}}`))
		}},
		{"a registration challenge", "a registration challenge used for login", func(t *testing.T, e *passkeyEnv, a *kgtest.Authenticator) []byte {
			opts, err := e.kg.IDP.PasskeyCreationOptions(t.Context(), e.alice)
			if err != nil {
				t.Fatal(err)
			}
			return a.Get(t, jsonOf(t, opts))
		}},
		{"alice's credential claiming bob's user handle", "belongs to another user", func(t *testing.T, e *passkeyEnv, a *kgtest.Authenticator) []byte {
			b := e.authenticator(t)
			if err := e.register(t, e.bob, b, "Bob's key"); err != nil {
				t.Fatal(err)
			}
			a.UserHandle = b.UserHandle
			return a.Get(t, e.loginOptions(t))
		}},
		{"bob's credential ID signed with alice's key", "assertion", func(t *testing.T, e *passkeyEnv, a *kgtest.Authenticator) []byte {
			b := e.authenticator(t)
			if err := e.register(t, e.bob, b, "Bob's key"); err != nil {
				t.Fatal(err)
			}
			a.ID, a.UserHandle = b.ID, b.UserHandle
			return a.Get(t, e.loginOptions(t))
		}},
		{"counter regression (a cloned authenticator)", "sign counter regression", func(t *testing.T, e *passkeyEnv, a *kgtest.Authenticator) []byte {
			clone := *a
			if _, err := e.login(t, a); err != nil {
				t.Fatalf("the original's login: %v", err)
			}
			if _, err := e.login(t, a); err != nil {
				t.Fatalf("the original's second login: %v", err)
			}
			return clone.Get(t, e.loginOptions(t)) // counter 2, after the original's 3
		}},
		{"no user verification", "assertion", func(t *testing.T, e *passkeyEnv, a *kgtest.Authenticator) []byte {
			a.NoUV = true
			return a.Get(t, e.loginOptions(t))
		}},
		{"another origin", "assertion", func(t *testing.T, e *passkeyEnv, a *kgtest.Authenticator) []byte {
			a.Origin = "http://localhost.evil.example"
			return a.Get(t, e.loginOptions(t))
		}},
		{"a removed passkey", "unknown passkey", func(t *testing.T, e *passkeyEnv, a *kgtest.Authenticator) []byte {
			pks, err := e.kg.IDP.UserPasskeys(t.Context(), e.alice)
			if err != nil || len(pks) != 1 {
				t.Fatal(pks, err)
			}
			if err := e.kg.IDP.RemovePasskey(t.Context(), e.alice, pks[0].ID); err != nil {
				t.Fatal(err)
			}
			return a.Get(t, e.loginOptions(t))
		}},
		{"a disabled user", "disabled", func(t *testing.T, e *passkeyEnv, a *kgtest.Authenticator) []byte {
			u := e.alice.User
			u.DisabledAt = e.clock.Now()
			if err := e.kg.Store.UpdateUser(t.Context(), u); err != nil {
				t.Fatal(err)
			}
			return a.Get(t, e.loginOptions(t))
		}},
		{"garbage", "unreadable assertion", func(t *testing.T, e *passkeyEnv, a *kgtest.Authenticator) []byte {
			return []byte(`{"id":"x","type":"public-key","response":{}}`)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newPasskeyEnv(t)
			a := e.authenticator(t)
			if err := e.register(t, e.alice, a, "Alice's key"); err != nil {
				t.Fatalf("register: %v", err)
			}
			pl, err := e.kg.IDP.LoginWithPasskey(t.Context(), tc.attack(t, e, a))
			if !errors.Is(err, idp.ErrPasskeyRefused) || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("LoginWithPasskey = %+v, %v; want ErrPasskeyRefused saying %q", pl, err, tc.reason)
			}
		})
	}
}

// TestPasskeyCloneLogged: a counter regression is refused and audit-logged,
// and the stored counter stays where the original left it.
func TestPasskeyCloneLogged(t *testing.T) {
	t.Parallel()
	e := newPasskeyEnv(t)
	a := e.authenticator(t)
	if err := e.register(t, e.alice, a, "key"); err != nil {
		t.Fatal(err)
	}
	a.Count = 10
	if _, err := e.login(t, a); err != nil {
		t.Fatal(err)
	}
	a.Count = 7
	if _, err := e.login(t, a); !errors.Is(err, idp.ErrPasskeyRefused) {
		t.Fatalf("login with a lower counter: %v", err)
	}
	if logs := e.logs.String(); !strings.Contains(logs, "possibly a cloned authenticator") || !strings.Contains(logs, `"presented_count":7`) {
		t.Errorf("no audit line for the regression in %s", logs)
	}
	pks, _ := e.kg.Store.ListUserPasskeys(t.Context(), e.alice.UserID)
	if len(pks) != 1 || pks[0].SignCount != 10 {
		t.Errorf("stored passkeys %+v, want one with count 10", pks)
	}
}

// TestPasskeyConcurrentReplay: one response posted many times at once signs
// in exactly once.
func TestPasskeyConcurrentReplay(t *testing.T) {
	t.Parallel()
	e := newPasskeyEnv(t)
	a := e.authenticator(t)
	if err := e.register(t, e.alice, a, "key"); err != nil {
		t.Fatal(err)
	}
	resp := a.Get(t, e.loginOptions(t))
	errs := stampede.Run(8, func(int) error {
		_, err := e.kg.IDP.LoginWithPasskey(context.Background(), resp)
		return err
	})
	ok := 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, idp.ErrPasskeyRefused):
			t.Errorf("login %d: %v", i, err)
		}
	}
	if ok != 1 {
		t.Errorf("%d of 8 concurrent uses of one response signed in, want 1", ok)
	}
}

// TestPasskeyRegistration: the refusals of registration, and the cap.
func TestPasskeyRegistration(t *testing.T) {
	t.Parallel()
	e := newPasskeyEnv(t)
	ctx := t.Context()
	for _, tc := range []struct {
		name string
		do   func(t *testing.T) error
		want error
	}{
		{"empty name", func(t *testing.T) error { return e.register(t, e.alice, e.authenticator(t), "   ") }, nil},
		{"name too long", func(t *testing.T) error {
			return e.register(t, e.alice, e.authenticator(t), strings.Repeat("k", 65))
		}, nil},
		{"no user verification", func(t *testing.T) error {
			a := e.authenticator(t)
			a.NoUV = true
			return e.register(t, e.alice, a, "key")
		}, idp.ErrPasskeyRefused},
		{"another session's challenge", func(t *testing.T) error {
			opts, err := e.kg.IDP.PasskeyCreationOptions(ctx, e.bob)
			if err != nil {
				t.Fatal(err)
			}
			_, err = e.kg.IDP.RegisterPasskey(ctx, e.alice, "key", e.authenticator(t).Create(t, jsonOf(t, opts)))
			return err
		}, idp.ErrPasskeyRefused},
		{"a replayed registration", func(t *testing.T) error {
			opts, err := e.kg.IDP.PasskeyCreationOptions(ctx, e.alice)
			if err != nil {
				t.Fatal(err)
			}
			resp := e.authenticator(t).Create(t, jsonOf(t, opts))
			if _, err := e.kg.IDP.RegisterPasskey(ctx, e.alice, "key", resp); err != nil {
				t.Fatalf("first use: %v", err)
			}
			_, err = e.kg.IDP.RegisterPasskey(ctx, e.alice, "key", resp)
			return err
		}, idp.ErrPasskeyRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do(t)
			var ve *idp.ValidationError
			if tc.want == nil && !errors.As(err, &ve) || tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v (nil: a validation error)", err, tc.want)
			}
		})
	}
	have, err := e.kg.IDP.UserPasskeys(ctx, e.alice)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(have); i < idp.MaxPasskeysPerUser; i++ {
		if err := e.register(t, e.alice, e.authenticator(t), "key"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.kg.IDP.PasskeyCreationOptions(ctx, e.alice); !errors.Is(err, idp.ErrTooManyPasskeys) {
		t.Errorf("options beyond the cap: %v, want ErrTooManyPasskeys", err)
	}
	// An operator's reset (users reset-mfa) removes them all.
	if had, err := e.kg.IDP.Directory().ResetSecondFactor(ctx, "alice"); !had || err != nil {
		t.Errorf("ResetSecondFactor = %v, %v; want true", had, err)
	}
	if left, err := e.kg.IDP.UserPasskeys(ctx, e.alice); len(left) != 0 || err != nil {
		t.Errorf("after the reset alice has passkeys %v (%v)", left, err)
	}
	if !strings.Contains(e.logs.String(), `"passkeys_removed":20`) {
		t.Error("no audit line for the reset")
	}
}

// TestPasskeySignInsBoundedOverall: the per-address cap on sign-in
// ceremonies does not bound an attacker with many addresses, so sign-ins
// begun from all addresses together draw on one bucket, reserved before the
// challenge is stored: 40 concurrent requests from 40 networks against a
// burst of 5 begin (and store) exactly 5 challenges; the rest are ThrottledError with a
// Retry-After, and the bucket refills with time.
func TestPasskeySignInsBoundedOverall(t *testing.T) {
	t.Parallel()
	clock := kgtest.NewClock(time.Date(2031, 5, 17, 9, 0, 0, 0, time.UTC))
	kg := kgtest.Start(t, kgtest.Options{Localhost: true, Clock: clock,
		PasskeySignIns: throttle.Limits{Burst: 5, Every: time.Minute}})
	errs := stampede.Run(40, func(i int) error {
		_, err := kg.IDP.PasskeyRequestOptions(context.Background(), fmt.Sprintf("2001:db8:%x::1", i))
		return err
	})
	ok := 0
	for _, err := range errs {
		var te *idp.ThrottledError
		switch {
		case err == nil:
			ok++
		case errors.As(err, &te) && te.RetryAfter > 0:
		default:
			t.Fatalf("PasskeyRequestOptions: %v; want success or ThrottledError", err)
		}
	}
	if ok != 5 {
		t.Errorf("%d of 40 concurrent sign-ins began; want the burst, 5", ok)
	}
	clock.Advance(time.Minute)
	if _, err := kg.IDP.PasskeyRequestOptions(t.Context(), "192.0.2.9"); err != nil {
		t.Errorf("after a minute, one more sign-in: %v", err)
	}
}
