package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/keygate/keygate/store"
)

// deviceTests is the device-authorization contract (RFC 8628).
var deviceTests = []any{
	testDeviceRoundTrip, testDeviceDecide, testDevicePoll, testDeviceRedeem, testDeviceConcurrentRedeem,
	testDeviceConcurrentDecide, testDevicePrune, testDeviceInvalidInput,
}

// newDevice returns a pending device code created at created, expiring ten
// minutes later.
func newDevice(t *testing.T, created time.Time) store.DeviceCode {
	return store.DeviceCode{ID: randomID(t), UserCode: randomID(t), ClientID: "tv", Scope: "openid profile",
		Status: store.DevicePending, Interval: 5 * time.Second, CreatedAt: created, ExpiresAt: created.Add(10 * time.Minute)}
}

func createDevice(t *testing.T, s store.Store, d store.DeviceCode) {
	t.Helper()
	if err := s.CreateDeviceCode(t.Context(), d); err != nil {
		t.Fatalf("CreateDeviceCode: %v", err)
	}
}

func checkDevice(t *testing.T, s store.Store, want store.DeviceCode) {
	t.Helper()
	got, err := s.GetDeviceCode(t.Context(), want.ID)
	if err != nil {
		t.Fatalf("GetDeviceCode: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("device code\n got %+v\nwant %+v", got, want)
	}
}

func testDeviceRoundTrip(t *testing.T, s store.Store) {
	ctx := t.Context()
	d := newDevice(t, base)
	createDevice(t, s, d)
	checkDevice(t, s, d)
	got, err := s.GetDeviceCodeByUserCode(ctx, d.UserCode)
	if err != nil || !reflect.DeepEqual(got, d) {
		t.Errorf("GetDeviceCodeByUserCode = %+v, %v; want %+v", got, err, d)
	}
	if _, err := s.GetDeviceCode(ctx, d.UserCode); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetDeviceCode(user code) = %v, want ErrNotFound", err)
	}
	if _, err := s.GetDeviceCodeByUserCode(ctx, d.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetDeviceCodeByUserCode(device code) = %v, want ErrNotFound", err)
	}
	sameID, sameUser := newDevice(t, base), newDevice(t, base)
	sameID.ID, sameUser.UserCode = d.ID, d.UserCode
	for name, dup := range map[string]store.DeviceCode{"id": sameID, "user code": sameUser} {
		if err := s.CreateDeviceCode(ctx, dup); !errors.Is(err, store.ErrConflict) {
			t.Errorf("CreateDeviceCode with a taken %s: %v, want ErrConflict", name, err)
		}
	}
	checkDevice(t, s, d)
}

func testDeviceDecide(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := base.Add(time.Minute)
	approved, denied, expired := newDevice(t, base), newDevice(t, base), newDevice(t, base.Add(-time.Hour))
	for _, d := range []store.DeviceCode{approved, denied, expired} {
		createDevice(t, s, d)
	}
	got, err := s.DecideDeviceCode(ctx, approved.ID, true, "alice", base, []string{"pwd", "otp", "mfa"}, now)
	approved.Status, approved.UserID, approved.AuthTime, approved.DecidedAt = store.DeviceApproved, "alice", base, now
	approved.AMR = []string{"pwd", "otp", "mfa"}
	if err != nil || !reflect.DeepEqual(got, approved) {
		t.Errorf("DecideDeviceCode(approve) = %+v, %v; want %+v", got, err, approved)
	}
	if _, err := s.DecideDeviceCode(ctx, denied.ID, false, "bob", base, nil, now); err != nil {
		t.Errorf("DecideDeviceCode(deny): %v", err)
	}
	denied.Status, denied.UserID, denied.AuthTime, denied.DecidedAt = store.DeviceDenied, "bob", base, now
	for name, id := range map[string]string{"approved": approved.ID, "denied": denied.ID, "expired": expired.ID} {
		if _, err := s.DecideDeviceCode(ctx, id, false, "mallory", base, nil, now); !errors.Is(err, store.ErrConflict) {
			t.Errorf("DecideDeviceCode(%s) = %v, want ErrConflict", name, err)
		}
	}
	if _, err := s.DecideDeviceCode(ctx, randomID(t), true, "alice", base, nil, now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DecideDeviceCode(unknown) = %v, want ErrNotFound", err)
	}
	checkDevice(t, s, approved)
	checkDevice(t, s, denied)
	checkDevice(t, s, expired)
}

