package storetest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/store"
)

// browserTests is the sessions-and-codes contract.
var browserTests = []any{
	testSessionRoundTrip, testTouchSession, testDeleteSessions, testListUserSessions, testCodeRoundTrip,
	testRedeemCode, testConcurrentRedeem, testPruneBrowser, testInvalidBrowserInput, testCodeCapPerSession,
	testAttackAuthCodeFlood,
}

func newSession(t *testing.T, user string, created time.Time) store.Session {
	t.Helper()
	return store.Session{ID: randomID(t), UserID: user, AuthTime: created.Add(-time.Second), AMR: []string{"pwd", "otp", "mfa"},
		CreatedAt: created, LastSeen: created, ExpiresAt: created.Add(24 * time.Hour)}
}

func sessionDiff(got, want store.Session) string {
	var d differ
	d.text("ID", got.ID, want.ID)
	d.text("UserID", got.UserID, want.UserID)
	d.instant("AuthTime", got.AuthTime, want.AuthTime)
	d.list("AMR", got.AMR, want.AMR)
	d.instant("CreatedAt", got.CreatedAt, want.CreatedAt)
	d.instant("LastSeen", got.LastSeen, want.LastSeen)
	d.instant("ExpiresAt", got.ExpiresAt, want.ExpiresAt)
	return d.String()
}

func createSession(t *testing.T, s store.Store, ss store.Session) {
	t.Helper()
	if err := s.CreateSession(t.Context(), ss); err != nil {
		t.Fatalf("CreateSession(%s): %v", ss.ID, err)
	}
}

func checkSession(t *testing.T, s store.Store, want store.Session) {
	t.Helper()
	checkStored(t, "GetSession", s.GetSession, want.ID, want, sessionDiff, "session "+want.ID)
}

func checkNoSession(t *testing.T, s store.Store, id string) {
	t.Helper()
	checkGone(t, "GetSession", s.GetSession, id)
}

func testSessionRoundTrip(t *testing.T, s store.Store) {
	nyc := time.FixedZone("UTC-5", -5*60*60)
	full := newSession(t, "user-1", base)
	other := newSession(t, "user-2", base.In(nyc).Add(7))
	other.ExpiresAt = time.Date(2199, time.December, 31, 23, 59, 59, 999999999, nyc)
	other.AMR = []string{"hwk", "user", "mfa"}
	minimal := store.Session{ID: randomID(t), UserID: "user-3", ExpiresAt: base}
	for _, ss := range []store.Session{full, other, minimal} {
		createSession(t, s, ss)
		checkSession(t, s, ss)
	}
	dup := newSession(t, "intruder", base)
	dup.ID = full.ID
	checkErr(t, "CreateSession with a taken ID", s.CreateSession(t.Context(), dup), store.ErrConflict)
	checkSession(t, s, full)
	checkNoSession(t, s, randomID(t))
}

func testTouchSession(t *testing.T, s store.Store) {
	ctx := t.Context()
	ss := newSession(t, "user-1", base)
	createSession(t, s, ss)
	later := base.Add(10*time.Minute + 3)
	checkErr(t, "TouchSession", s.TouchSession(ctx, ss.ID, later), nil)
	ss.LastSeen = later
	checkSession(t, s, ss)

	// A late request that arrives after a newer one cannot move it back.
	checkErr(t, "TouchSession with an earlier time", s.TouchSession(ctx, ss.ID, base.Add(time.Minute)), nil)
	checkSession(t, s, ss)

	checkErr(t, "TouchSession of an unknown session", s.TouchSession(ctx, randomID(t), later), store.ErrNotFound)
	checkInvalid(t, "TouchSession at the zero time", s.TouchSession(ctx, ss.ID, time.Time{}))
	checkSession(t, s, ss)
}

