package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keygate/keygate/internal/stampede"
	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/internal/backendtest"
	"github.com/keygate/keygate/store/internal/migrations"
	"github.com/keygate/keygate/store/storetest"
)

// dsnEnv names the environment variable holding the DSN of the PostgreSQL
// database the tests may use (each test works in a schema of its own).
const dsnEnv = "KEYGATE_TEST_POSTGRES_DSN"

// testDSN returns the test database's DSN. Without one the test is skipped,
// except in CI (CI set), where the PostgreSQL backend must be tested and a
// missing DSN is a failure.
func testDSN(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv(dsnEnv)
	if dsn == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set, but CI is: the PostgreSQL backend must be tested in CI", dsnEnv)
		}
		t.Skipf("%s is not set; skipping PostgreSQL tests (e.g. %s=postgres://postgres@127.0.0.1:5432/test?sslmode=disable)", dsnEnv, dsnEnv)
	}
	return dsn
}

// randomHex returns 2n random hex digits.
func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// withParam returns dsn with the connection parameter key set to value, in
// URL or key=value form as dsn is.
func withParam(t *testing.T, dsn, key, value string) string {
	t.Helper()
	if strings.Contains(dsn, "://") {
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatalf("parse %s: %v", dsnEnv, err)
		}
		q := u.Query()
		q.Set(key, value)
		// Spaces as %20: pgx does not read "+" as a space.
		u.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20")
		return u.String()
	}
	return dsn + " " + key + "='" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(value) + "'"
}

