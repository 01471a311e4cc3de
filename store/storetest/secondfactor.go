package storetest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/stampede"
	"github.com/keygate/keygate/store"
)

var secondFactorTests = []any{
	testTOTPEnrolment, testTOTPStepReplay, testRecoveryCodeSingleUse, testDeleteTOTP, testPendingSession,
	testReplaceRecoveryCodes, testResealTOTP,
}

func recoveryDigests(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		sum := sha256.Sum256(fmt.Appendf(nil, "code-%d", i))
		out[i] = sum[:]
	}
	return out
}

func getTOTP(t *testing.T, s store.Store, user string) store.TOTP {
	t.Helper()
	return mustGet(t, "GetTOTP", s.GetTOTP, user)
}

// confirmedTOTP stores and confirms a TOTP for user at step 100 with n
// recovery codes.
func confirmedTOTP(t *testing.T, s store.Store, user string, n int) {
	t.Helper()
	checkErr(t, "PutTOTP", s.PutTOTP(t.Context(), store.TOTP{UserID: user, Sealed: []byte("sealed"), CreatedAt: base}), nil)
	checkErr(t, "ConfirmTOTP", s.ConfirmTOTP(t.Context(), user, 100, recoveryDigests(n), base.Add(time.Minute)), nil)
}

// oneWins runs f 16 times at once and fails unless exactly one succeeds
// and the others are conflicts.
func oneWins(t *testing.T, what string, f func() error) {
	t.Helper()
	won := 0
	for _, err := range stampede.Run(16, func(int) error { return f() }) {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, store.ErrConflict):
			t.Errorf("concurrent %s: %v", what, err)
		}
	}
	if won != 1 {
		t.Errorf("%d of 16 concurrent %s calls succeeded, want 1", won, what)
	}
}

// testTOTPEnrolment: an unconfirmed TOTP can be replaced; confirming makes
// it active with its recovery codes; a confirmed one is neither replaced nor
// confirmed again.
func testTOTPEnrolment(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, err := s.GetTOTP(ctx, "alice")
	checkErr(t, "GetTOTP before any", err, store.ErrNotFound)
	checkErr(t, "ConfirmTOTP without one", s.ConfirmTOTP(ctx, "alice", 1, nil, base), store.ErrNotFound)
	checkErr(t, "PutTOTP", s.PutTOTP(ctx, store.TOTP{UserID: "alice", Sealed: []byte("first"), CreatedAt: base}), nil)
	checkErr(t, "PutTOTP again (restart enrolment)", s.PutTOTP(ctx, store.TOTP{UserID: "alice", Sealed: []byte("second"),
		CreatedAt: base.Add(time.Second)}), nil)
	got := getTOTP(t, s, "alice")
	if !bytes.Equal(got.Sealed, []byte("second")) || got.Confirmed() || !got.CreatedAt.Equal(base.Add(time.Second)) || got.RecoveryLeft != 0 {
		t.Errorf("unconfirmed TOTP = %+v", got)
	}
	checkErr(t, "UseTOTPStep before confirmation", s.UseTOTPStep(ctx, "alice", 5), store.ErrConflict)
	now := base.Add(time.Minute)
	checkErr(t, "ConfirmTOTP", s.ConfirmTOTP(ctx, "alice", 42, recoveryDigests(10), now), nil)
	got = getTOTP(t, s, "alice")
	if !got.Confirmed() || !got.ConfirmedAt.Equal(now) || got.LastStep != 42 || got.RecoveryLeft != 10 {
		t.Errorf("confirmed TOTP = %+v", got)
	}
	checkErr(t, "ConfirmTOTP again", s.ConfirmTOTP(ctx, "alice", 43, recoveryDigests(10), now), store.ErrConflict)
	checkErr(t, "PutTOTP over a confirmed one", s.PutTOTP(ctx, store.TOTP{UserID: "alice", Sealed: []byte("evil"), CreatedAt: now}),
		store.ErrConflict)
	if got := getTOTP(t, s, "alice"); !bytes.Equal(got.Sealed, []byte("second")) {
		t.Errorf("sealed secret changed to %q", got.Sealed)
	}
	for name, err := range map[string]error{
		"PutTOTP without user":    s.PutTOTP(ctx, store.TOTP{Sealed: []byte("x"), CreatedAt: base}),
		"PutTOTP without secret":  s.PutTOTP(ctx, store.TOTP{UserID: "bob", CreatedAt: base}),
		"ConfirmTOTP with 21":     s.ConfirmTOTP(ctx, "bob", 1, recoveryDigests(store.MaxRecoveryCodes+1), now),
		"ConfirmTOTP with empty":  s.ConfirmTOTP(ctx, "bob", 1, [][]byte{nil}, now),
		"ConfirmTOTP without now": s.ConfirmTOTP(ctx, "bob", 1, nil, time.Time{}),
	} {
		if err == nil || errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: %v, want an invalid-input error", name, err)
		}
	}
}

