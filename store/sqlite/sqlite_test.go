package sqlite

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/keygate/keygate/internal/stampede"
	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/internal/backendtest"
	"github.com/keygate/keygate/store/internal/columns"
	"github.com/keygate/keygate/store/storetest"
)

// TestContract runs the shared storage contract; OpenPair plays the server
// and the CLI (or two servers) holding one file open.
func TestContract(t *testing.T) {
	storetest.Run(t, storetest.Backend{
		Open: func(t *testing.T) store.Store { return openTemp(t, filepath.Join(t.TempDir(), "keygate.db")) },
		OpenPair: func(t *testing.T) (store.Store, store.Store) {
			path := filepath.Join(t.TempDir(), "keygate.db")
			return openTemp(t, path), openTemp(t, path)
		},
	})
}

// openTemp opens the database at path and closes it when the test ends.
func openTemp(t *testing.T, path string, opts ...Option) *Store {
	t.Helper()
	return backendtest.Open(t, func() (*Store, error) { return Open(t.Context(), path, opts...) })
}

// testKey returns a key with random material, created at created.
func testKey(t *testing.T, state store.KeyState, created time.Time) store.Key {
	t.Helper()
	kid, pub, sealed := make([]byte, 16), make([]byte, 270), make([]byte, 1200)
	for _, b := range [][]byte{kid, pub, sealed} {
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
	}
	return store.Key{
		KID: fmt.Sprintf("%x", kid), Algorithm: "RS256", State: state,
		PublicDER: pub, Sealed: sealed,
		CreatedAt: created, ActivateAt: created.Add(time.Hour),
	}
}

// sameKeys fails the test unless a and b hold the same kids in the same states
// with the same key material.
func sameKeys(t *testing.T, got, want []store.Key) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d keys, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.KID != w.KID || g.State != w.State || !bytes.Equal(g.PublicDER, w.PublicDER) ||
			!bytes.Equal(g.Sealed, w.Sealed) || !g.CreatedAt.Equal(w.CreatedAt) || !g.ActivateAt.Equal(w.ActivateAt) {
			t.Errorf("key %d: got %s/%s, want %s/%s (or other fields differ)", i, g.KID, g.State, w.KID, w.State)
		}
	}
}

// appliedVersions returns the versions recorded in schema_migrations.
func appliedVersions(t *testing.T, s *Store) []int64 {
	t.Helper()
	return queryColumn[int64](t, s, `SELECT version FROM schema_migrations ORDER BY version`)
}

// queryColumn runs query, which selects one column, on s and returns the
// column's values in row order; a query, scan or iteration error fails the
// test.
func queryColumn[T any](t *testing.T, s *Store, query string) []T {
	t.Helper()
	rows, err := s.rdb.QueryContext(t.Context(), query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var vs []T
	for rows.Next() {
		var v T
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return vs
}

// wantVersions is 1..N for the embedded migrations.
func wantVersions(t *testing.T) []int64 {
	t.Helper()
	ms, err := loadMigrations()
	if err != nil {
		t.Fatalf("loadMigrations: %v", err)
	}
	return backendtest.Versions(ms)
}

func TestMigrationsWellFormed(t *testing.T) {
	vs := wantVersions(t)
	if len(vs) == 0 || vs[0] != 1 {
		t.Fatalf("migration versions %v, want 1..N", vs)
	}
}

func TestReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keygate.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	active, next := testKey(t, store.KeyActive, backendtest.T0), testKey(t, store.KeyNext, backendtest.T0.Add(time.Second))
	backendtest.MustApply(t, s, store.KeyChange{Inserts: []store.Key{active}})
	backendtest.MustApply(t, s, store.KeyChange{Inserts: []store.Key{next}})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v, want nil", err)
	}

	s = openTemp(t, path)
	sameKeys(t, backendtest.MustList(t, s), []store.Key{active, next})
	if v := backendtest.MustVersion(t, s); v != 2 {
		t.Errorf("version after restart %d, want 2", v)
	}
	if got, want := appliedVersions(t, s), wantVersions(t); !equalInts(got, want) {
		t.Errorf("schema_migrations after re-open %v, want %v", got, want)
	}
}

func equalInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestMigrationsIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keygate.db")
	for range 3 {
		s, err := Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := appliedVersions(t, s), wantVersions(t); !equalInts(got, want) {
			t.Errorf("schema_migrations %v, want %v", got, want)
		}
		if err := s.Ping(t.Context()); err != nil {
			t.Errorf("Ping: %v", err)
		}
		s.Close()
	}
}

