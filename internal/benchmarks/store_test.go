package benchmarks

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keygate/keygate/idp"
	"github.com/keygate/keygate/password"
	"github.com/keygate/keygate/rotation"
	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/postgres"
	"github.com/keygate/keygate/store/sqlite"
	"github.com/keygate/keygate/throttle"
)

// backend is a store both idp and rotation can use.
type backend = store.Store

// backends opens a fresh SQLite file and (when KEYGATE_TEST_POSTGRES_DSN is
// set) a fresh PostgreSQL schema, so both run in the same benchmark run.
func backends(b *testing.B) map[string]func(b *testing.B) backend {
	out := map[string]func(b *testing.B) backend{
		"sqlite": func(b *testing.B) backend {
			st, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "k.db"))
			if err != nil {
				b.Fatal(err)
			}
			return st
		},
	}
	base := os.Getenv("KEYGATE_TEST_POSTGRES_DSN")
	if base == "" {
		return out
	}
	out["postgres"] = func(b *testing.B) backend {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			b.Fatal(err)
		}
		r := make([]byte, 6)
		rand.Read(r)
		schema := "kgbench_" + hex.EncodeToString(r)
		if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			conn.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
			conn.Close(context.Background())
		})
		u, _ := url.Parse(base)
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		st, err := postgres.Open(ctx, u.String())
		if err != nil {
			b.Fatal(err)
		}
		return st
	}
	return out
}

// providerOn builds the real key manager and identity provider on st.
func providerOn(b *testing.B, st backend) *idp.Provider {
	b.Helper()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	kek := make([]byte, rotation.KEKSize)
	rand.Read(kek)
	sealer, _ := rotation.NewSealer(kek)
	mgr, err := rotation.New(rotation.Config{Store: st, Sealer: sealer, Logger: log,
		Policy: rotation.Policy{RotationPeriod: 24 * time.Hour, PublishAhead: time.Hour, Retention: 2 * time.Hour, RSABits: 2048}})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := mgr.Reconcile(ctx); err != nil {
		b.Fatal(err)
	}
	p, err := idp.New(idp.Config{Issuer: "https://bench.example", RefreshTTL: 24 * time.Hour, Signer: mgr.Signer(),
		DirectoryConfig: idp.DirectoryConfig{AccessTTL: 15 * time.Minute, Store: st, Logger: log,
			Hasher: password.NewHasher(password.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}, 2)},
		UserThrottle: throttle.Local(throttle.New(throttle.Limits{Burst: 5, Every: time.Minute}, 100)),
		IPThrottle:   throttle.Local(throttle.New(throttle.Limits{Burst: 5, Every: time.Minute}, 100))})
	if err != nil {
		b.Fatal(err)
	}
	return p
}

const benchSecret = "kgs_benchmark-secret-0123456789abcdefghijklmnopqr"

// benchProvider opens a fresh store with open (closed when the benchmark
// ends), builds the provider on it with providerOn, and registers on it the
// confidential client "bench", secret benchSecret, with the given grant types.
func benchProvider(b *testing.B, open func(*testing.B) backend, grants ...string) *idp.Provider {
	b.Helper()
	st := open(b)
	b.Cleanup(func() { st.Close() })
	p := providerOn(b, st)
	if _, err := p.Directory().RegisterClient(context.Background(), &idp.Client{ID: "bench", SecretHash: idp.HashSecret(benchSecret),
		GrantTypes: grants}, false); err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkStoreIssue: client_credentials issuance (stored client, secret
// check, one RS256 signature) on each backend.
func BenchmarkStoreIssue(b *testing.B) {
	for name, open := range backends(b) {
		b.Run(name, func(b *testing.B) {
			p := benchProvider(b, open, idp.GrantClientCredentials)
			ctx := context.Background()
			req := &idp.Request{Form: url.Values{"grant_type": {"client_credentials"}, "client_id": {"bench"}, "client_secret": {benchSecret}}}
			for b.Loop() {
				if _, err := p.Token(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkStoreRefresh: one refresh-token rotation per op (atomic spend of
// the old link, insert of the new one) plus the new access token's signature.
func BenchmarkStoreRefresh(b *testing.B) {
	for name, open := range backends(b) {
		b.Run(name, func(b *testing.B) {
			p := benchProvider(b, open, idp.GrantPassword, idp.GrantRefreshToken)
			ctx := context.Background()
			if _, err := p.Directory().CreateUser(ctx, idp.NewUser{Username: "bench", Password: "bench password"}); err != nil {
				b.Fatal(err)
			}
			auth := url.Values{"client_id": {"bench"}, "client_secret": {benchSecret}}
			form := func(kv ...string) *idp.Request {
				f := url.Values{}
				for k, v := range auth {
					f[k] = v
				}
				for i := 0; i < len(kv); i += 2 {
					f.Set(kv[i], kv[i+1])
				}
				return &idp.Request{Form: f, RemoteIP: "bench"}
			}
			res, err := p.Token(ctx, form("grant_type", "password", "username", "bench", "password", "bench password"))
			if err != nil {
				b.Fatal(err)
			}
			rt := res.RefreshToken
			for b.Loop() {
				res, err := p.Token(ctx, form("grant_type", "refresh_token", "refresh_token", rt))
				if err != nil {
					b.Fatal(err)
				}
				rt = res.RefreshToken
			}
		})
	}
}

// BenchmarkStoreRotateRefreshToken: the store operation alone, without the
// signature that dominates the grant.
func BenchmarkStoreRotateRefreshToken(b *testing.B) {
	for name, open := range backends(b) {
		b.Run(name, func(b *testing.B) {
			st := open(b)
			defer st.Close()
			ctx := context.Background()
			now := time.Now()
			id := func(i int) string {
				return hex.EncodeToString([]byte{byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}) + "00"
			}
			link := func(i int) store.RefreshToken {
				return store.RefreshToken{ID: id(i), FamilyID: "fam", ClientID: "c", Subject: "s", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
			}
			if err := st.CreateRefreshToken(ctx, link(0)); err != nil {
				b.Fatal(err)
			}
			i := 0
			for b.Loop() {
				if err := st.RotateRefreshToken(ctx, id(i), now, link(i+1)); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
