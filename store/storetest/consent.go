package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/keygate/keygate/store"
)

// consentTests is the consent contract, and the revocation of a user's
// refresh tokens for one client that revoking a consent relies on.
var consentTests = []any{
	testConsentRoundTrip, testListUserConsents, testDeleteConsent, testInvalidConsent, testDeletesEndConsents,
	testRevokeUserClientRefreshTokens,
}

func newConsent(user, client string, scopes ...string) store.Consent {
	return store.Consent{UserID: user, ClientID: client, Scopes: scopes, CreatedAt: base, UpdatedAt: base}
}

func consentDiff(got, want store.Consent) string {
	var d differ
	d.text("UserID", got.UserID, want.UserID)
	d.text("ClientID", got.ClientID, want.ClientID)
	d.list("Scopes", got.Scopes, want.Scopes)
	d.instant("CreatedAt", got.CreatedAt, want.CreatedAt)
	d.instant("UpdatedAt", got.UpdatedAt, want.UpdatedAt)
	return d.String()
}

func upsertConsent(t *testing.T, s store.Store, c store.Consent) {
	t.Helper()
	if err := s.UpsertConsent(t.Context(), c); err != nil {
		t.Fatalf("UpsertConsent(%s, %s): %v", c.UserID, c.ClientID, err)
	}
}

func checkConsent(t *testing.T, s store.Store, want store.Consent) {
	t.Helper()
	got, err := s.GetConsent(t.Context(), want.UserID, want.ClientID)
	if err != nil {
		t.Errorf("GetConsent(%s, %s): %v", want.UserID, want.ClientID, err)
		return
	}
	if d := consentDiff(got, want); d != "" {
		t.Errorf("consent of %s to %s: %s", want.UserID, want.ClientID, d)
	}
}

func checkNoConsent(t *testing.T, s store.Store, user, client string) {
	t.Helper()
	if _, err := s.GetConsent(t.Context(), user, client); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetConsent(%s, %s): %v, want ErrNotFound", user, client, err)
	}
}

func listConsents(t *testing.T, s store.Store, user string) []store.Consent {
	t.Helper()
	return mustListOf(t, "ListUserConsents", s.ListUserConsents, user)
}

// testConsentRoundTrip: a consent reads back as written; upserting it again
// replaces its scopes and UpdatedAt and keeps its CreatedAt.
func testConsentRoundTrip(t *testing.T, s store.Store) {
	nyc := time.FixedZone("UTC-5", -5*60*60)
	c := newConsent("user-1", "photos", "openid", "profile", "émoji 🔑", `quote"d`)
	c.UpdatedAt = base.Add(time.Nanosecond).In(nyc)
	upsertConsent(t, s, c)
	checkConsent(t, s, c)

	more := newConsent("user-1", "photos", "openid", "profile", "émoji 🔑", `quote"d`, "offline_access")
	more.CreatedAt, more.UpdatedAt = base.Add(time.Hour), base.Add(time.Hour+1)
	upsertConsent(t, s, more)
	want := more
	want.CreatedAt = c.CreatedAt
	checkConsent(t, s, want)

	none := newConsent("user-2", "photos") // no scopes, no times
	none.CreatedAt, none.UpdatedAt = time.Time{}, time.Time{}
	upsertConsent(t, s, none)
	checkConsent(t, s, none)

	checkNoConsent(t, s, "user-1", "other")
	checkNoConsent(t, s, "user-3", "photos")
}

// testListUserConsents: one user's consents, in client ID byte order.
func testListUserConsents(t *testing.T, s store.Store) {
	for _, c := range []store.Consent{
		newConsent("user-1", "b-app", "openid"),
		newConsent("user-1", "B-app", "openid", "email"),
		newConsent("user-1", "a-app", "openid"),
		newConsent("user-2", "a-app", "openid", "profile"),
	} {
		upsertConsent(t, s, c)
	}
	got := listConsents(t, s, "user-1")
	want := []string{"B-app", "a-app", "b-app"}
	if len(got) != len(want) {
		t.Fatalf("ListUserConsents(user-1): %d consents, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i].ClientID != want[i] || got[i].UserID != "user-1" {
			t.Errorf("consent %d: %s to %s, want user-1 to %s", i, got[i].UserID, got[i].ClientID, want[i])
		}
	}
	if d := consentDiff(got[0], newConsent("user-1", "B-app", "openid", "email")); d != "" {
		t.Errorf("listed consent: %s", d)
	}
	if cs := listConsents(t, s, "nobody"); len(cs) != 0 {
		t.Errorf("ListUserConsents(nobody): %d consents", len(cs))
	}
}

// testDeleteConsent: deleting a consent deletes that one only; deleting one
// that is not there is ErrNotFound.
func testDeleteConsent(t *testing.T, s store.Store) {
	ctx := t.Context()
	gone, sameUser, sameClient := newConsent("user-1", "app", "openid"), newConsent("user-1", "other", "openid"), newConsent("user-2", "app", "openid")
	for _, c := range []store.Consent{gone, sameUser, sameClient} {
		upsertConsent(t, s, c)
	}
	checkErr(t, "DeleteConsent", s.DeleteConsent(ctx, "user-1", "app"), nil)
	checkNoConsent(t, s, "user-1", "app")
	checkConsent(t, s, sameUser)
	checkConsent(t, s, sameClient)
	checkErr(t, "DeleteConsent again", s.DeleteConsent(ctx, "user-1", "app"), store.ErrNotFound)
	checkErr(t, "DeleteConsent(unknown)", s.DeleteConsent(ctx, "nobody", "app"), store.ErrNotFound)
}