// adminConn connects to the test database outside any Store, for setting up
// and inspecting; it is closed when the test ends.
func adminConn(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to the test database: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// freshSchema creates an empty schema with a random name, dropped with
// everything in it when the test ends, and returns a DSN whose search_path is
// that schema, and the schema's name.
func freshSchema(t *testing.T) (dsn, schema string) {
	t.Helper()
	base := testDSN(t)
	schema = "kgtest_" + randomHex(t, 8)
	admin := adminConn(t, base)
	if _, err := admin.Exec(t.Context(), "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		// t.Context() is done by now; the admin connection is still open
		// (cleanups run last-registered first).
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := admin.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return withParam(t, base, "search_path", schema), schema
}

// openStore opens a Store on dsn and closes it when the test ends.
func openStore(t *testing.T, dsn string) *Store {
	t.Helper()
	return backendtest.Open(t, func() (*Store, error) { return Open(t.Context(), dsn) })
}

// TestContract runs the shared storage contract; OpenPair plays two replicas
// on one schema.
func TestContract(t *testing.T) {
	testDSN(t)
	storetest.Run(t, storetest.Backend{
		Open: func(t *testing.T) store.Store { return openFresh(t) },
		OpenPair: func(t *testing.T) (store.Store, store.Store) {
			dsn, _ := freshSchema(t)
			return openStore(t, dsn), openStore(t, dsn)
		},
	})
}

// openFresh opens a Store on a fresh schema.
func openFresh(t *testing.T) *Store {
	t.Helper()
	dsn, _ := freshSchema(t)
	return openStore(t, dsn)
}

// --- helpers over the key store ---

func testKey(t *testing.T, state store.KeyState, created time.Time) store.Key {
	t.Helper()
	return store.Key{
		KID: randomHex(t, 16), Algorithm: "RS256", State: state,
		PublicDER: []byte("public " + randomHex(t, 8)), Sealed: []byte("sealed " + randomHex(t, 8)),
		CreatedAt: created, ActivateAt: created.Add(time.Hour),
	}
}

// appliedVersions returns the versions recorded in schema_migrations.
func appliedVersions(t *testing.T, s *Store) []int64 {
	t.Helper()
	rows, err := s.pool.Query(t.Context(), `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	vs, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

// embeddedMigrations returns the embedded migrations, failing the test if
// they do not load.
func embeddedMigrations(t *testing.T) []migrations.Migration {
	t.Helper()
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// wantVersions is 1..N for the N embedded migrations.
func wantVersions(t *testing.T) []int64 {
	t.Helper()
	return backendtest.Versions(embeddedMigrations(t))
}

// --- migrations ---

func TestMigrationsWellFormed(t *testing.T) {
	var names []string
	for _, m := range embeddedMigrations(t) {
		names = append(names, m.Name)
	}
	want := []string{"0001_keys.sql", "0002_identity.sql", "0003_leases.sql", "0004_throttle.sql", "0005_browser.sql", "0006_client_introspect.sql", "0007_auth_code_session.sql", "0008_heartbeat.sql", "0009_manage.sql", "0010_client_allowed_origins.sql", "0011_consent.sql", "0012_post_logout_redirect_uris.sql", "0013_device_codes.sql", "0014_clients_version.sql", "0015_key_algorithms.sql", "0016_client_signing_alg.sql", "0017_dpop.sql", "0018_amr.sql", "0019_totp.sql", "0020_passkeys.sql", "0021_auth_code_dpop_jkt.sql", "0022_device_code_issued.sql"}
	if !slices.Equal(names, want) {
		t.Errorf("migrations %q, want %q", names, want)
	}
}

func TestReopenIsIdempotent(t *testing.T) {
	dsn, _ := freshSchema(t)
	s, err := Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	k := testKey(t, store.KeyActive, backendtest.T0)
	backendtest.MustApply(t, s, store.KeyChange{Inserts: []store.Key{k}})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	for range 3 {
		s := openStore(t, dsn)
		if got, want := appliedVersions(t, s), wantVersions(t); !slices.Equal(got, want) {
			t.Errorf("applied migrations %v, want %v", got, want)
		}
		if keys := backendtest.MustList(t, s); len(keys) != 1 || keys[0].KID != k.KID {
			t.Errorf("after reopening: keys %v, want the one inserted", keys)
		}
		if v := backendtest.MustVersion(t, s); v != 1 {
			t.Errorf("after reopening: version %d, want 1", v)
		}
	}
}

// TestOpenUpToDateReadOnly checks that opening an up-to-date schema only
// reads: it works on a connection where every transaction is read-only.
func TestOpenUpToDateReadOnly(t *testing.T) {
	dsn, _ := freshSchema(t)
	openStore(t, dsn)
	ro := openStore(t, withParam(t, dsn, "default_transaction_read_only", "on"))
	if err := ro.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	err := ro.ApplyKeyChange(t.Context(), store.KeyChange{Inserts: []store.Key{testKey(t, store.KeyActive, backendtest.T0)}})
	if err == nil {
		t.Fatal("a write succeeded on a read-only connection; the test proves nothing")
	}
}

func TestConcurrentOpen(t *testing.T) {
	testDSN(t)
	const openers = 4
	for round := range 3 {
		t.Run(fmt.Sprint("round ", round), func(t *testing.T) {
			dsn, _ := freshSchema(t)
			stores := make([]*Store, openers)
			errs := stampede.Run(openers, func(i int) (err error) {
				stores[i], err = Open(t.Context(), dsn)
				return err
			})
			for i, err := range errs {
				if err != nil {
					t.Errorf("Open %d: %v", i, err)
					continue
				}
				t.Cleanup(func() { stores[i].Close() })
			}
			if t.Failed() {
				return
			}
			for i, s := range stores {
				if err := s.Ping(t.Context()); err != nil {
					t.Errorf("store %d: Ping: %v", i, err)
				}
			}
			if got, want := appliedVersions(t, stores[0]), wantVersions(t); !slices.Equal(got, want) {
				t.Errorf("applied migrations %v, want %v", got, want)
			}
			// One key_set_meta row, usable by all.
			backendtest.MustApply(t, stores[1], store.KeyChange{Inserts: []store.Key{testKey(t, store.KeyActive, backendtest.T0)}})
			for i, s := range stores {
				if v := backendtest.MustVersion(t, s); v != 1 {
					t.Errorf("store %d: version %d, want 1", i, v)
				}
			}
		})
	}
}

// fingerprint describes a schema's tables, recorded migrations and key-set
// version, to check that a refused Open changed nothing.
func fingerprint(t *testing.T, conn *pgx.Conn, schema string) string {
	t.Helper()
	var tables, versions string
	var keySet int64
	err := conn.QueryRow(t.Context(), `SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = $1`,
		schema).Scan(&tables)
	if err != nil {
		t.Fatal(err)
	}
	q := pgx.Identifier{schema}.Sanitize()
	err = conn.QueryRow(t.Context(), `SELECT string_agg(version || '@' || applied_at, ',' ORDER BY version) FROM `+q+`.schema_migrations`).
		Scan(&versions)
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(t.Context(), `SELECT version FROM `+q+`.key_set_meta`).Scan(&keySet); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("tables %s; migrations %s; key set %d", tables, versions, keySet)
}

// openRefused opens a Store on dsn expecting a refusal, and returns Open's
// error; if Open succeeds, it closes the store and fails the test with
// succeeded.
func openRefused(t *testing.T, dsn, succeeded string) error {
	t.Helper()
	s, err := Open(t.Context(), dsn)
	if err == nil {
		s.Close()
		t.Fatal(succeeded)
	}
	return err
}

func TestSchemaTooNew(t *testing.T) {
	dsn, schema := freshSchema(t)
	s, err := Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	backendtest.MustApply(t, s, store.KeyChange{Inserts: []store.Key{testKey(t, store.KeyActive, backendtest.T0)}})
	latest := wantVersions(t)[len(wantVersions(t))-1]
	// What a newer binary would leave: one more migration, with a table this
	// binary knows nothing about.
	if _, err := s.pool.Exec(t.Context(), `CREATE TABLE from_the_future (x INTEGER)`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(t.Context(), `INSERT INTO schema_migrations (version) VALUES ($1)`, latest+1); err != nil {
		t.Fatal(err)
	}
	s.Close()

	admin := adminConn(t, testDSN(t))
	before := fingerprint(t, admin, schema)
	err = openRefused(t, dsn, "Open of a schema from a newer binary succeeded, want an error")
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Errorf("Open: %v, want ErrSchemaTooNew", err)
	}
	for _, want := range []string{schema, fmt.Sprint(latest + 1), fmt.Sprint(latest), "newer"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Open error %q does not mention %q", err, want)
		}
	}
	if after := fingerprint(t, admin, schema); after != before {
		t.Errorf("refused Open changed the schema:\n before %s\n after  %s", before, after)
	}
}

func TestInconsistentMigrations(t *testing.T) {
	dsn, _ := freshSchema(t)
	s := openStore(t, dsn)
	if _, err := s.pool.Exec(t.Context(), `DELETE FROM schema_migrations WHERE version = 1`); err != nil {
		t.Fatal(err)
	}
	err := openRefused(t, dsn, "Open with a gap in schema_migrations succeeded")
	if !strings.Contains(err.Error(), "inconsistent") {
		t.Errorf("Open: %v, want an error about schema_migrations being inconsistent", err)
	}
}

func TestMissingSchema(t *testing.T) {
	dsn := withParam(t, testDSN(t), "search_path", "kgtest_missing_"+randomHex(t, 4))
	err := openRefused(t, dsn, "Open with a search_path naming no existing schema succeeded")
	if !strings.Contains(err.Error(), "search_path") {
		t.Errorf("Open: %v, want an error naming the search_path", err)
	}
}

func TestBadDSN(t *testing.T) {
	for _, dsn := range []string{"", "postgres://user:s3cr3t@127.0.0.1:1/db?sslmode=disable&connect_timeout=2", "not a dsn ==="} {
		s, err := Open(t.Context(), dsn)
		if err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", dsn)
			continue
		}
		if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("Open error %q leaks the password", err)
		}
	}
}

// --- behaviour specific to this backend ---

// forEachUnstorableText calls check once for each kind of text PostgreSQL
// cannot hold (a NUL byte; bytes that are not UTF-8), passing two checks that
// name bad in their failures: invalid fails the test unless err is an
// invalid-input error (not nil, not a conflict, not ErrNotFound), notFound
// unless err is ErrNotFound.
func forEachUnstorableText(t *testing.T, check func(bad string, invalid, notFound func(what string, err error))) {
	t.Helper()
	for _, bad := range []string{"nul\x00byte", "bad\xffutf8"} {
		invalid := func(what string, err error) {
			t.Helper()
			if err == nil || errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
				t.Errorf("%s with %q: %v, want an invalid-input error", what, bad, err)
			}
		}
		notFound := func(what string, err error) {
			t.Helper()
			if !errors.Is(err, store.ErrNotFound) {
				t.Errorf("%s with %q: %v, want ErrNotFound", what, bad, err)
			}
		}
		check(bad, invalid, notFound)
	}
}

// TestUnstorableText checks that text PostgreSQL cannot hold is refused as
// invalid input, and that lookups by it find nothing rather than fail.
func TestUnstorableText(t *testing.T) {
	s := openFresh(t)
	ctx := t.Context()
	forEachUnstorableText(t, func(bad string, invalid, notFound func(what string, err error)) {
		invalid("CreateClient", s.CreateClient(ctx, store.Client{ID: "c", Name: bad}))
		invalid("CreateUser", s.CreateUser(ctx, store.User{ID: "u", Username: "bob", Name: bad}))
		invalid("CreateRefreshToken", s.CreateRefreshToken(ctx, store.RefreshToken{ID: bad, FamilyID: "f", ExpiresAt: backendtest.T0}))
		invalid("RevokeAccessToken", s.RevokeAccessToken(ctx, bad, backendtest.T0))
		invalid("RecordAssertion", s.RecordAssertion(ctx, "c", bad, backendtest.T0.Add(time.Minute), backendtest.T0))
		invalid("ApplyKeyChange", s.ApplyKeyChange(ctx, store.KeyChange{Inserts: []store.Key{func() store.Key {
			k := testKey(t, store.KeyActive, backendtest.T0)
			k.KID = bad
			return k
		}()}}))
		_, err := s.AcquireLease(ctx, bad, "h", time.Minute, backendtest.T0)
		invalid("AcquireLease", err)

		_, err = s.GetClient(ctx, bad)
		notFound("GetClient", err)
		_, err = s.GetUser(ctx, bad)
		notFound("GetUser", err)
		_, err = s.GetUserByLogin(ctx, bad)
		notFound("GetUserByLogin", err)
		_, err = s.GetRefreshToken(ctx, bad)
		notFound("GetRefreshToken", err)
		notFound("DeleteClient", s.DeleteClient(ctx, bad))
		notFound("DeleteUser", s.DeleteUser(ctx, bad))
		notFound("UpdateUserPassword", s.UpdateUserPassword(ctx, bad, "h", backendtest.T0))
		rt := store.RefreshToken{ID: randomHex(t, 8), FamilyID: "f", ExpiresAt: backendtest.T0.Add(time.Hour)}
		notFound("RotateRefreshToken", s.RotateRefreshToken(ctx, bad, backendtest.T0, rt))
		if revoked, err := s.IsAccessTokenRevoked(ctx, bad); revoked || err != nil {
			t.Errorf("IsAccessTokenRevoked(%q) = %v, %v; want false, nil", bad, revoked, err)
		}
		if n, err := s.RevokeRefreshFamily(ctx, bad, backendtest.T0); n != 0 || err != nil {
			t.Errorf("RevokeRefreshFamily(%q) = %d, %v; want 0, nil", bad, n, err)
		}
		if err := s.ReleaseLease(ctx, bad, "h"); err != nil {
			t.Errorf("ReleaseLease(%q): %v", bad, err)
		}
	})
	// A NUL inside a list is escaped by JSON, so it is stored faithfully.
	c := store.Client{ID: "nul-in-list", Scopes: []string{"a\x00b"}}
	if err := s.CreateClient(ctx, c); err != nil {
		t.Fatalf("CreateClient with a NUL in a scope: %v", err)
	}
	got, err := s.GetClient(ctx, c.ID)
	if err != nil || !slices.Equal(got.Scopes, c.Scopes) {
		t.Errorf("GetClient: scopes %q, err %v; want %q", got.Scopes, err, c.Scopes)
	}
}

// TestDefaultDeadline checks that a call whose context has no deadline gets
// the Store's default one, and that a caller's own deadline is used as given.
func TestDefaultDeadline(t *testing.T) {
	dsn, schema := freshSchema(t)
	s := openStore(t, dsn)
	s.timeout = 300 * time.Millisecond

	// Hold a lock every read of the key-set version waits for.
	admin := adminConn(t, testDSN(t))
	tx, err := admin.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(t.Context(), `LOCK TABLE `+pgx.Identifier{schema, "key_set_meta"}.Sanitize()+` IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	_, err = s.KeySetVersion(context.Background())
	if took := time.Since(start); err == nil || took > 3*time.Second {
		t.Errorf("KeySetVersion without a deadline: error %v after %v, want an error after about %v", err, took, s.timeout)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("KeySetVersion without a deadline: %v, want context.DeadlineExceeded", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start = time.Now()
	_, err = s.KeySetVersion(ctx)
	if took := time.Since(start); err == nil || took < 900*time.Millisecond {
		t.Errorf("KeySetVersion with a 1s deadline: error %v after %v, want an error after about 1s", err, took)
	}

	// Once the lock is gone the Store works again: the timed-out
	// connections were replaced.
	tx.Rollback(t.Context())
	if v := backendtest.MustVersion(t, s); v != 0 {
		t.Errorf("version %d, want 0", v)
	}
}

// TestOppositeOrderUpdates races changes that update the same two keys in
// opposite orders, which can deadlock in PostgreSQL: every change must
// either apply (after a retry, perhaps) or fail with ErrConflict, and the
// version must count the applied ones.
func TestOppositeOrderUpdates(t *testing.T) {
	s := openFresh(t)
	a, b := testKey(t, store.KeyRetired, backendtest.T0), testKey(t, store.KeyRetired, backendtest.T0.Add(time.Second))
	backendtest.MustApply(t, s, store.KeyChange{Inserts: []store.Key{a, b}})
	const racers = 6
	errs := stampede.Run(racers, func(i int) error {
		ka, kb := a, b
		ka.RemoveAfter = backendtest.T0.Add(time.Duration(i+1) * time.Hour)
		kb.RemoveAfter = backendtest.T0.Add(time.Duration(i+1) * time.Hour)
		ups := []store.KeyUpdate{{Key: ka, From: store.KeyRetired}, {Key: kb, From: store.KeyRetired}}
		if i%2 == 1 {
			ups[0], ups[1] = ups[1], ups[0]
		}
		return s.ApplyKeyChange(t.Context(), store.KeyChange{Updates: ups})
	})
	applied := int64(0)
	for i, err := range errs {
		switch {
		case err == nil:
			applied++
		case !errors.Is(err, store.ErrConflict):
			t.Errorf("change %d: %v, want success or ErrConflict", i, err)
		}
	}
	if v := backendtest.MustVersion(t, s); v != 1+applied {
		t.Errorf("version %d after %d applied changes, want %d", v, applied, 1+applied)
	}
	// Both keys carry the same change's times: changes are atomic.
	keys := backendtest.MustList(t, s)
	if len(keys) != 2 || !keys[0].RemoveAfter.Equal(keys[1].RemoveAfter) {
		t.Errorf("keys updated by different changes: %v", keys)
	}
}

// --- notifications ---

// waitCall waits for a call recorded on calls.
func waitCall(t *testing.T, calls <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-calls:
	case <-time.After(10 * time.Second):
		t.Fatalf("no WatchKeySet call %s", what)
	}
}

// noCall checks that nothing is recorded on calls for a moment.
func noCall(t *testing.T, calls <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-calls:
		t.Errorf("unexpected WatchKeySet call %s", what)
	case <-time.After(300 * time.Millisecond):
	}
}

// watch runs s.WatchKeySet until the test ends (or the returned cancel is
// called) and returns the channel its calls are recorded on and the channel
// its result arrives on.
func watch(t *testing.T, s *Store) (calls chan struct{}, done chan error, cancel context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	calls, done = make(chan struct{}, 100), make(chan error, 1)
	go func() { done <- s.WatchKeySet(ctx, func() { calls <- struct{}{} }) }()
	t.Cleanup(func() {
		cancel()
		<-done // no listener outlives its test
	})
	return calls, done, cancel
}

func TestWatchKeySet(t *testing.T) {
	dsn, _ := freshSchema(t)
	app := "kgtest-watch-" + randomHex(t, 4)
	writer := openStore(t, dsn)
	watcher := openStore(t, withParam(t, dsn, "application_name", app))

	calls, done, cancel := watch(t, watcher)
	waitCall(t, calls, "once listening")

	f := store.KeyChange{Inserts: []store.Key{testKey(t, store.KeyActive, backendtest.T0)}}
	backendtest.MustApply(t, writer, f)
	waitCall(t, calls, "after a change by another Store")
	if v := backendtest.MustVersion(t, watcher); v != 1 {
		t.Errorf("version %d when notified, want 1", v)
	}
	noCall(t, calls, "without a change")

	// A change that fails sends nothing: the notification is part of the
	// transaction.
	err := writer.ApplyKeyChange(t.Context(), store.KeyChange{Inserts: []store.Key{testKey(t, store.KeyActive, backendtest.T0)}})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second active key: %v, want ErrConflict", err)
	}
	noCall(t, calls, "after a failed change")

	// A lost connection is reopened, and the reconnection itself is
	// reported, since changes may have been missed meanwhile.
	admin := adminConn(t, testDSN(t))
	var killed int
	if err := admin.QueryRow(t.Context(),
		`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`, app).Scan(&killed); err != nil {
		t.Fatal(err)
	}
	if killed == 0 {
		t.Fatal("found no connection of the watching Store to terminate")
	}
	waitCall(t, calls, "after reconnecting")
	backendtest.MustApply(t, writer, store.KeyChange{Inserts: []store.Key{testKey(t, store.KeyNext, backendtest.T0)}})
	waitCall(t, calls, "after a change following a reconnection")

	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("WatchKeySet returned %v when its context was canceled, want context.Canceled", err)
		}
		done <- err // for the cleanup
	case <-time.After(5 * time.Second):
		t.Fatal("WatchKeySet did not return when its context was canceled")
	}
}