// testTOTPStepReplay: a step is accepted once, only forward, and of many
// concurrent uses of one step exactly one wins.
func testTOTPStepReplay(t *testing.T, s store.Store) {
	ctx := t.Context()
	confirmedTOTP(t, s, "alice", 0)
	checkErr(t, "the confirming step again", s.UseTOTPStep(ctx, "alice", 100), store.ErrConflict)
	checkErr(t, "an older step", s.UseTOTPStep(ctx, "alice", 99), store.ErrConflict)
	checkErr(t, "the next step", s.UseTOTPStep(ctx, "alice", 101), nil)
	checkErr(t, "another user's", s.UseTOTPStep(ctx, "bob", 500), store.ErrConflict)
	oneWins(t, "UseTOTPStep", func() error { return s.UseTOTPStep(ctx, "alice", 102) })
	if got := getTOTP(t, s, "alice").LastStep; got != 102 {
		t.Errorf("LastStep = %d, want 102", got)
	}
}

// testRecoveryCodeSingleUse: each code is spent once, concurrently too, and
// only by its user.
func testRecoveryCodeSingleUse(t *testing.T, s store.Store) {
	ctx := t.Context()
	confirmedTOTP(t, s, "alice", 10)
	codes := recoveryDigests(10)
	checkErr(t, "bob using alice's code", s.UseRecoveryCode(ctx, "bob", codes[0], base), store.ErrConflict)
	checkErr(t, "an unknown code", s.UseRecoveryCode(ctx, "alice", []byte("nope"), base), store.ErrConflict)
	oneWins(t, "UseRecoveryCode", func() error { return s.UseRecoveryCode(ctx, "alice", codes[3], base) })
	if left := getTOTP(t, s, "alice").RecoveryLeft; left != 9 {
		t.Errorf("RecoveryLeft = %d, want 9", left)
	}
}

// testDeleteTOTP: deleting removes the TOTP and its codes; deleting the user
// does too.
func testDeleteTOTP(t *testing.T, s store.Store) {
	ctx := t.Context()
	confirmedTOTP(t, s, "alice", 10)
	had, err := s.DeleteTOTP(ctx, "alice")
	if err != nil || !had {
		t.Fatalf("DeleteTOTP = %v, %v; want true", had, err)
	}
	if had, err := s.DeleteTOTP(ctx, "alice"); err != nil || had {
		t.Errorf("DeleteTOTP again = %v, %v; want false", had, err)
	}
	_, err = s.GetTOTP(ctx, "alice")
	checkErr(t, "GetTOTP after delete", err, store.ErrNotFound)
	checkErr(t, "a recovery code after delete", s.UseRecoveryCode(ctx, "alice", recoveryDigests(1)[0], base), store.ErrConflict)

	u := newUser(t, "carol", "")
	createUser(t, s, u)
	confirmedTOTP(t, s, u.ID, 10)
	checkErr(t, "DeleteUser", s.DeleteUser(ctx, u.ID), nil)
	_, err = s.GetTOTP(ctx, u.ID)
	checkErr(t, "GetTOTP after DeleteUser", err, store.ErrNotFound)
	checkErr(t, "a recovery code after DeleteUser", s.UseRecoveryCode(ctx, u.ID, recoveryDigests(1)[0], base), store.ErrConflict)
}

// testPendingSession: a half-done login reads back as pending.
func testPendingSession(t *testing.T, s store.Store) {
	ss := newSession(t, "alice", base)
	ss.Pending, ss.AMR = true, []string{"pwd"}
	createSession(t, s, ss)
	got, err := s.GetSession(t.Context(), ss.ID)
	if err != nil || !got.Pending {
		t.Errorf("GetSession = %+v, %v; want Pending", got, err)
	}
	full := newSession(t, "alice", base)
	createSession(t, s, full)
	if got, _ := s.GetSession(t.Context(), full.ID); got.Pending {
		t.Error("a full session reads back as pending")
	}
}