// testInvalidConsent: consents the schema cannot hold are refused with a
// plain error and write nothing.
func testInvalidConsent(t *testing.T, s store.Store) {
	far := time.Date(2300, time.January, 1, 0, 0, 0, 0, time.UTC)
	cases := map[string]store.Consent{
		"empty user":            newConsent("", "app", "openid"),
		"empty client":          newConsent("user-1", "", "openid"),
		"scope not UTF-8":       newConsent("user-1", "app", "openid", "b\xffd"),
		"updated after 2262":    {UserID: "user-1", ClientID: "app", UpdatedAt: far},
		"created at Unix epoch": {UserID: "user-1", ClientID: "app", CreatedAt: time.Unix(0, 0)},
		"client id not UTF-8":   newConsent("user-1", "a\xffp", "openid"),
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			checkInvalid(t, "UpsertConsent", s.UpsertConsent(t.Context(), c))
		})
	}
	if cs := listConsents(t, s, "user-1"); len(cs) != 0 {
		t.Errorf("%d consents stored by refused input", len(cs))
	}
}

// testDeletesEndConsents: deleting a client deletes the consents given to it
// (a client registered later under its ID must ask again), and deleting a
// user deletes the user's consents.
func testDeletesEndConsents(t *testing.T, s store.Store) {
	ctx := t.Context()
	checkErr(t, "CreateClient", s.CreateClient(ctx, newClient(t, "gone-app")), nil)
	u := newUser(t, "leaver", "leaver@example.com")
	createUser(t, s, u)
	kept := newConsent("user-1", "configured-app", "openid") // a client from the configuration file
	for _, c := range []store.Consent{newConsent("user-1", "gone-app", "openid"), newConsent(u.ID, "configured-app", "openid"), kept} {
		upsertConsent(t, s, c)
	}
	checkErr(t, "DeleteClient", s.DeleteClient(ctx, "gone-app"), nil)
	checkNoConsent(t, s, "user-1", "gone-app")
	checkErr(t, "DeleteUser", s.DeleteUser(ctx, u.ID), nil)
	checkNoConsent(t, s, u.ID, "configured-app")
	checkConsent(t, s, kept)
}

// testRevokeUserClientRefreshTokens: every family of one user issued to one client is
// revoked, and no other; a revoked link no longer rotates.
func testRevokeUserClientRefreshTokens(t *testing.T, s store.Store) {
	ctx := t.Context()
	first := newLink(t, "F1", base) // user-1 at app, rotated once
	createLink(t, s, first)
	next := nextLink(t, first, base.Add(time.Minute))
	checkErr(t, "RotateRefreshToken", s.RotateRefreshToken(ctx, first.ID, base.Add(time.Minute), next), nil)
	first.UsedAt = base.Add(time.Minute)
	second := newLink(t, "F2", base) // user-1 at app, another family
	otherClient := newLink(t, "F3", base)
	otherClient.ClientID = "other-app"
	otherUser := newLink(t, "F4", base)
	otherUser.Subject = "user-2"
	for _, l := range []store.RefreshToken{second, otherClient, otherUser} {
		createLink(t, s, l)
	}
	at := base.Add(2 * time.Minute)
	if n, err := s.RevokeUserClientRefreshTokens(ctx, "user-1", "app", at); err != nil || n != 3 {
		t.Fatalf("RevokeUserClientRefreshTokens(user-1, app) = %d, %v; want 3 links", n, err)
	}
	if n, err := s.RevokeUserClientRefreshTokens(ctx, "user-1", "app", at.Add(time.Minute)); err != nil || n != 0 {
		t.Errorf("second revocation = %d, %v; want 0 (revoked links keep their time)", n, err)
	}
	first.RevokedAt, next.RevokedAt, second.RevokedAt = at, at, at
	for _, l := range []store.RefreshToken{first, next, second, otherClient, otherUser} {
		checkLink(t, s, l)
	}
	if err := s.RotateRefreshToken(ctx, next.ID, at.Add(time.Second), nextLink(t, next, at.Add(time.Second))); !errors.Is(err, store.ErrConflict) {
		t.Errorf("rotating a revoked link: err = %v, want ErrConflict", err)
	}
	if n, err := s.RevokeUserClientRefreshTokens(ctx, "nobody", "app", at); err != nil || n != 0 {
		t.Errorf("unknown subject = %d, %v; want 0", n, err)
	}
	for _, c := range []struct{ subject, client string }{{"", "app"}, {"user-1", ""}} {
		_, err := s.RevokeUserClientRefreshTokens(ctx, c.subject, c.client, at)
		checkInvalid(t, "RevokeUserClientRefreshTokens("+c.subject+", "+c.client+")", err)
	}
	_, err := s.RevokeUserClientRefreshTokens(ctx, "user-1", "app", time.Time{})
	checkInvalid(t, "RevokeUserClientRefreshTokens at the zero time", err)
}