func testDeleteSessions(t *testing.T, s store.Store) {
	ctx := t.Context()
	a1, a2, b := newSession(t, "alice", base), newSession(t, "alice", base.Add(time.Hour)), newSession(t, "bob", base)
	for _, ss := range []store.Session{a1, a2, b} {
		createSession(t, s, ss)
	}
	checkErr(t, "DeleteSession", s.DeleteSession(ctx, a1.ID), nil)
	checkNoSession(t, s, a1.ID)
	checkSession(t, s, a2)
	checkErr(t, "DeleteSession again", s.DeleteSession(ctx, a1.ID), store.ErrNotFound)

	createSession(t, s, a1) // the same ID may be stored again once deleted
	n, err := s.DeleteUserSessions(ctx, "alice")
	if err != nil || n != 2 {
		t.Fatalf("DeleteUserSessions(alice) = %d, %v; want 2, nil", n, err)
	}
	checkNoSession(t, s, a1.ID)
	checkNoSession(t, s, a2.ID)
	checkSession(t, s, b)
	if n, err := s.DeleteUserSessions(ctx, "alice"); err != nil || n != 0 {
		t.Errorf("DeleteUserSessions(alice) again = %d, %v; want 0, nil", n, err)
	}
	if n, err := s.DeleteUserSessions(ctx, "nobody"); err != nil || n != 0 {
		t.Errorf("DeleteUserSessions(nobody) = %d, %v; want 0, nil", n, err)
	}
}

// --- authorization codes ---

func newCode(t *testing.T, created time.Time) store.AuthCode {
	t.Helper()
	return store.AuthCode{
		ID:            randomID(t),
		ClientID:      "webapp",
		RedirectURI:   "https://app.example/cb?x=1",
		UserID:        "user-1",
		SessionID:     "session-" + randomID(t), // its own: the cap is tested apart
		Scope:         "openid profile email",
		Nonce:         "n-0S6_WzA2Mj",
		CodeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
		DPoPJKT:       "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I",
		AuthTime:      created.Add(-time.Minute),
		AMR:           []string{"pwd"},
		CreatedAt:     created,
		ExpiresAt:     created.Add(time.Minute),
	}
}

func codeDiff(got, want store.AuthCode) string {
	var d differ
	d.text("ID", got.ID, want.ID)
	d.text("ClientID", got.ClientID, want.ClientID)
	d.text("RedirectURI", got.RedirectURI, want.RedirectURI)
	d.text("UserID", got.UserID, want.UserID)
	d.text("SessionID", got.SessionID, want.SessionID)
	d.text("Scope", got.Scope, want.Scope)
	d.text("Nonce", got.Nonce, want.Nonce)
	d.text("CodeChallenge", got.CodeChallenge, want.CodeChallenge)
	d.text("DPoPJKT", got.DPoPJKT, want.DPoPJKT)
	d.instant("AuthTime", got.AuthTime, want.AuthTime)
	d.list("AMR", got.AMR, want.AMR)
	d.instant("CreatedAt", got.CreatedAt, want.CreatedAt)
	d.instant("ExpiresAt", got.ExpiresAt, want.ExpiresAt)
	d.instant("UsedAt", got.UsedAt, want.UsedAt)
	d.text("FamilyID", got.FamilyID, want.FamilyID)
	d.text("AccessJTI", got.AccessJTI, want.AccessJTI)
	d.instant("AccessExpiresAt", got.AccessExpiresAt, want.AccessExpiresAt)
	return d.String()
}

func createCode(t *testing.T, s store.Store, c store.AuthCode) {
	t.Helper()
	if err := s.CreateAuthCode(t.Context(), c, 0); err != nil {
		t.Fatalf("CreateAuthCode(%s): %v", c.ID, err)
	}
}

func checkCode(t *testing.T, s store.Store, want store.AuthCode) {
	t.Helper()
	checkStored(t, "GetAuthCode", s.GetAuthCode, want.ID, want, codeDiff, "authorization code "+want.ID)
}