// testReplaceRecoveryCodes: the new codes replace every old one, used or
// not, at once; a user without a confirmed TOTP has none to replace.
func testReplaceRecoveryCodes(t *testing.T, s store.Store) {
	ctx := t.Context()
	old := recoveryDigests(10)
	fresh := recoveryDigests(20)[10:]
	checkErr(t, "ReplaceRecoveryCodes without a TOTP", s.ReplaceRecoveryCodes(ctx, "alice", fresh, base), store.ErrNotFound)
	checkErr(t, "PutTOTP", s.PutTOTP(ctx, store.TOTP{UserID: "alice", Sealed: []byte("sealed"), CreatedAt: base}), nil)
	checkErr(t, "ReplaceRecoveryCodes of an unconfirmed TOTP", s.ReplaceRecoveryCodes(ctx, "alice", fresh, base), store.ErrNotFound)
	checkErr(t, "ConfirmTOTP", s.ConfirmTOTP(ctx, "alice", 100, old, base), nil)
	checkErr(t, "UseRecoveryCode", s.UseRecoveryCode(ctx, "alice", old[0], base), nil)
	checkErr(t, "ReplaceRecoveryCodes", s.ReplaceRecoveryCodes(ctx, "alice", fresh, base.Add(time.Minute)), nil)
	if left := getTOTP(t, s, "alice").RecoveryLeft; left != 10 {
		t.Errorf("RecoveryLeft = %d after replacing, want 10", left)
	}
	for i, h := range old {
		checkErr(t, fmt.Sprintf("old code %d", i), s.UseRecoveryCode(ctx, "alice", h, base), store.ErrConflict)
	}
	checkErr(t, "a new code", s.UseRecoveryCode(ctx, "alice", fresh[9], base), nil)
	checkInvalid(t, "too many codes", s.ReplaceRecoveryCodes(ctx, "alice", recoveryDigests(store.MaxRecoveryCodes+1), base))
	if left := getTOTP(t, s, "alice").RecoveryLeft; left != 9 {
		t.Errorf("RecoveryLeft = %d after a refused replacement, want 9", left)
	}
}

// testResealTOTP: a reseal is a compare-and-set on the sealed bytes: it
// changes only them, once, and of concurrent reseals from the same bytes
// exactly one wins; ListTOTP lists every user's, confirmed or not.
func testResealTOTP(t *testing.T, s store.Store) {
	ctx := t.Context()
	confirmedTOTP(t, s, "bob", 10)
	checkErr(t, "PutTOTP", s.PutTOTP(ctx, store.TOTP{UserID: "alice", Sealed: []byte("unconfirmed"), CreatedAt: base}), nil)
	list, err := s.ListTOTP(ctx)
	if err != nil || len(list) != 2 || list[0].UserID != "alice" || list[1].UserID != "bob" ||
		list[0].Confirmed() || !list[1].Confirmed() || list[1].RecoveryLeft != 10 {
		t.Fatalf("ListTOTP = %+v, %v", list, err)
	}
	if sealed, err := s.ListSealedTOTP(ctx); err != nil || len(sealed) != 2 ||
		!slices.ContainsFunc(sealed, func(b []byte) bool { return string(b) == "unconfirmed" }) ||
		!slices.ContainsFunc(sealed, func(b []byte) bool { return string(b) == string(list[1].Sealed) }) {
		t.Errorf("ListSealedTOTP = %q, %v; want alice's and bob's sealed secrets", sealed, err)
	}
	before := getTOTP(t, s, "bob")
	checkErr(t, "ResealTOTP from the wrong bytes", s.ResealTOTP(ctx, "bob", []byte("other"), []byte("new")), store.ErrConflict)
	checkErr(t, "ResealTOTP of nobody", s.ResealTOTP(ctx, "nobody", []byte("sealed"), []byte("new")), store.ErrConflict)
	oneWins(t, "ResealTOTP", func() error { return s.ResealTOTP(ctx, "bob", []byte("sealed"), []byte("resealed")) })
	after := getTOTP(t, s, "bob")
	before.Sealed = []byte("resealed")
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("after ResealTOTP: %+v, want %+v", after, before)
	}
	if got := getTOTP(t, s, "alice"); string(got.Sealed) != "unconfirmed" {
		t.Errorf("alice's TOTP changed: %q", got.Sealed)
	}
}