// TestConcurrentOpen opens one new file from many Stores at once, as a server and
// CLI starting together would: every Open succeeds and each migration is applied
// exactly once.
func TestConcurrentOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "keygate.db")
	const n = 8
	stores := make([]*Store, n)
	errs := stampede.Run(n, func(i int) (err error) {
		stores[i], err = Open(t.Context(), path)
		return err
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Open %d: %v", i, err)
		}
		t.Cleanup(func() { stores[i].Close() })
	}
	if got, want := appliedVersions(t, stores[0]), wantVersions(t); !equalInts(got, want) {
		t.Errorf("schema_migrations %v, want %v", got, want)
	}
	if v := backendtest.MustVersion(t, stores[n-1]); v != 0 {
		t.Errorf("version %d, want 0 (key_set_meta seeded once)", v)
	}
}

func fileHash(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func TestSchemaTooNew(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keygate.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	backendtest.MustApply(t, s, store.KeyChange{Inserts: []store.Key{testKey(t, store.KeyActive, backendtest.T0)}})
	latest := wantVersions(t)[len(wantVersions(t))-1]
	// What a newer binary would leave: one more migration, with a table this
	// binary knows nothing about.
	if _, err := s.db.ExecContext(t.Context(), `CREATE TABLE from_the_future (x INTEGER)`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(t.Context(),
		`INSERT INTO schema_migrations (version, applied_at) VALUES (?, 'later')`, latest+1); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	before := fileHash(t, path)

	s, err = Open(t.Context(), path)
	if err == nil {
		s.Close()
		t.Fatal("Open of a database from a newer binary succeeded, want an error")
	}
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Errorf("Open: %v, want ErrSchemaTooNew", err)
	}
	for _, want := range []string{path, fmt.Sprint(latest + 1), fmt.Sprint(latest), "newer"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Open error %q does not mention %q", err, want)
		}
	}
	if after := fileHash(t, path); after != before {
		t.Error("failed Open modified the database file")
	}
	for _, suffix := range []string{"-wal", "-journal"} {
		if fi, err := os.Stat(path + suffix); err == nil && fi.Size() > 0 {
			t.Errorf("failed Open left %s of %d bytes", path+suffix, fi.Size())
		}
	}
}

func TestFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "keygate")
	path := filepath.Join(dir, "keygate.db")
	s := openTemp(t, path)
	// Write something so the WAL file exists while the store is open.
	backendtest.MustApply(t, s, store.KeyChange{Inserts: []store.Key{testKey(t, store.KeyActive, backendtest.T0)}})

	for p, want := range map[string]os.FileMode{
		dir:               0o700 | os.ModeDir,
		path:              0o600,
		path + "-wal":     0o600,
		path + "-shm":     0o600,
		filepath.Dir(dir): 0o700 | os.ModeDir,
	} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Errorf("stat: %v", err)
			continue
		}
		if got := fi.Mode(); got != want {
			t.Errorf("%s: mode %v, want %v", p, got, want)
		}
	}
	if s.Path() != path {
		t.Errorf("Path() = %q, want %q", s.Path(), path)
	}
}

// TestAwkwardPath checks that characters special in URIs and in the driver's
// DSN syntax do not end up in the wrong place.
func TestAwkwardPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a b?c#d%20e&_txlock=deferred", "keygate.db")
	s := openTemp(t, path)
	backendtest.MustApply(t, s, store.KeyChange{Inserts: []store.Key{testKey(t, store.KeyActive, backendtest.T0)}})
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not at the given path: %v", err)
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "keygate.db") {
			t.Errorf("unexpected file %q next to the database", e.Name())
		}
	}
}

func TestNotADatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keygate.db")
	if err := os.WriteFile(path, bytes.Repeat([]byte("not a database "), 512), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(t.Context(), path)
	if err == nil {
		s.Close()
		t.Fatal("Open of a non-database succeeded")
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("Open error %q does not name the file", err)
	}
}