func testDevicePoll(t *testing.T, s store.Store) {
	ctx := t.Context()
	d := newDevice(t, base)
	createDevice(t, s, d)
	first := base.Add(time.Second)
	if err := s.RecordDevicePoll(ctx, d.ID, time.Time{}, first, 5*time.Second); err != nil {
		t.Fatalf("first RecordDevicePoll: %v", err)
	}
	if err := s.RecordDevicePoll(ctx, d.ID, time.Time{}, first.Add(time.Second), 5*time.Second); !errors.Is(err, store.ErrConflict) {
		t.Errorf("RecordDevicePoll with a stale prev = %v, want ErrConflict", err)
	}
	second := first.Add(2 * time.Second)
	if err := s.RecordDevicePoll(ctx, d.ID, first, second, 10*time.Second); err != nil {
		t.Fatalf("second RecordDevicePoll: %v", err)
	}
	d.LastPollAt, d.Interval = second, 10*time.Second
	checkDevice(t, s, d)
	if err := s.RecordDevicePoll(ctx, randomID(t), time.Time{}, second, time.Second); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RecordDevicePoll(unknown) = %v, want ErrNotFound", err)
	}
	errs := race(racers, func(int) error {
		return s.RecordDevicePoll(ctx, d.ID, second, second.Add(time.Minute), 10*time.Second)
	})
	checkOneWinner(t, errs)
}

func testDeviceRedeem(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := base.Add(time.Minute)
	pending, approved, denied := newDevice(t, base), newDevice(t, base), newDevice(t, base)
	late := newDevice(t, base)
	for _, d := range []store.DeviceCode{pending, approved, denied, late} {
		createDevice(t, s, d)
	}
	for _, d := range []*store.DeviceCode{&approved, &late} {
		v, err := s.DecideDeviceCode(ctx, d.ID, true, "alice", base, nil, now)
		if err != nil {
			t.Fatal(err)
		}
		*d = v
	}
	if _, err := s.DecideDeviceCode(ctx, denied.ID, false, "alice", base, nil, now); err != nil {
		t.Fatal(err)
	}
	got, err := s.RedeemDeviceCode(ctx, approved.ID, now.Add(time.Second), "family-1", "jti-1", now.Add(time.Hour))
	approved.UsedAt, approved.FamilyID, approved.AccessJTI, approved.AccessExpiresAt = now.Add(time.Second), "family-1", "jti-1", now.Add(time.Hour)
	if err != nil || !reflect.DeepEqual(got, approved) {
		t.Errorf("RedeemDeviceCode = %+v, %v; want %+v", got, err, approved)
	}
	cases := map[string]struct {
		id  string
		at  time.Time
		err error
	}{
		"twice":   {approved.ID, now.Add(2 * time.Second), store.ErrConflict},
		"pending": {pending.ID, now, store.ErrConflict},
		"denied":  {denied.ID, now, store.ErrConflict},
		"expired": {late.ID, late.ExpiresAt, store.ErrConflict},
		"unknown": {randomID(t), now, store.ErrNotFound},
	}
	for name, c := range cases {
		if _, err := s.RedeemDeviceCode(ctx, c.id, c.at, "", "jti-2", c.at.Add(time.Hour)); !errors.Is(err, c.err) {
			t.Errorf("RedeemDeviceCode(%s) = %v, want %v", name, err, c.err)
		}
	}
	checkDevice(t, s, approved)
	checkDevice(t, s, late)
}

func testDeviceConcurrentRedeem(t *testing.T, s store.Store) {
	d := newDevice(t, base)
	createDevice(t, s, d)
	now := base.Add(time.Minute)
	if _, err := s.DecideDeviceCode(t.Context(), d.ID, true, "alice", base, nil, now); err != nil {
		t.Fatal(err)
	}
	errs := race(racers, func(i int) error {
		_, err := s.RedeemDeviceCode(t.Context(), d.ID, now.Add(time.Duration(i+1)*time.Millisecond), "", fmt.Sprintf("jti-%d", i), now.Add(time.Hour))
		return err
	})
	w := checkOneWinner(t, errs)
	got, err := s.GetDeviceCode(t.Context(), d.ID)
	if err != nil || !got.UsedAt.Equal(now.Add(time.Duration(w+1)*time.Millisecond)) || got.AccessJTI != fmt.Sprintf("jti-%d", w) {
		t.Errorf("after the race: UsedAt %v, AccessJTI %q, %v; want the winner's %v and jti-%d", got.UsedAt, got.AccessJTI, err,
			now.Add(time.Duration(w+1)*time.Millisecond), w)
	}
}

