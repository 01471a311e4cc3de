package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/keygate/keygate/store"
)

// passkeyTests is the passkey contract: credential records and the
// single-use, short-lived, capped WebAuthn challenges.
var passkeyTests = []any{
	testPasskeyRoundTrip, testPasskeyCap, testRecordPasskeyUse, testDeletePasskeys, testInvalidPasskeys,
	testChallengeSingleUse, testChallengeExpiry, testChallengeCap, testInvalidChallenges,
}

func newPasskey(t *testing.T, userID string, created time.Time) store.Passkey {
	t.Helper()
	return store.Passkey{ID: randomID(t)[:43], UserID: userID, Name: "Laptop 🔑", PublicKey: randomBytes(t, 77),
		AttestationFormat: "packed", AAGUID: randomBytes(t, 16), Transports: []string{"internal", "hybrid"},
		SignCount: 4294967295, UserVerified: true, BackupEligible: true, BackupState: false,
		CreatedAt: created, LastUsedAt: created.Add(time.Nanosecond)}
}

func passkeyDiff(got, want store.Passkey) string {
	var d differ
	d.text("ID", got.ID, want.ID)
	d.text("UserID", got.UserID, want.UserID)
	d.text("Name", got.Name, want.Name)
	d.blob("PublicKey", got.PublicKey, want.PublicKey)
	d.text("AttestationFormat", got.AttestationFormat, want.AttestationFormat)
	d.blob("AAGUID", got.AAGUID, want.AAGUID)
	d.list("Transports", got.Transports, want.Transports)
	if got.SignCount != want.SignCount || got.UserVerified != want.UserVerified ||
		got.BackupEligible != want.BackupEligible || got.BackupState != want.BackupState {
		d.add("count/UV/BE/BS %d/%v/%v/%v, want %d/%v/%v/%v", got.SignCount, got.UserVerified, got.BackupEligible, got.BackupState,
			want.SignCount, want.UserVerified, want.BackupEligible, want.BackupState)
	}
	d.instant("CreatedAt", got.CreatedAt, want.CreatedAt)
	d.instant("LastUsedAt", got.LastUsedAt, want.LastUsedAt)
	return d.String()
}

func createPasskey(t *testing.T, s store.Store, p store.Passkey) {
	t.Helper()
	if err := s.CreatePasskey(t.Context(), p, 0); err != nil {
		t.Fatalf("CreatePasskey(%s of %s): %v", p.ID, p.UserID, err)
	}
}

func checkPasskey(t *testing.T, s store.Store, want store.Passkey) {
	t.Helper()
	checkStored(t, "GetPasskey", s.GetPasskey, want.ID, want, passkeyDiff, "passkey "+want.ID)
}

func listPasskeys(t *testing.T, s store.Store, userID string) []store.Passkey {
	t.Helper()
	return mustListOf(t, "ListUserPasskeys", s.ListUserPasskeys, userID)
}

func passkeyIDs(ps []store.Passkey) []string {
	ids := make([]string, len(ps))
	for i, p := range ps {
		ids[i] = p.ID
	}
	return ids
}

// testPasskeyRoundTrip: a passkey reads back as written, every field, and
// lists in creation order; a taken ID is a conflict, an unknown user or
// credential not found.
func testPasskeyRoundTrip(t *testing.T, s store.Store) {
	ctx := t.Context()
	alice, bob := newUser(t, "alice", ""), newUser(t, "bob", "")
	createUser(t, s, alice)
	createUser(t, s, bob)
	later := newPasskey(t, alice.ID, base.Add(time.Hour))
	first := newPasskey(t, alice.ID, base.In(time.FixedZone("UTC+3", 3*60*60)))
	bare := store.Passkey{ID: randomID(t)[:20], UserID: alice.ID, PublicKey: []byte{1}, CreatedAt: base.Add(2 * time.Hour)}
	for _, p := range []store.Passkey{later, first, bare, newPasskey(t, bob.ID, base)} {
		createPasskey(t, s, p)
	}
	checkPasskey(t, s, first)
	checkPasskey(t, s, bare)
	got := passkeyIDs(listPasskeys(t, s, alice.ID))
	if want := []string{first.ID, later.ID, bare.ID}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("alice's passkeys %v, want %v", got, want)
	}
	if ps := listPasskeys(t, s, "nobody"); len(ps) != 0 {
		t.Errorf("an unknown user has %d passkeys", len(ps))
	}
	if counts, err := s.CountPasskeysByUser(ctx); err != nil || len(counts) != 2 || counts[alice.ID] != 3 || counts[bob.ID] != 1 {
		t.Errorf("CountPasskeysByUser = %v, %v; want alice 3, bob 1 and nobody else", counts, err)
	}
	dup := newPasskey(t, bob.ID, base)
	dup.ID = first.ID
	checkErr(t, "CreatePasskey with a taken ID", s.CreatePasskey(ctx, dup, 0), store.ErrConflict)
	checkPasskey(t, s, first)
	checkErr(t, "CreatePasskey for an unknown user", s.CreatePasskey(ctx, newPasskey(t, "nobody", base), 0), store.ErrNotFound)
	_, err := s.GetPasskey(ctx, "no such credential")
	checkErr(t, "GetPasskey of an unknown ID", err, store.ErrNotFound)
}

