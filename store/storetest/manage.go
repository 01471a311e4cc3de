package storetest

import (
	"testing"
	"time"

	"github.com/keygate/keygate/store"
)

// testUpdateClient: UpdateClient replaces every field but CreatedAt, the
// previous secret and its expiry included, and clears them again; an unknown
// client is ErrNotFound and stores nothing.
func testUpdateClient(t *testing.T, s store.Store) {
	ctx := t.Context()
	c := newClient(t, "billing")
	if err := s.CreateClient(ctx, c); err != nil {
		t.Fatalf("CreateClient: %v", err)
	}
	other := newClient(t, "other")
	if err := s.CreateClient(ctx, other); err != nil {
		t.Fatalf("CreateClient: %v", err)
	}

	up := store.Client{
		ID: c.ID, Name: "Billing v2", SecretHash: randomBytes(t, 32), GrantTypes: []string{"authorization_code"},
		Scopes: []string{"openid"}, RedirectURIs: []string{"https://app.example/cb2", "https://app.example/cb3"},
		AllowedOrigins: []string{"https://spa2.example:8443"},
		AccessTTL:      5 * time.Minute, PreviousSecretHash: c.SecretHash, PreviousSecretExpiresAt: base.Add(time.Hour + 3),
		CreatedAt: base.Add(24 * time.Hour), // ignored: creation time is kept
	}
	up.PostLogoutRedirectURIs = []string{"https://app.example/bye2"}
	if err := s.UpdateClient(ctx, up); err != nil {
		t.Fatalf("UpdateClient: %v", err)
	}
	want := up
	want.CreatedAt = c.CreatedAt
	if d := clientDiff(getClient(t, s, c.ID), want); d != "" {
		t.Errorf("after UpdateClient: %s", d)
	}
	if d := clientDiff(getClient(t, s, other.ID), other); d != "" {
		t.Errorf("another client changed: %s", d)
	}

	// The grace period ends: the previous secret is cleared; so are the
	// allowed origins.
	up.PreviousSecretHash, up.PreviousSecretExpiresAt, up.AllowedOrigins = nil, time.Time{}, nil
	if err := s.UpdateClient(ctx, up); err != nil {
		t.Fatalf("UpdateClient (clear previous secret): %v", err)
	}
	want.PreviousSecretHash, want.PreviousSecretExpiresAt, want.AllowedOrigins = nil, time.Time{}, nil
	checkClients(t, listClients(t, s), []store.Client{want, other})

	err := s.UpdateClient(ctx, newClient(t, "nobody"))
	checkErr(t, "UpdateClient(unknown)", err, store.ErrNotFound)
	if _, err := s.GetClient(ctx, "nobody"); err == nil {
		t.Error("UpdateClient of an unknown client created it")
	}
	bad := up
	bad.ID = ""
	checkInvalid(t, "UpdateClient(empty id)", s.UpdateClient(ctx, bad))
}

// testUpdateUser: UpdateUser replaces Email, Name, Admin, DisabledAt and
// UpdatedAt, and keeps Username, PasswordHash and CreatedAt; the new email is
// what login finds, the old one no longer.
func testUpdateUser(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := newUser(t, "alice", "alice@example.com")
	createUser(t, s, u)
	bob := newUser(t, "bob", "")
	createUser(t, s, bob)

	up := u
	up.Username, up.PasswordHash, up.CreatedAt = "mallory", "changed", base.Add(time.Hour) // all kept
	up.Email, up.Name, up.Admin = "Alice@Example.org", "Alice A.", true
	up.UpdatedAt, up.DisabledAt = base.Add(2*time.Hour), base.Add(2*time.Hour+5)
	if err := s.UpdateUser(ctx, up); err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}
	want := u
	want.Email, want.Name, want.Admin, want.UpdatedAt, want.DisabledAt = up.Email, up.Name, up.Admin, up.UpdatedAt, up.DisabledAt
	if d := userDiff(getUser(t, s, u.ID), want); d != "" {
		t.Errorf("after UpdateUser: %s", d)
	}
	if got, err := s.GetUserByLogin(ctx, "alice@example.org"); err != nil || got.ID != u.ID || !got.Disabled() {
		t.Errorf("GetUserByLogin(new email) = %+v, %v; want alice, disabled", got, err)
	}
	_, err := s.GetUserByLogin(ctx, "alice@example.com")
	checkErr(t, "GetUserByLogin(old email)", err, store.ErrNotFound)

	// Enable again and drop the email: any number of users may have none.
	up.Email, up.DisabledAt, up.UpdatedAt = "", time.Time{}, base.Add(3*time.Hour)
	if err := s.UpdateUser(ctx, up); err != nil {
		t.Fatalf("UpdateUser (enable, no email): %v", err)
	}
	want.Email, want.DisabledAt, want.UpdatedAt = "", time.Time{}, up.UpdatedAt
	checkUsers(t, listUsers(t, s), []store.User{want, bob})

	nobody := newUser(t, "nobody", "")
	checkErr(t, "UpdateUser(unknown)", s.UpdateUser(ctx, nobody), store.ErrNotFound)
	nobody.ID = ""
	checkInvalid(t, "UpdateUser(empty id)", s.UpdateUser(ctx, nobody))
}

// testUpdateUserEmailConflict: an email another user has, in any case, is
// ErrConflict and changes nothing.
func testUpdateUserEmailConflict(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := newUser(t, "alice", "alice@example.com")
	b := newUser(t, "bob", "bob@example.com")
	createUser(t, s, a)
	createUser(t, s, b)
	up := b
	up.Email, up.Name, up.UpdatedAt = "ALICE@example.com", "Bob B.", base.Add(time.Hour)
	checkErr(t, "UpdateUser(taken email)", s.UpdateUser(ctx, up), store.ErrConflict)
	if d := userDiff(getUser(t, s, b.ID), b); d != "" {
		t.Errorf("a refused update changed the user: %s", d)
	}
}