func TestWatchKeySetPayload(t *testing.T) {
	dsn, schema := freshSchema(t)
	s := openStore(t, dsn)
	admin := adminConn(t, testDSN(t))
	if _, err := admin.Exec(t.Context(), "LISTEN "+KeySetChannel); err != nil {
		t.Fatal(err)
	}
	backendtest.MustApply(t, s, store.KeyChange{Inserts: []store.Key{testKey(t, store.KeyActive, backendtest.T0)}})
	backendtest.MustApply(t, s, store.KeyChange{Inserts: []store.Key{testKey(t, store.KeyNext, backendtest.T0)}})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var got []string
	for len(got) < 2 {
		n, err := admin.WaitForNotification(ctx)
		if err != nil {
			t.Fatalf("after %q: %v", got, err)
		}
		if n.Channel != KeySetChannel {
			t.Errorf("notification on %q, want %q", n.Channel, KeySetChannel)
		}
		if strings.HasPrefix(n.Payload, schema+":") { // other tests' schemas share the channel
			got = append(got, n.Payload)
		}
	}
	if want := []string{schema + ":1", schema + ":2"}; !slices.Equal(got, want) {
		t.Errorf("payloads %q, want the schema and the new versions %q", got, want)
	}
}

// TestWatchKeySetIgnoresOtherSchemas: deployments sharing one database in
// separate schemas share the notification channel, but a change in one does
// not wake the other's watchers.
func TestWatchKeySetIgnoresOtherSchemas(t *testing.T) {
	dsnA, _ := freshSchema(t)
	dsnB, _ := freshSchema(t)
	a, b := openStore(t, dsnA), openStore(t, dsnB)
	calls, _, cancel := watch(t, a)
	defer cancel()
	waitCall(t, calls, "once listening")
	backendtest.MustApply(t, b, store.KeyChange{Inserts: []store.Key{testKey(t, store.KeyActive, backendtest.T0)}})
	noCall(t, calls, "after a change in another schema")
	backendtest.MustApply(t, a, store.KeyChange{Inserts: []store.Key{testKey(t, store.KeyActive, backendtest.T0)}})
	waitCall(t, calls, "after a change in its own schema")
}