// testPasskeyCap races registrations of one user: exactly the cap are
// stored, the rest are conflicts, and another user is not
// counted.
func testPasskeyCap(t *testing.T, s store.Store) {
	alice, bob := newUser(t, "alice", ""), newUser(t, "bob", "")
	createUser(t, s, alice)
	createUser(t, s, bob)
	createPasskey(t, s, newPasskey(t, bob.ID, base))
	const limit = 3
	errs := race(racers, func(i int) error {
		return s.CreatePasskey(t.Context(), newPasskey(t, alice.ID, base.Add(time.Duration(i))), limit)
	})
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, store.ErrConflict):
			t.Errorf("registration %d: %v, want success or ErrConflict", i, err)
		}
	}
	if n := len(listPasskeys(t, s, alice.ID)); won != limit || n != limit {
		t.Errorf("%d registrations succeeded and %d are stored, want %d", won, n, limit)
	}
}

// testRecordPasskeyUse: a use moves the count, the backup state and the
// last use, guarded by the count read: a stale count is a conflict, and of
// concurrent uses from one count exactly one records.
func testRecordPasskeyUse(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := newUser(t, "alice", "")
	createUser(t, s, u)
	p := newPasskey(t, u.ID, base)
	p.SignCount = 5
	createPasskey(t, s, p)
	now := base.Add(time.Hour)
	checkErr(t, "RecordPasskeyUse", s.RecordPasskeyUse(ctx, p.ID, 5, 6, true, now), nil)
	p.SignCount, p.BackupState, p.LastUsedAt = 6, true, now
	checkPasskey(t, s, p)
	checkErr(t, "RecordPasskeyUse from a stale count", s.RecordPasskeyUse(ctx, p.ID, 5, 7, false, now.Add(time.Second)), store.ErrConflict)
	checkPasskey(t, s, p)
	checkErr(t, "RecordPasskeyUse of an unknown passkey", s.RecordPasskeyUse(ctx, "nope", 0, 1, false, now), store.ErrNotFound)
	checkInvalid(t, "RecordPasskeyUse without a time", s.RecordPasskeyUse(ctx, p.ID, 6, 7, false, time.Time{}))
	checkOneWinner(t, race(racers, func(i int) error {
		return s.RecordPasskeyUse(ctx, p.ID, 6, 7+uint32(i), false, now.Add(time.Duration(i)))
	}))
}

// testDeletePasskeys: a user deletes only their own passkeys; all of a
// user's go at once (a reset), and with the user.
func testDeletePasskeys(t *testing.T, s store.Store) {
	ctx := t.Context()
	alice, bob := newUser(t, "alice", ""), newUser(t, "bob", "")
	createUser(t, s, alice)
	createUser(t, s, bob)
	a1, a2, b1 := newPasskey(t, alice.ID, base), newPasskey(t, alice.ID, base.Add(1)), newPasskey(t, bob.ID, base)
	for _, p := range []store.Passkey{a1, a2, b1} {
		createPasskey(t, s, p)
	}
	checkErr(t, "DeletePasskey of another user's passkey", s.DeletePasskey(ctx, alice.ID, b1.ID), store.ErrNotFound)
	checkPasskey(t, s, b1)
	checkErr(t, "DeletePasskey", s.DeletePasskey(ctx, alice.ID, a1.ID), nil)
	checkPasskey(t, s, a2)
	checkErr(t, "DeletePasskey again", s.DeletePasskey(ctx, alice.ID, a1.ID), store.ErrNotFound)
	createPasskey(t, s, newPasskey(t, alice.ID, base.Add(2)))
	if n, err := s.DeleteUserPasskeys(ctx, alice.ID); n != 2 || err != nil {
		t.Errorf("DeleteUserPasskeys(alice) = %d, %v; want 2", n, err)
	}
	if ps := listPasskeys(t, s, alice.ID); len(ps) != 0 {
		t.Errorf("alice has %d passkeys after the reset", len(ps))
	}
	checkErr(t, "DeleteUser", s.DeleteUser(ctx, bob.ID), nil)
	_, err := s.GetPasskey(ctx, b1.ID)
	checkErr(t, "GetPasskey of a deleted user's passkey", err, store.ErrNotFound)
	_ = a2
}