func testDeviceConcurrentDecide(t *testing.T, s store.Store) {
	d := newDevice(t, base)
	createDevice(t, s, d)
	now := base.Add(time.Minute)
	errs := race(racers, func(i int) error {
		_, err := s.DecideDeviceCode(t.Context(), d.ID, i%2 == 0, "user", base, nil, now)
		return err
	})
	w := checkOneWinner(t, errs)
	got, err := s.GetDeviceCode(t.Context(), d.ID)
	if want := map[bool]store.DeviceStatus{true: store.DeviceApproved, false: store.DeviceDenied}[w%2 == 0]; err != nil || got.Status != want {
		t.Errorf("after the race: status %q, %v; want the winner's %q", got.Status, err, want)
	}
}

func testDevicePrune(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := base.Add(time.Hour)
	old, edge, live := newDevice(t, base), newDevice(t, base), newDevice(t, now)
	edge.ExpiresAt = now
	for _, d := range []store.DeviceCode{old, edge, live} {
		createDevice(t, s, d)
	}
	n, err := s.PruneBrowser(ctx, now)
	if err != nil || n != 2 {
		t.Errorf("PruneBrowser = %d, %v; want 2, nil", n, err)
	}
	for _, d := range []store.DeviceCode{old, edge} {
		if _, err := s.GetDeviceCode(ctx, d.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetDeviceCode after pruning: %v, want ErrNotFound", err)
		}
	}
	checkDevice(t, s, live)
	// A pruned user code may be handed out again.
	again := newDevice(t, now)
	again.UserCode = old.UserCode
	createDevice(t, s, again)
}

func testDeviceInvalidInput(t *testing.T, s store.Store) {
	ctx := t.Context()
	cases := map[string]func(d *store.DeviceCode){
		"empty id":           func(d *store.DeviceCode) { d.ID = "" },
		"empty user code":    func(d *store.DeviceCode) { d.UserCode = "" },
		"empty client":       func(d *store.DeviceCode) { d.ClientID = "" },
		"not pending":        func(d *store.DeviceCode) { d.Status = store.DeviceApproved },
		"zero interval":      func(d *store.DeviceCode) { d.Interval = 0 },
		"zero expiry":        func(d *store.DeviceCode) { d.ExpiresAt = time.Time{} },
		"scope not UTF-8":    func(d *store.DeviceCode) { d.Scope = "b\xffd" },
		"created after 2262": func(d *store.DeviceCode) { d.CreatedAt = time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC) },
	}
	for name, edit := range cases {
		d := newDevice(t, base)
		edit(&d)
		if err := s.CreateDeviceCode(ctx, d); err == nil || errors.Is(err, store.ErrConflict) {
			t.Errorf("CreateDeviceCode(%s) = %v, want a non-conflict error", name, err)
		}
	}
	d := newDevice(t, base)
	createDevice(t, s, d)
	if _, err := s.DecideDeviceCode(ctx, d.ID, true, "", base, nil, base); err == nil || errors.Is(err, store.ErrConflict) {
		t.Errorf("DecideDeviceCode without a user = %v, want a non-conflict error", err)
	}
	for name, redeem := range map[string]func() error{
		"at the zero time": func() error {
			_, err := s.RedeemDeviceCode(ctx, d.ID, time.Time{}, "", "jti", base.Add(time.Hour))
			return err
		},
		"without an access jti": func() error { _, err := s.RedeemDeviceCode(ctx, d.ID, base, "", "", base.Add(time.Hour)); return err },
		"without the access expiry": func() error {
			_, err := s.RedeemDeviceCode(ctx, d.ID, base, "", "jti", time.Time{})
			return err
		},
	} {
		if err := redeem(); err == nil || errors.Is(err, store.ErrConflict) {
			t.Errorf("RedeemDeviceCode %s = %v, want a non-conflict error", name, err)
		}
	}
	checkDevice(t, s, d)
}