func testCodeRoundTrip(t *testing.T, s store.Store) {
	full := newCode(t, base)
	minimal := store.AuthCode{ID: randomID(t), ClientID: "c", RedirectURI: "http://127.0.0.1:9/cb", UserID: "u", ExpiresAt: base}
	unicode := newCode(t, base.In(time.FixedZone("X", 3600)))
	unicode.Nonce, unicode.Scope = `nonce "é" \ 😀`, "openid é"
	for _, c := range []store.AuthCode{full, minimal, unicode} {
		createCode(t, s, c)
		checkCode(t, s, c)
	}
	dup := newCode(t, base)
	dup.ID = full.ID
	checkErr(t, "CreateAuthCode with a taken ID", s.CreateAuthCode(t.Context(), dup, 0), store.ErrConflict)
	checkCode(t, s, full)
	if _, err := s.GetAuthCode(t.Context(), randomID(t)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetAuthCode(unknown): %v, want ErrNotFound", err)
	}
}

func testRedeemCode(t *testing.T, s store.Store) {
	ctx := t.Context()
	c := newCode(t, base)
	createCode(t, s, c)
	now := base.Add(10*time.Second + 7)
	atExp := now.Add(15 * time.Minute)
	got, err := s.RedeemAuthCode(ctx, c.ID, now, "family-1", "jti-1", atExp)
	checkErr(t, "RedeemAuthCode", err, nil)
	c.UsedAt, c.FamilyID, c.AccessJTI, c.AccessExpiresAt = now, "family-1", "jti-1", atExp
	if d := codeDiff(got, c); d != "" {
		t.Errorf("RedeemAuthCode returned %s", d)
	}
	checkCode(t, s, c)

	// A second use is a conflict and changes nothing: what the first issued
	// stays readable, so that it can be revoked.
	_, err = s.RedeemAuthCode(ctx, c.ID, now.Add(time.Second), "family-2", "jti-2", atExp.Add(time.Second))
	checkErr(t, "RedeemAuthCode a second time", err, store.ErrConflict)
	checkCode(t, s, c)

	// Without a refresh token (the client may not refresh).
	norefresh := newCode(t, base)
	createCode(t, s, norefresh)
	_, err = s.RedeemAuthCode(ctx, norefresh.ID, now, "", "jti-3", atExp)
	checkErr(t, "RedeemAuthCode without a family", err, nil)
	norefresh.UsedAt, norefresh.AccessJTI, norefresh.AccessExpiresAt = now, "jti-3", atExp
	checkCode(t, s, norefresh)

	// An expired code cannot be redeemed: at its expiry or after.
	expired := newCode(t, base)
	createCode(t, s, expired)
	for _, at := range []time.Time{expired.ExpiresAt, expired.ExpiresAt.Add(time.Hour)} {
		_, err = s.RedeemAuthCode(ctx, expired.ID, at, "f", "j", atExp)
		checkErr(t, "RedeemAuthCode of an expired code", err, store.ErrConflict)
	}
	checkCode(t, s, expired)

	_, err = s.RedeemAuthCode(ctx, randomID(t), now, "f", "j", atExp)
	checkErr(t, "RedeemAuthCode of an unknown code", err, store.ErrNotFound)
}

func testConcurrentRedeem(t *testing.T, s store.Store) {
	c := newCode(t, base)
	createCode(t, s, c)
	now := base.Add(time.Second)
	jtis := make([]string, racers)
	for i := range jtis {
		jtis[i] = randomID(t)
	}
	errs := race(racers, func(i int) error {
		_, err := s.RedeemAuthCode(t.Context(), c.ID, now, "family-"+jtis[i], jtis[i], now.Add(time.Hour))
		return err
	})
	w := checkOneWinner(t, errs)
	c.UsedAt, c.FamilyID, c.AccessJTI, c.AccessExpiresAt = now, "family-"+jtis[w], jtis[w], now.Add(time.Hour)
	checkCode(t, s, c)
}