// testInvalidPasskeys: records missing what is required are refused as
// invalid and write nothing.
func testInvalidPasskeys(t *testing.T, s store.Store) {
	u := newUser(t, "alice", "")
	createUser(t, s, u)
	for name, edit := range map[string]func(p *store.Passkey){
		"no id":             func(p *store.Passkey) { p.ID = "" },
		"no public key":     func(p *store.Passkey) { p.PublicKey = nil },
		"no creation time":  func(p *store.Passkey) { p.CreatedAt = time.Time{} },
		"name not UTF-8":    func(p *store.Passkey) { p.Name = "b\xffd" },
		"used after 2262":   func(p *store.Passkey) { p.LastUsedAt = time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC) },
		"transport not UTF": func(p *store.Passkey) { p.Transports = []string{"\xff"} },
	} {
		p := newPasskey(t, u.ID, base)
		edit(&p)
		checkInvalid(t, "CreatePasskey with "+name, s.CreatePasskey(t.Context(), p, 0))
	}
	if ps := listPasskeys(t, s, u.ID); len(ps) != 0 {
		t.Errorf("%d passkeys after refused writes", len(ps))
	}
}

func newChallenge(t *testing.T, ceremony, binding string, created time.Time) store.WebAuthnChallenge {
	t.Helper()
	return store.WebAuthnChallenge{ID: randomID(t), Ceremony: ceremony, UserID: "user-1", Binding: binding,
		Data: []byte(`{"challenge":"` + randomID(t) + `"}`), CreatedAt: created, ExpiresAt: created.Add(5 * time.Minute)}
}

func createChallenge(t *testing.T, s store.Store, c store.WebAuthnChallenge, limit int) {
	t.Helper()
	if err := s.CreateWebAuthnChallenge(t.Context(), c, limit); err != nil {
		t.Fatalf("CreateWebAuthnChallenge(%s): %v", c.ID, err)
	}
}

func challengeDiff(got, want store.WebAuthnChallenge) string {
	var d differ
	d.text("ID", got.ID, want.ID)
	d.text("Ceremony", got.Ceremony, want.Ceremony)
	d.text("UserID", got.UserID, want.UserID)
	d.text("Binding", got.Binding, want.Binding)
	d.blob("Data", got.Data, want.Data)
	d.instant("CreatedAt", got.CreatedAt, want.CreatedAt)
	d.instant("ExpiresAt", got.ExpiresAt, want.ExpiresAt)
	return d.String()
}

// testChallengeSingleUse: a challenge reads back once, whole; a second
// consumption finds nothing; of consumers racing exactly
// one gets it.
func testChallengeSingleUse(t *testing.T, s store.Store) {
	ctx := t.Context()
	c := newChallenge(t, store.CeremonyRegistration, "session-1", base)
	createChallenge(t, s, c, 0)
	checkErr(t, "CreateWebAuthnChallenge with a taken ID", s.CreateWebAuthnChallenge(ctx, c, 0), store.ErrConflict)
	got, err := s.ConsumeWebAuthnChallenge(ctx, c.ID, base.Add(time.Second))
	checkErr(t, "ConsumeWebAuthnChallenge", err, nil)
	if d := challengeDiff(got, c); d != "" {
		t.Errorf("consumed challenge: %s", d)
	}
	_, err = s.ConsumeWebAuthnChallenge(ctx, c.ID, base.Add(time.Second))
	checkErr(t, "ConsumeWebAuthnChallenge again", err, store.ErrNotFound)

	for round := range 5 {
		c := newChallenge(t, store.CeremonyLogin, "address-1", base)
		createChallenge(t, s, c, 0)
		errs := race(racers, func(int) error {
			_, err := s.ConsumeWebAuthnChallenge(ctx, c.ID, base.Add(time.Second))
			return err
		})
		won := 0
		for i, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, store.ErrNotFound):
				t.Errorf("round %d: consumer %d: %v, want ErrNotFound", round, i, err)
			}
		}
		if won != 1 {
			t.Errorf("round %d: %d consumers got the challenge, want exactly 1", round, won)
		}
	}
}