func TestWatchKeySetIdle(t *testing.T) {
	// Restored after the listener has stopped (cleanups run in reverse).
	old := watchIdle
	t.Cleanup(func() { watchIdle = old })
	watchIdle = 50 * time.Millisecond

	dsn, _ := freshSchema(t)
	s := openStore(t, dsn)
	calls, _, cancel := watch(t, s)
	defer cancel()
	waitCall(t, calls, "once listening")
	// Several idle periods pass, each ending in a liveness check; none may
	// look like a reconnection.
	noCall(t, calls, "while idle")
	backendtest.MustApply(t, s, store.KeyChange{Inserts: []store.Key{testKey(t, store.KeyActive, backendtest.T0)}})
	waitCall(t, calls, "after a change")
	noCall(t, calls, "after the change was reported")
}

func TestWatchKeySetClose(t *testing.T) {
	dsn, _ := freshSchema(t)
	s, err := Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	calls, done, _ := watch(t, s)
	waitCall(t, calls, "once listening")
	s.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("WatchKeySet returned %v when the Store was closed, want ErrClosed", err)
		}
		done <- err
	case <-time.After(5 * time.Second):
		t.Fatal("WatchKeySet did not return when the Store was closed")
	}
	if err := s.WatchKeySet(t.Context(), func() {}); !errors.Is(err, ErrClosed) {
		t.Errorf("WatchKeySet on a closed Store: %v, want ErrClosed", err)
	}
}

