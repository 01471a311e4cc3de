// Package postgres is Keygate's PostgreSQL storage backend, for deployments
// that run several Keygate replicas against one database. It is built on pgx v5
// (a pgxpool connection pool) and behaves exactly as the SQLite backend
// (store/sqlite) does: both must pass the contract in store/storetest, and the
// decisions documented there (times stored as Unix nanoseconds, usernames and
// emails folded by Go's strings.ToLower, byte-order listing, the refusal rules
// for bad input) hold here too.
//
// Concurrency rests on the database, not on this process: every write that can
// lose a race is a guarded UPDATE or DELETE (WHERE state = the expected state),
// a single INSERT ... ON CONFLICT statement, or an INSERT that a unique index
// refuses, so transactions run at PostgreSQL's default READ COMMITTED isolation
// and any number of replicas may write at once. A lost race is reported as an
// error wrapping store.ErrConflict, with nothing written.
//
// The schema is created and upgraded by numbered SQL migrations embedded in
// the binary (migrations/NNNN_name.sql), recorded in the schema_migrations
// table and applied under a transaction-scoped advisory lock, so that replicas
// starting at once migrate the database exactly once. The schema lives in the
// first schema of the connection's search_path, which the DSN may set (for
// example postgres://host/db?search_path=keygate, or
// options=-c%20search_path%3Dkeygate), so that one database can hold several
// independent Keygate installations.
//
// On top of the storage contract the package offers what replicas need to
// cooperate: every applied key change is announced with NOTIFY (see
// Store.WatchKeySet), and named leases (Store.AcquireLease) let one replica at
// a time perform a coordinated job such as a key rotation.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/internal/columns"
)

// DefaultTimeout is how long a Store method may take when the caller's context
// has no deadline of its own: a database that does not answer must fail a
// request, not hang it. A caller's own deadline, shorter or longer, is used
// as given.
const DefaultTimeout = 5 * time.Second

// openTimeout bounds Open when its context has no deadline. It is longer than
// DefaultTimeout because Open may wait for another replica's migrations.
const openTimeout = 60 * time.Second

// maxTxAttempts is how many times a transaction that PostgreSQL aborted with a
// serialization failure or a deadlock is run before giving up with
// store.ErrConflict.
const maxTxAttempts = 3

// Store is a Keygate database in PostgreSQL. It is safe for concurrent use by
// many goroutines, and by many processes each holding its own Store on the
// same database and schema.
type Store struct {
	pool    *pgxpool.Pool
	desc    string        // database and schema, for messages; never the password
	schema  string        // the schema the tables live in (key-set notifications name it)
	timeout time.Duration // per-call default deadline; DefaultTimeout but in tests

	closeOnce sync.Once
	closed    chan struct{} // closed by Close, to stop WatchKeySet
}

// Open connects to the PostgreSQL database named by dsn (a postgres:// URL or a
// key=value connection string, as pgx accepts, including pgxpool's pool_*
// settings) and brings its schema up to date, so that a Store returned without
// error is ready to use.
//
// The tables live in the first schema of the search_path, which must exist;
// the DSN may set it. The database must use the UTF8 encoding, so that every
// string Keygate stores reads back unchanged.
//
// Several processes may call Open on the same database and schema at once;
// migrations are applied exactly once. If the schema was migrated by a newer
// Keygate than this one, Open fails with an error wrapping ErrSchemaTooNew
// and writes nothing, rather than running old code against a schema it does
// not understand. An already up-to-date schema is only read, so replicas may
// connect as a user that cannot change the schema.
//
// If ctx has no deadline, Open gives up after a minute.
func Open(ctx context.Context, dsn string) (*Store, error) {
	return open(ctx, dsn, true)
}

// ErrNoDatabase reports that OpenExisting found no Keygate schema: the
// first schema of the search_path has no applied migrations. Nothing was
// created.
var ErrNoDatabase = errors.New("no Keygate database")

