package idp_test

import (
	"context"
	"testing"
	"time"

	"github.com/keygate/keygate/idp"
	"github.com/keygate/keygate/password"
	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/sqlite"
	"github.com/keygate/keygate/throttle"
)

func provider(t *testing.T, st *sqlite.Store, p password.Params) *idp.Provider {
	t.Helper()
	pr, err := idp.New(idp.Config{DirectoryConfig: idp.DirectoryConfig{AccessTTL: time.Minute, Store: st, Hasher: password.NewHasher(p, 2)},
		Issuer: "https://id.example", RefreshTTL: time.Hour, Signer: idp.StubSigner,
		UserThrottle: throttle.Local(throttle.New(throttle.Limits{Burst: 5, Every: time.Minute}, 100)),
		IPThrottle:   throttle.Local(throttle.New(throttle.Limits{Burst: 5, Every: time.Minute}, 100))})
	if err != nil {
		t.Fatal(err)
	}
	return pr
}

// TestLoginUpgradesOldHashes: after the argon2id parameters change, a
// successful login re-hashes the password with the new ones; a failed one
// changes nothing.
func TestLoginUpgradesOldHashes(t *testing.T) {
	ctx := context.Background()
	st := idp.TempStore(t)
	old := password.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}
	cur := password.Params{Memory: 128, Iterations: 2, Parallelism: 1, SaltLen: 16, KeyLen: 32}
	if _, err := provider(t, st, old).Directory().CreateUser(ctx, idp.NewUser{Username: "alice", Password: "correct horse"}); err != nil {
		t.Fatal(err)
	}
	p := provider(t, st, cur)
	before, _ := st.GetUserByLogin(ctx, "alice")
	if _, err := p.CheckPassword(ctx, "alice", "wrong password", "ip"); err == nil {
		t.Fatal("wrong password accepted")
	}
	if u, _ := st.GetUserByLogin(ctx, "alice"); u.PasswordHash != before.PasswordHash {
		t.Fatal("a failed login changed the hash")
	}
	if _, err := p.CheckPassword(ctx, "alice", "correct horse", "ip"); err != nil {
		t.Fatal(err)
	}
	after, _ := st.GetUserByLogin(ctx, "alice")
	h := password.NewHasher(cur, 1)
	if after.PasswordHash == before.PasswordHash || h.NeedsRehash(after.PasswordHash) {
		t.Errorf("hash not upgraded: %s", after.PasswordHash)
	}
	if _, err := p.CheckPassword(ctx, "alice", "correct horse", "ip"); err != nil {
		t.Errorf("login after the upgrade: %v", err)
	}
}

// TestPasswordChangeRevokesRefreshTokens: a refresh token the old password
// obtained stops working once the password changes.
func TestPasswordChangeRevokesRefreshTokens(t *testing.T) {
	ctx := context.Background()
	st := idp.TempStore(t)
	p := provider(t, st, password.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32})
	if _, err := p.Directory().CreateUser(ctx, idp.NewUser{Username: "alice", Password: "correct horse"}); err != nil {
		t.Fatal(err)
	}
	u, _ := p.Directory().UserByLogin(ctx, "alice")
	now := time.Now().UTC()
	rt := store.RefreshToken{ID: "old-link", FamilyID: "fam", ClientID: "app", Subject: u.ID, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := st.CreateRefreshToken(ctx, rt); err != nil {
		t.Fatal(err)
	}
	if err := p.Directory().SetPassword(ctx, "alice", "a brand new password"); err != nil {
		t.Fatal(err)
	}
	got, err := st.GetRefreshToken(ctx, "old-link")
	if err != nil || got.RevokedAt.IsZero() {
		t.Errorf("after a password change the refresh token is not revoked: %+v, %v", got, err)
	}
}
