package idp_test

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/keygate/keygate/idp"
	"github.com/keygate/keygate/rotation"
)

func newTestKEK(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, rotation.KEKSize)
	rand.Read(k) // crypto/rand.Read never fails (Go 1.24)
	return k
}

// TestRewrapTOTP: after RewrapTOTP under [new, old], a provider with [new]
// alone still checks alice's codes (before it, it cannot); a second run
// reseals nothing; a secret that opens under no key of the ring stops it
// before anything is written.
func TestRewrapTOTP(t *testing.T) {
	ctx := context.Background()
	oldK, newK := newTestKEK(t), newTestKEK(t)
	oldS, _ := rotation.NewSealer(oldK)
	newS, _ := rotation.NewSealer(newK)
	ring, _ := rotation.NewKeyring([][]byte{newK, oldK})
	cfg, clock := grantConfig(t)
	cfg.Sealer = oldS
	e := grantEnvFor(t, cfg, clock)
	secret, recovery := e.enrolTOTP(t)
	bob, err := e.dir.CreateUser(ctx, idp.NewUser{Username: "bob", Password: gtPassword})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.p.StartTOTPEnrolment(ctx, bob); err != nil { // unconfirmed: resealed too
		t.Fatal(err)
	}
	cfg.Sealer = newS
	onNew, err := idp.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute)
	if err := onNew.VerifySecondFactor(ctx, e.alice, totpCode(t, secret, clock.Now()), "192.0.2.1"); !errors.Is(err, idp.ErrTOTPUnavailable) ||
		!errors.Is(err, rotation.ErrWrongKEK) {
		t.Fatalf("a code under [new] before the rewrap: %v, want ErrTOTPUnavailable wrapping ErrWrongKEK", err)
	}
	// A recovery code is a digest, not sealed: it still signs alice in.
	if err := onNew.VerifySecondFactor(ctx, e.alice, recovery[0], "192.0.2.1"); err != nil {
		t.Fatalf("a recovery code under [new] before the rewrap: %v", err)
	}

	if _, _, err := idp.RewrapTOTP(ctx, e.st, newS); !errors.Is(err, rotation.ErrWrongKEK) {
		t.Errorf("RewrapTOTP with a keyring that does not open them: %v", err)
	}
	if got, _ := e.st.GetTOTP(ctx, e.alice.ID); !oldS.UnderCurrent(got.Sealed) {
		t.Error("a failed RewrapTOTP wrote")
	}
	for i, want := range [][2]int{{2, 0}, {0, 2}} {
		resealed, current, err := idp.RewrapTOTP(ctx, e.st, ring)
		if err != nil || resealed != want[0] || current != want[1] {
			t.Errorf("RewrapTOTP run %d = %d resealed, %d current, %v; want %v", i+1, resealed, current, err, want)
		}
	}
	clock.Advance(time.Minute)
	if err := onNew.VerifySecondFactor(ctx, e.alice, totpCode(t, secret, clock.Now()), "192.0.2.1"); err != nil {
		t.Errorf("a code under [new] after the rewrap: %v", err)
	}
	if _, err := onNew.PendingTOTPEnrolment(ctx, bob); err != nil {
		t.Errorf("bob's unconfirmed enrolment under [new] after the rewrap: %v", err)
	}
	list, _ := e.st.ListTOTP(ctx)
	for _, tt := range list {
		if !newS.UnderCurrent(tt.Sealed) {
			t.Errorf("%s's secret is not under the new KEK", tt.UserID)
		}
	}
}