// OpenExisting opens the database as Open does, but creates no schema: if no
// migration was ever applied to the schema, it fails with an error wrapping
// ErrNoDatabase and writes nothing. A schema from an older Keygate is brought
// up to date. The commands that manage a database (everything but serve and
// init) open it this way, so that a wrong DSN does not start a new
// installation.
func OpenExisting(ctx context.Context, dsn string) (*Store, error) {
	return open(ctx, dsn, false)
}

func open(ctx context.Context, dsn string, create bool) (*Store, error) {
	if dsn == "" {
		return nil, errors.New("store/postgres: open: empty DSN")
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's parse errors leave out the connection string, so they do not
		// leak a password.
		return nil, fmt.Errorf("store/postgres: open: parse DSN: %w", err)
	}
	desc := fmt.Sprintf("database %q on %s:%d", cfg.ConnConfig.Database, cfg.ConnConfig.Host, cfg.ConnConfig.Port)

	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, openTimeout)
		defer cancel()
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store/postgres: open %s: %w", desc, err)
	}
	schema, err := checkConnection(ctx, pool)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("store/postgres: open %s: %w", desc, err)
	}
	desc = fmt.Sprintf("%s, schema %q", desc, schema)
	if err := migrate(ctx, pool, schema, create); err != nil {
		pool.Close()
		return nil, fmt.Errorf("store/postgres: open %s: %w", desc, err)
	}
	return &Store{pool: pool, desc: desc, schema: schema, timeout: DefaultTimeout, closed: make(chan struct{})}, nil
}

// checkConnection connects (so that a bad host, password or database fails
// Open rather than the first request) and returns the schema the tables live
// in, checking that there is one and that the database stores UTF-8.
func checkConnection(ctx context.Context, pool *pgxpool.Pool) (string, error) {
	var (
		schema   *string
		encoding string
	)
	err := pool.QueryRow(ctx, `SELECT current_schema(), current_setting('server_encoding')`).Scan(&schema, &encoding)
	if err != nil {
		return "", err
	}
	if schema == nil {
		var path string
		if err := pool.QueryRow(ctx, `SHOW search_path`).Scan(&path); err != nil {
			return "", errors.New("no schema of the search_path exists")
		}
		return "", fmt.Errorf("no schema of the search_path (%s) exists; create it, or set search_path in the DSN", path)
	}
	if encoding != "UTF8" {
		return "", fmt.Errorf("database encoding is %s, want UTF8 (create the database with ENCODING 'UTF8')", encoding)
	}
	return *schema, nil
}

// String describes the database and schema, for messages and diagnostics. It
// never includes the password.
func (s *Store) String() string { return s.desc }

// Ping reports whether the database can be read, so that a readiness probe
// fails when the schema is missing or unreadable, not only when no connection
// can be made.
// SchemaVersion reads the applied migration level and the latest one this
// binary embeds.
func (s *Store) SchemaVersion(ctx context.Context) (applied, known int64, err error) {
	ms, err := loadMigrations()
	if err != nil {
		return 0, 0, err
	}
	ctx, cancel := s.callContext(ctx)
	defer cancel()
	if applied, err = appliedVersion(ctx, s.pool, s.schema); err != nil {
		return 0, 0, fmt.Errorf("store/postgres: %s: %w", s.desc, err)
	}
	return applied, ms[len(ms)-1].Version, nil
}

func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := s.callContext(ctx)
	defer cancel()
	var v int64
	if err := s.pool.QueryRow(ctx, `SELECT version FROM key_set_meta WHERE id = 1`).Scan(&v); err != nil {
		return fmt.Errorf("store/postgres: ping %s: %w", s.desc, err)
	}
	return nil
}