func testPruneBrowser(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := base.Add(48 * time.Hour)
	oldSession := newSession(t, "u", base) // expires at base+24h
	edgeSession := newSession(t, "u", base)
	edgeSession.ExpiresAt = now
	liveSession := newSession(t, "u", now.Add(-time.Hour))
	idle := newSession(t, "u", base.Add(40*time.Hour)) // long idle, but not past its absolute expiry
	for _, ss := range []store.Session{oldSession, edgeSession, liveSession, idle} {
		createSession(t, s, ss)
	}
	oldCode, liveCode := newCode(t, base), newCode(t, now)
	usedCode := newCode(t, base)
	for _, c := range []store.AuthCode{oldCode, liveCode, usedCode} {
		createCode(t, s, c)
	}
	if _, err := s.RedeemAuthCode(ctx, usedCode.ID, base.Add(time.Second), "", "j", base.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	n, err := s.PruneBrowser(ctx, now)
	if err != nil {
		t.Fatalf("PruneBrowser: %v", err)
	}
	if n != 2+2 {
		t.Errorf("PruneBrowser deleted %d rows, want 4", n)
	}
	checkNoSession(t, s, oldSession.ID)
	checkNoSession(t, s, edgeSession.ID)
	checkSession(t, s, liveSession)
	checkSession(t, s, idle)
	for _, c := range []store.AuthCode{oldCode, usedCode} {
		if _, err := s.GetAuthCode(ctx, c.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetAuthCode(%s) after pruning: %v, want ErrNotFound", c.ID, err)
		}
	}
	checkCode(t, s, liveCode)
	if n, err := s.PruneBrowser(ctx, now); err != nil || n != 0 {
		t.Errorf("second PruneBrowser = %d, %v; want 0, nil", n, err)
	}
	if _, err := s.PruneBrowser(ctx, time.Time{}); err == nil {
		t.Error("PruneBrowser at the zero time succeeded, want an error")
	}
}

func testInvalidBrowserInput(t *testing.T, s store.Store) {
	ctx := t.Context()
	for name, edit := range map[string]func(*store.Session){
		"session without ID":       func(ss *store.Session) { ss.ID = "" },
		"session without user":     func(ss *store.Session) { ss.UserID = "" },
		"session without expiry":   func(ss *store.Session) { ss.ExpiresAt = time.Time{} },
		"session time before 1678": func(ss *store.Session) { ss.CreatedAt = time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC) },
	} {
		ss := newSession(t, "u", base)
		edit(&ss)
		checkInvalid(t, "CreateSession: "+name, s.CreateSession(ctx, ss))
		if ss.ID != "" {
			checkNoSession(t, s, ss.ID)
		}
	}
	for name, edit := range map[string]func(*store.AuthCode){
		"code without ID":           func(c *store.AuthCode) { c.ID = "" },
		"code without client":       func(c *store.AuthCode) { c.ClientID = "" },
		"code without redirect URI": func(c *store.AuthCode) { c.RedirectURI = "" },
		"code without user":         func(c *store.AuthCode) { c.UserID = "" },
		"code without expiry":       func(c *store.AuthCode) { c.ExpiresAt = time.Time{} },
		"nonce not UTF-8":           func(c *store.AuthCode) { c.Nonce = "n\xff" },
	} {
		c := newCode(t, base)
		edit(&c)
		checkInvalid(t, "CreateAuthCode: "+name, s.CreateAuthCode(ctx, c, 0))
		if c.ID != "" {
			if _, err := s.GetAuthCode(ctx, c.ID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("%s: stored anyway (%v)", name, err)
			}
		}
	}
	c := newCode(t, base)
	createCode(t, s, c)
	now := base.Add(time.Second)
	_, err := s.RedeemAuthCode(ctx, c.ID, time.Time{}, "f", "j", now.Add(time.Hour))
	checkInvalid(t, "RedeemAuthCode at the zero time", err)
	_, err = s.RedeemAuthCode(ctx, c.ID, now, "f", "", now.Add(time.Hour))
	checkInvalid(t, "RedeemAuthCode without an access jti", err)
	_, err = s.RedeemAuthCode(ctx, c.ID, now, "f", "j", time.Time{})
	checkInvalid(t, "RedeemAuthCode without the access token's expiry", err)
	checkCode(t, s, c) // still unused
}