// TestTimeRoundTrip checks the nanosecond conversion at its edges.
func TestTimeRoundTrip(t *testing.T) {
	for _, tm := range []time.Time{
		{},
		time.Unix(0, 1),
		time.Unix(0, -1),
		time.Date(1678, time.September, 22, 0, 0, 0, 0, time.UTC),
		time.Date(2262, time.April, 11, 0, 0, 0, 0, time.UTC),
		time.Date(2026, time.February, 3, 4, 5, 6, 789, time.FixedZone("X", 3600)),
	} {
		n, err := columns.ToNanos(tm)
		if err != nil {
			t.Errorf("columns.ToNanos(%v): %v", tm, err)
			continue
		}
		got := columns.FromNanos(n)
		if !got.Equal(tm) || got.IsZero() != tm.IsZero() {
			t.Errorf("round trip of %v gave %v", tm, got)
		}
	}
}

// TestConnectionSettings checks the pragmas every pooled connection must run
// with, the writer's one connection and the read pool's (and the
// checkpointer's), for the default durability and for SynchronousFull, and
// that Synchronous reads it back.
func TestConnectionSettings(t *testing.T) {
	for _, o := range []struct {
		opts        []Option
		level, name string // PRAGMA synchronous's number and name
	}{{nil, "1", "NORMAL"}, {[]Option{SynchronousFull()}, "2", "FULL"}} {
		s := openTemp(t, filepath.Join(t.TempDir(), "keygate.db"), o.opts...)
		for _, c := range []struct {
			name      string
			db        *sql.DB
			queryOnly string
		}{{"writer", s.db.db, "0"}, {"reader", s.rdb, "1"}} {
			checkPragmas(t, c.name+" "+o.name, c.db, map[string]string{
				"journal_mode": "wal",
				"foreign_keys": "1",
				"busy_timeout": fmt.Sprint(busyTimeoutMillis),
				"synchronous":  o.level,
				"query_only":   c.queryOnly,
			})
		}
		// The writer leaves checkpoints to the checkpointer, whose own
		// connection waits briefly and syncs as the store does.
		checkPragmas(t, "writer "+o.name, s.db.db, map[string]string{"wal_autocheckpoint": "0"})
		checkPragmas(t, "checkpointer "+o.name, s.ckpt.db, map[string]string{
			"busy_timeout": fmt.Sprint(checkpointBusyMillis),
			"synchronous":  o.level,
		})
		if got := s.db.db.Stats().MaxOpenConnections; got != 1 {
			t.Errorf("writer pool allows %d connections, want 1", got)
		}
		if got, err := s.Synchronous(t.Context()); err != nil || got != o.name {
			t.Errorf("Synchronous() = %q, %v; want %s", got, err, o.name)
		}
	}
}

// checkPragmas fails unless one connection of db reads back every pragma as
// want says.
func checkPragmas(t *testing.T, name string, db *sql.DB, want map[string]string) {
	t.Helper()
	conn, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for pragma, w := range want {
		var got string
		if err := conn.QueryRowContext(t.Context(), "PRAGMA "+pragma).Scan(&got); err != nil {
			t.Fatalf("%s: PRAGMA %s: %v", name, pragma, err)
		}
		if !strings.EqualFold(got, w) {
			t.Errorf("%s: PRAGMA %s = %q, want %q", name, pragma, got, w)
		}
	}
}

// TestTransactionsTakeWriteLock checks that a transaction holds the write lock
// from BEGIN, so a transaction that reads before it writes (a migration, a
// future read-modify-write) cannot lose its snapshot to another writer and fail
// with SQLITE_BUSY instead of waiting.
func TestTransactionsTakeWriteLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keygate.db")
	a, b := openTemp(t, path), openTemp(t, path)
	tx, err := a.db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()

	conn, err := b.db.db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Do not wait: we want to see the lock, not queue behind it. The
	// connection is discarded afterwards so the setting does not leak into
	// the pool.
	defer conn.Raw(func(any) error { return driver.ErrBadConn })
	if _, err := conn.ExecContext(t.Context(), "PRAGMA busy_timeout = 0"); err != nil {
		t.Fatal(err)
	}
	_, err = conn.ExecContext(t.Context(), "BEGIN IMMEDIATE")
	if err == nil {
		conn.ExecContext(t.Context(), "ROLLBACK")
		t.Fatal("another connection could take the write lock while a transaction was open")
	}
	var se *sqlite.Error
	if !errors.As(err, &se) || se.Code()&0xff != sqlite3.SQLITE_BUSY {
		t.Errorf("BEGIN IMMEDIATE: %v, want SQLITE_BUSY", err)
	}
}