// CheckWritable updates the heartbeat row (migration 0006) in a
// transaction of its own: it fails when the server cannot commit a write
// (a read-only replica or transaction mode, a full disk, a lost connection).
func (s *Store) CheckWritable(ctx context.Context) error {
	ctx, cancel := s.callContext(ctx)
	defer cancel()
	tag, err := s.pool.Exec(ctx, `UPDATE heartbeat SET beats = beats + 1 WHERE id = 1`)
	if err != nil {
		return fmt.Errorf("store/postgres: write check %s: %w", s.desc, err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("store/postgres: write check %s: heartbeat row missing", s.desc)
	}
	return nil
}

// Close closes every connection of the Store and stops its WatchKeySet
// listeners. Calls after the first do nothing and return nil.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.pool.Close()
	})
	return nil
}

// callContext gives ctx the Store's default deadline if it has none. Every
// method runs its statements under the returned context.
func (s *Store) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, s.timeout)
}

// inTx runs fn in a READ COMMITTED transaction and commits it if fn returns
// nil, calling beforeCommit (if not nil) just before the commit. If
// PostgreSQL aborts the transaction with a serialization failure or a
// deadlock, nothing of it was kept and it is run again, a few times at most;
// after that the error wraps store.ErrConflict. Any other error from fn is
// returned as it is, after rolling back.
func (s *Store) inTx(ctx context.Context, what string, fn func(tx pgx.Tx) error, beforeCommit func()) error {
	for attempt := 1; ; attempt++ {
		err := s.tryTx(ctx, fn, beforeCommit)
		if err == nil || !isRetryable(err) {
			return err
		}
		if attempt == maxTxAttempts {
			return fmt.Errorf("store/postgres: %s: gave up after %d attempts: %w: %w", what, attempt, store.ErrConflict, err)
		}
		// A short random pause, so that the transactions that collided do
		// not collide again.
		pause := time.Duration(rand.Int64N(int64(10*time.Millisecond) << attempt))
		select {
		case <-ctx.Done():
			return fmt.Errorf("store/postgres: %s: %w (after %w)", what, ctx.Err(), err)
		case <-time.After(pause):
		}
	}
}

// tryTx is one attempt of inTx.
func (s *Store) tryTx(ctx context.Context, fn func(tx pgx.Tx) error, beforeCommit func()) (err error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("store/postgres: begin: %w", err)
	}
	defer func() {
		if err != nil {
			rollback(ctx, tx)
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	if beforeCommit != nil {
		beforeCommit()
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("store/postgres: commit: %w", writeConflict(err))
	}
	return nil
}

// rollback rolls tx back, under a short deadline of its own: ctx may be what
// failed. The error is of no interest: if the rollback fails, the connection
// is closed, which rolls back just as well.
func rollback(ctx context.Context, tx pgx.Tx) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	_ = tx.Rollback(rctx)
}

// SQLSTATE codes the store reacts to.
const (
	codeUniqueViolation      = "23505"
	codeSerializationFailure = "40001"
	codeDeadlockDetected     = "40P01"
)

// sqlState returns err's SQLSTATE, or "" if it is not a PostgreSQL error.
func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// isRetryable reports whether err aborted a transaction that may simply be run
// again: a serialization failure or a deadlock.
func isRetryable(err error) bool {
	switch sqlState(err) {
	case codeSerializationFailure, codeDeadlockDetected:
		return true
	}
	return false
}

// writeConflict returns err wrapping store.ErrConflict too if it is a unique
// violation: a duplicate ID, a second active or next key, a taken username.
// Those are lost races or stale decisions, not faults.
func writeConflict(err error) error {
	if sqlState(err) == codeUniqueViolation {
		return fmt.Errorf("%w: %w", store.ErrConflict, err)
	}
	return err
}

// writeError wraps a failed write, with store.ErrConflict for a unique
// violation (see writeConflict).
func writeError(what string, err error) error {
	return fmt.Errorf("store/postgres: %s: %w", what, writeConflict(err))
}