// storedCodes returns which of ids are still stored.
func storedCodes(t *testing.T, s store.Store, ids []string) []string {
	t.Helper()
	var out []string
	for _, id := range ids {
		_, err := s.GetAuthCode(t.Context(), id)
		switch {
		case err == nil:
			out = append(out, id)
		case !errors.Is(err, store.ErrNotFound):
			t.Fatalf("GetAuthCode(%s): %v", id, err)
		}
	}
	return out
}

// testCodeCapPerSession: CreateAuthCode keeps at most maxPerSession
// unredeemed codes of a session, deleting the oldest and never the new one;
// it keeps redeemed codes until they expire, deletes the session's expired
// codes, and leaves other sessions' codes and codes without a session alone.
func testCodeCapPerSession(t *testing.T, s store.Store) {
	const limit = 3
	ctx := t.Context()
	issue := func(session string, at time.Time) store.AuthCode {
		c := newCode(t, at)
		c.SessionID = session
		if err := s.CreateAuthCode(ctx, c, limit); err != nil {
			t.Fatalf("CreateAuthCode(%s): %v", c.ID, err)
		}
		return c
	}
	other := issue("other-session", base)
	none := newCode(t, base)
	none.SessionID = ""
	createCode(t, s, none)
	redeemed := issue("s", base)
	if _, err := s.RedeemAuthCode(ctx, redeemed.ID, base.Add(time.Millisecond), "", "jti", base.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 5 {
		ids = append(ids, issue("s", base.Add(time.Duration(i+1)*time.Second)).ID)
	}
	if got, want := storedCodes(t, s, ids), ids[2:]; !slices.Equal(got, want) {
		t.Errorf("after 5 codes with a cap of %d: stored %v, want the newest %v", limit, got, want)
	}
	if got := storedCodes(t, s, []string{redeemed.ID, other.ID, none.ID}); len(got) != 3 {
		t.Errorf("the cap deleted a redeemed code, another session's or one without a session: left %v", got)
	}
	// Same CreatedAt for all: the new code is never the one deleted.
	at := base.Add(10 * time.Second)
	for range 4 {
		c := issue("tie", at)
		checkCode(t, s, c)
	}
	// Later, the session's expired codes go, redeemed or not.
	late := issue("s", base.Add(time.Hour))
	if got := storedCodes(t, s, append([]string{redeemed.ID, late.ID}, ids...)); !slices.Equal(got, []string{late.ID}) {
		t.Errorf("after the others expired: stored %v, want only %s", got, late.ID)
	}
	if got := storedCodes(t, s, []string{other.ID, none.ID}); len(got) != 2 {
		t.Errorf("another session's expired codes are the prune's, not this insert's: left %v", got)
	}
}

// testAttackAuthCodeFlood: a flood of codes for one session, 200 calls at
// once, leaves at most the cap stored, each call succeeding.
func testAttackAuthCodeFlood(t *testing.T, s store.Store) {
	const limit, calls = 20, 200
	var wg sync.WaitGroup
	ids := make([]string, calls)
	errs := make(chan error, calls)
	for i := range calls {
		c := newCode(t, base.Add(time.Duration(i)*time.Millisecond))
		c.SessionID = "flooded"
		ids[i] = c.ID
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.CreateAuthCode(context.Background(), c, limit); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("CreateAuthCode under a flood: %v", err)
	}
	if got := storedCodes(t, s, ids); len(got) != limit {
		t.Errorf("%d codes of one session stored after %d concurrent calls, want the cap, %d", len(got), calls, limit)
	}
}