// testChallengeExpiry: a challenge consumed at or after its expiry is a
// conflict, and gone; PruneBrowser deletes expired ones and keeps the rest.
func testChallengeExpiry(t *testing.T, s store.Store) {
	ctx := t.Context()
	c := newChallenge(t, store.CeremonyLogin, "address-1", base)
	createChallenge(t, s, c, 0)
	_, err := s.ConsumeWebAuthnChallenge(ctx, c.ID, c.ExpiresAt)
	checkErr(t, "ConsumeWebAuthnChallenge at its expiry", err, store.ErrConflict)
	_, err = s.ConsumeWebAuthnChallenge(ctx, c.ID, base)
	checkErr(t, "ConsumeWebAuthnChallenge after the expired one", err, store.ErrNotFound)

	old, fresh := newChallenge(t, store.CeremonyLogin, "a", base), newChallenge(t, store.CeremonyLogin, "b", base.Add(time.Hour))
	createChallenge(t, s, old, 0)
	createChallenge(t, s, fresh, 0)
	if n, err := s.PruneBrowser(ctx, old.ExpiresAt); err != nil || n != 1 {
		t.Errorf("PruneBrowser = %d, %v; want 1", n, err)
	}
	_, err = s.ConsumeWebAuthnChallenge(ctx, old.ID, base)
	checkErr(t, "ConsumeWebAuthnChallenge of a pruned challenge", err, store.ErrNotFound)
	_, err = s.ConsumeWebAuthnChallenge(ctx, fresh.ID, base.Add(time.Hour))
	checkErr(t, "ConsumeWebAuthnChallenge of a kept challenge", err, nil)
}

// testChallengeCap: a binding keeps at most the cap, the newest, however
// many are created at once; other bindings are untouched.
func testChallengeCap(t *testing.T, s store.Store) {
	ctx := t.Context()
	const limit = 3
	other := newChallenge(t, store.CeremonyLogin, "address-2", base)
	createChallenge(t, s, other, limit)
	cs := make([]store.WebAuthnChallenge, 2*racers)
	for i := range cs {
		cs[i] = newChallenge(t, store.CeremonyLogin, "address-1", base.Add(time.Duration(i)*time.Second))
	}
	for i, err := range race(len(cs), func(i int) error { return s.CreateWebAuthnChallenge(ctx, cs[i], limit) }) {
		if err != nil {
			t.Fatalf("CreateWebAuthnChallenge %d: %v", i, err)
		}
	}
	left := 0
	for _, c := range cs {
		if _, err := s.ConsumeWebAuthnChallenge(ctx, c.ID, base); err == nil {
			left++
		}
	}
	if left != limit {
		t.Errorf("%d challenges of one binding left, want %d", left, limit)
	}
	// Created one after another, the newest stay.
	seq := cs[:0:0]
	for i := range 5 {
		c := newChallenge(t, store.CeremonyLogin, "address-3", base.Add(time.Duration(i)*time.Second))
		createChallenge(t, s, c, limit)
		seq = append(seq, c)
	}
	for i, c := range seq {
		_, err := s.ConsumeWebAuthnChallenge(ctx, c.ID, base)
		if want := i >= len(seq)-limit; (err == nil) != want {
			t.Errorf("challenge %d of 5: consumed %v (%v), want %v", i, err == nil, err, want)
		}
	}
	_, err := s.ConsumeWebAuthnChallenge(ctx, other.ID, base)
	checkErr(t, "ConsumeWebAuthnChallenge of another binding", err, nil)
}

// testInvalidChallenges: challenges missing what is required are refused
// as invalid.
func testInvalidChallenges(t *testing.T, s store.Store) {
	for name, edit := range map[string]func(c *store.WebAuthnChallenge){
		"no id":             func(c *store.WebAuthnChallenge) { c.ID = "" },
		"no binding":        func(c *store.WebAuthnChallenge) { c.Binding = "" },
		"unknown ceremony":  func(c *store.WebAuthnChallenge) { c.Ceremony = "signing" },
		"no expiry":         func(c *store.WebAuthnChallenge) { c.ExpiresAt = time.Time{} },
		"binding not UTF-8": func(c *store.WebAuthnChallenge) { c.Binding = "\xff" },
	} {
		c := newChallenge(t, store.CeremonyLogin, "address-1", base)
		edit(&c)
		checkInvalid(t, "CreateWebAuthnChallenge with "+name, s.CreateWebAuthnChallenge(t.Context(), c, 0))
	}
	_, err := s.ConsumeWebAuthnChallenge(t.Context(), "x", time.Time{})
	checkInvalid(t, "ConsumeWebAuthnChallenge without a time", err)
}