// storable reports whether PostgreSQL's text type can hold s unchanged: it
// must be valid UTF-8 without NUL characters. A string that is not storable
// cannot be the key of a stored record either.
func storable(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// storableRow converts v to its row with toRow once the named text fields
// (name, value pairs, as checkText takes them) are known to be storable;
// either failure is an error prefixed with "store/postgres: " and what,
// which names the write.
func storableRow[V, R any](what string, v V, toRow func(V) (R, error), fields ...string) (R, error) {
	var zero R
	if err := checkText(fields...); err != nil {
		return zero, fmt.Errorf("store/postgres: %s: %w", what, err)
	}
	r, err := toRow(v)
	if err != nil {
		return zero, fmt.Errorf("store/postgres: %s: %w", what, err)
	}
	return r, nil
}

// checkText returns an error naming the first of the fields that PostgreSQL
// cannot store (see storable), or nil. Such input is refused as invalid rather
// than passed to the database, which would reject it with a less clear error.
func checkText(fields ...string) error {
	for i := 0; i+1 < len(fields); i += 2 {
		if !storable(fields[i+1]) {
			return fmt.Errorf("%s %q is not valid UTF-8 or contains a NUL character", fields[i], fields[i+1])
		}
	}
	return nil
}

// Store implements the whole storage contract.
var _ store.Store = (*Store)(nil)

// listRows runs query with args (under the Store's default deadline) and scans every row
// it returns with scan, in order, into a slice that is never nil; what names
// the listing in errors.
func listRows[T any](ctx context.Context, s *Store, what, query string, scan func(pgx.Row) (T, error), args ...any) ([]T, error) {
	ctx, cancel := s.callContext(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("store/postgres: %s: %w", what, err)
	}
	defer rows.Close()
	return columns.Collect("store/postgres", what, rows, func(r pgx.Rows) (T, error) { return scan(r) })
}

// getRow runs query, which selects at most one row by key ($1), and scans the
// row with scan (under the Store's default deadline). No such row, or a key
// that cannot be stored so no row can have it, is an error wrapping
// store.ErrNotFound; what names the read in errors.
func getRow[T any](ctx context.Context, s *Store, what, key, query string, scan func(pgx.Row) (T, error)) (T, error) {
	var zero T
	if !storable(key) {
		return zero, fmt.Errorf("store/postgres: %s %q: %w", what, key, store.ErrNotFound)
	}
	ctx, cancel := s.callContext(ctx)
	defer cancel()
	v, err := scan(s.pool.QueryRow(ctx, query, key))
	return columns.OneRow("store/postgres", fmt.Sprintf("%s %q", what, key), v, err, pgx.ErrNoRows)
}

// exec runs one write under the Store's deadline and returns how many rows
// it changed; what names it in errors.
func (s *Store) exec(ctx context.Context, what, query string, args ...any) (int64, error) {
	ctx, cancel := s.callContext(ctx)
	defer cancel()
	tag, err := s.pool.Exec(ctx, query, args...)
	if err != nil {
		return 0, fmt.Errorf("store/postgres: %s: %w", what, err)
	}
	return tag.RowsAffected(), nil
}

// execOne runs query with args as exec does, a write of one row by key: a
// write that changes no row fails with an error wrapping store.ErrNotFound.
func (s *Store) execOne(ctx context.Context, what, query string, args ...any) error {
	n, err := s.exec(ctx, what, query, args...)
	if err == nil && n == 0 {
		err = fmt.Errorf("store/postgres: %s: %w", what, store.ErrNotFound)
	}
	return err
}

// insert checks the text fields (pairs of name and value, as checkText),
// converts v with toRow and runs query, a one-statement write of the row's
// Args; a refused input or write (writeError: a taken key is ErrConflict)
// names what.
func insert[V any, R interface{ Args() []any }](ctx context.Context, s *Store, what string, v V, toRow func(V) (R, error), query string, fields ...string) error {
	r, err := storableRow(what, v, toRow, fields...)
	if err != nil {
		return err
	}
	ctx, cancel := s.callContext(ctx)
	defer cancel()
	if _, err := s.pool.Exec(ctx, query, r.Args()...); err != nil {
		return writeError(what, err)
	}
	return nil
}
