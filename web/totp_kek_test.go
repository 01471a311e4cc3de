package web_test

import (
	"crypto/rand"
	"net/http"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/kgtest"
	"github.com/keygate/keygate/rotation"
)

// TestTOTPUnderMissingKEK: a user's TOTP secret sealed under a
// key-encryption key the server's keyring no longer holds (dropped before
// `keygate keys rewrap` ran) makes the code step answer 503 with a page that
// sends the user to a recovery code, never a 500, and a recovery code, which
// is a digest and not sealed, still signs them in.
func TestTOTPUnderMissingKEK(t *testing.T) {
	t.Parallel()
	e := newBrEnv(t, kgtest.Options{})
	_, recovery := sfEnrolFromAccount(t, e, "alice", brAlicePW)
	ctx := t.Context()
	alice, err := e.Store.GetUserByLogin(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	cur, err := e.Store.GetTOTP(ctx, alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	gone := make([]byte, rotation.KEKSize)
	rand.Read(gone) // crypto/rand.Read never fails (Go 1.24)
	other, err := rotation.NewSealer(gone)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := other.Seal("totp:"+alice.ID, []byte("0123456789abcdefghij"))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Store.ResealTOTP(ctx, alice.ID, cur.Sealed, sealed); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(30 * time.Second)

	verifier, challenge := brPKCE("kek")
	params := brAuthParams("webapp", brAppCB, challenge)
	b := e.browser(t)
	hidden := sfCodePage(t, sfPassword(t, b, params, "alice", brAlicePW))
	brWantPage(t, b.submit(t, "/login/totp", hidden, "code", "123456"), http.StatusServiceUnavailable, "Enter a recovery code")
	code := e.wantCodeRedirect(t, b.submit(t, "/login/totp", hidden, "code", recovery[0]), brAppCB, params.Get("state"))
	e.exchange(t, "webapp", code, brAppCB, verifier)

	// On /account too: removing TOTP with an app code answers 503 with the
	// same advice, and a recovery code still removes it.
	hidden = brFormPage(t, b.get(t, "/account"), "the account page", `action="/account/totp/remove"`)
	brWantPage(t, b.submit(t, "/account/totp/remove", hidden, "code", "123456"), http.StatusServiceUnavailable, "Enter a recovery code")
	if r := b.submit(t, "/account/totp/remove", hidden, "code", recovery[1]); r.status != http.StatusSeeOther {
		t.Fatalf("removal with a recovery code: %s", r)
	}
}
