package idp_test

import (
	"context"
	"errors"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/keygate/keygate/idp"
	"github.com/keygate/keygate/password"
	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/sqlite"
)

// TestAccountSessionsAndPassword: a user's own sessions by handle, ending
// the others (which keeps this session's authentication time and expiry),
// and a password change (validated, re-authenticated, rotating).
func TestAccountSessionsAndPassword(t *testing.T) {
	ctx := context.Background()
	pr := provider(t, openSQLite(t), password.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32})
	users := map[string]store.User{}
	for _, name := range []string{"alice", "bob"} {
		u, err := pr.Directory().CreateUser(ctx, idp.NewUser{Username: name, Password: name + " passphrase"})
		if err != nil {
			t.Fatal(err)
		}
		users[name] = u
	}
	start := func(name string) (string, *idp.Session) {
		tok, s, err := pr.StartSession(ctx, users[name], nil)
		if err != nil {
			t.Fatal(err)
		}
		return tok, s
	}
	live := func(tok string) bool {
		_, err := pr.Session(ctx, tok)
		if err != nil && !errors.Is(err, idp.ErrNoSession) {
			t.Fatal(err)
		}
		return err == nil
	}
	tokA, a := start("alice")
	tokA2, a2 := start("alice")
	tokB, b := start("bob")

	checkEndUserSession(t, pr, [2]*idp.Session{a, a2}, b, live, tokA, tokA2, tokB)

	tokA3, _ := start("alice")
	tokNew, n, err := pr.EndOtherSessions(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if live(tokA) || live(tokA3) || !live(tokNew) || !live(tokB) {
		t.Error("EndOtherSessions: wrong sessions alive")
	}
	if !n.AuthTime.Equal(a.AuthTime) || !n.ExpiresAt.Equal(a.ExpiresAt) {
		t.Errorf("EndOtherSessions moved auth_time %v→%v or expiry %v→%v", a.AuthTime, n.AuthTime, a.ExpiresAt, n.ExpiresAt)
	}

	checkChangePassword(t, pr, n, live, tokNew, tokB)
}

// checkEndUserSession: UserSessions lists alice's two sessions a[0] and a[1]
// by handle; EndUserSession refuses bob's b, her own and unknown handles, and
// ends the other one.
func checkEndUserSession(t *testing.T, pr *idp.Provider, as [2]*idp.Session, b *idp.Session, live func(string) bool, tokA, tokA2, tokB string) {
	t.Helper()
	ctx := context.Background()
	a, a2 := as[0], as[1]
	list, err := pr.UserSessions(ctx, a)
	if err != nil || len(list) != 2 {
		t.Fatalf("UserSessions = %v, %v; want 2", list, err)
	}
	for _, in := range list {
		if !regexp.MustCompile(`^[0-9a-f]{8}$`).MatchString(in.Handle) || in.Handle == a.ID[:8] || in.Handle == a2.ID[:8] {
			t.Errorf("handle %q", in.Handle)
		}
		if in.Current != (in.Handle == idp.SessionHandle(a.ID)) {
			t.Errorf("session %s: Current %t", in.Handle, in.Current)
		}
	}
	for _, h := range []string{idp.SessionHandle(b.ID), idp.SessionHandle(a.ID), "", a2.ID} {
		if err := pr.EndUserSession(ctx, a, h); !errors.Is(err, idp.ErrUnknownSessionHandle) {
			t.Errorf("EndUserSession(%q) = %v, want ErrUnknownSessionHandle", h, err)
		}
	}
	if !live(tokA) || !live(tokA2) || !live(tokB) {
		t.Fatal("a refused EndUserSession ended a session")
	}
	if err := pr.EndUserSession(ctx, a, idp.SessionHandle(a2.ID)); err != nil || live(tokA2) || !live(tokA) {
		t.Fatalf("EndUserSession of the other session: %v", err)
	}

}

// checkChangePassword: ChangePassword validates the new password and
// re-authenticates, and on success rotates the session n (tokNew).
func checkChangePassword(t *testing.T, pr *idp.Provider, n *idp.Session, live func(string) bool, tokNew, tokB string) {
	t.Helper()
	ctx := context.Background()
	var ve *idp.ValidationError
	if _, _, err := pr.ChangePassword(ctx, n, "alice passphrase", "short", ""); !errors.As(err, &ve) {
		t.Errorf("short new password: %v", err)
	}
	if _, _, err := pr.ChangePassword(ctx, n, "wrong", "alice's new passphrase", ""); !errors.Is(err, idp.ErrInvalidCredentials) {
		t.Errorf("wrong current password: %v", err)
	}
	if !live(tokNew) {
		t.Fatal("a refused change ended the session")
	}
	tokP, p, err := pr.ChangePassword(ctx, n, "alice passphrase", "alice's new passphrase", "")
	if err != nil {
		t.Fatal(err)
	}
	if live(tokNew) || !live(tokP) || !live(tokB) || p.AuthTime.Before(n.AuthTime) {
		t.Error("ChangePassword: wrong sessions alive, or auth_time not renewed")
	}
	if _, err := pr.CheckPassword(ctx, "alice", "alice's new passphrase", ""); err != nil {
		t.Errorf("the new password: %v", err)
	}
}

// openSQLite opens a fresh SQLite store, closed when the test ends.
func openSQLite(t *testing.T) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "k.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