// --- leases ---

// --- refresh tokens across replicas ---

// TestDeadlockRetried makes ApplyKeyChange deadlock with another transaction
// and checks that it is retried rather than failed: the change locks key a
// and waits for key b, which the other transaction holds and which then
// waits for a. PostgreSQL aborts the transaction whose deadlock_timeout runs
// out first once the cycle exists; the test chooses the change as the victim
// by giving the change's connections a 2 s timeout (far longer than it takes
// to close the cycle, so the change's one check finds it) and the other
// transaction one of a minute. The other transaction's update then goes
// through, which it can only do once the change's first attempt was rolled
// back, and the change's retry succeeds once the other commits.
func TestDeadlockRetried(t *testing.T) {
	dsn, schema := freshSchema(t)
	s := openStore(t, withParam(t, dsn, "options", "-c deadlock_timeout=2s"))
	a, b := testKey(t, store.KeyRetired, backendtest.T0), testKey(t, store.KeyRetired, backendtest.T0.Add(time.Second))
	backendtest.MustApply(t, s, store.KeyChange{Inserts: []store.Key{a, b}})
	table := pgx.Identifier{schema, "signing_keys"}.Sanitize()

	watcher := adminConn(t, testDSN(t))
	deadlocks := func() int64 {
		t.Helper()
		var n int64
		if err := watcher.QueryRow(t.Context(), `SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := deadlocks()

	admin := adminConn(t, testDSN(t))
	tx, err := admin.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	// This transaction must never be the one to detect the deadlock.
	if _, err := tx.Exec(t.Context(), `SET LOCAL deadlock_timeout = '1min'`); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(t.Context(), `SELECT 1 FROM `+table+` WHERE kid = $1 FOR UPDATE`, b.KID); err != nil {
		t.Fatal(err)
	}

	ka, kb := a, b
	ka.RemoveAfter, kb.RemoveAfter = backendtest.T0.Add(time.Hour), backendtest.T0.Add(time.Hour)
	done := make(chan error, 1)
	go func() {
		done <- s.ApplyKeyChange(t.Context(), store.KeyChange{Updates: []store.KeyUpdate{
			{Key: ka, From: store.KeyRetired}, {Key: kb, From: store.KeyRetired},
		}})
	}()
	// Wait until the change holds a and waits for b.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var waiting int
		if err := watcher.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity
			WHERE wait_event_type = 'Lock' AND query LIKE 'UPDATE signing_keys%'`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the change never waited for the lock on b")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Closes the cycle; returns once PostgreSQL has aborted the change's
	// first attempt, which held a.
	if _, err := tx.Exec(t.Context(), `UPDATE `+table+` SET remove_after = 1 WHERE kid = $1`, a.KID); err != nil {
		t.Fatalf("the other transaction's update: %v (SQLSTATE %s), want the change to be the deadlock victim", err, sqlState(err))
	}
	if err := tx.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("ApplyKeyChange after a deadlock: %v, want success on retry", err)
	}
	keys := backendtest.MustList(t, s)
	for _, k := range keys {
		if !k.RemoveAfter.Equal(ka.RemoveAfter) {
			t.Errorf("key %s: RemoveAfter %v, want the retried change's %v", k.KID, k.RemoveAfter, ka.RemoveAfter)
		}
	}
	if v := backendtest.MustVersion(t, s); v != 2 {
		t.Errorf("version %d, want 2", v)
	}
	// Statistics arrive with a delay.
	for deadline := time.Now().Add(5 * time.Second); deadlocks() == before; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("PostgreSQL counted no deadlock: the test did not make one")
		}
		watcher.Exec(t.Context(), `SELECT pg_stat_clear_snapshot()`)
	}
}

// TestSearchPathViaOptions checks the other way of choosing the schema: the
// options connection parameter.
func TestSearchPathViaOptions(t *testing.T) {
	_, schema := freshSchema(t)
	s := openStore(t, withParam(t, testDSN(t), "options", "-c search_path="+schema))
	backendtest.MustApply(t, s, store.KeyChange{Inserts: []store.Key{testKey(t, store.KeyActive, backendtest.T0)}})
	if !strings.Contains(s.String(), schema) {
		t.Errorf("String() = %q, want it to name schema %q", s.String(), schema)
	}
	var n int
	if err := s.pool.QueryRow(t.Context(),
		`SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename = 'signing_keys'`, schema).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("signing_keys not created in schema %s", schema)
	}
}
