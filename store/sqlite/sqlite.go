// Package sqlite is Keygate's single-file storage backend, built on the pure-Go
// SQLite driver modernc.org/sqlite so that a Keygate binary needs no C toolchain
// and no database server.
//
// The file is shared: the server and the keygate CLI open the same database at
// the same time, each with its own *Store. That is safe because the database
// runs in WAL mode (readers never block the writer), every write transaction
// takes SQLite's write lock when it begins (BEGIN IMMEDIATE) rather than on its
// first write, so two writers queue instead of failing half-way, and a busy
// timeout makes a writer wait its turn instead of erroring at once. Within one
// process, writes do not even meet SQLite's lock: they all go through one
// connection, queued in Go (writeDB), and reads through a query_only pool. Changes made
// by one process become visible to the others on their next read; the key-set
// version (see Store.KeySetVersion) is the cheap way to notice them.
//
// The schema is created and upgraded by numbered SQL migrations embedded in the
// binary (migrations/NNNN_name.sql), recorded in the schema_migrations table.
// Every later kind of record is just another migration.
//
// The Store implements all of store.Store. Where a single file differs from a
// shared database it says so rather than leaving the method out: leases are
// real rows (the server and the CLI are separate processes), WatchKeySet has
// no change feed and just waits (polling KeySetVersion covers it), and login
// throttles are in memory (one server process uses a file).
package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/internal/columns"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// busyTimeoutMillis is how long a connection waits for another connection (in
// this or another process) to release the write lock before giving up. Keygate's
// transactions are short, so a wait this long means something is badly stuck.
const busyTimeoutMillis = 10000

// Store is a Keygate database in one SQLite file. It is safe for concurrent use by
// many goroutines, and by many processes each holding its own Store on the same
// file.
type Store struct {
	// db is the writer: one connection, which every write of this process
	// (single statements and BEGIN IMMEDIATE transactions alike) goes
	// through, reached through a first-come first-served queue in Go (see
	// writeDB). rdb is the pool of read connections, opened query_only so
	// that a write sent to it by mistake fails rather than racing the writer.
	db   *writeDB
	rdb  *sql.DB
	path string

	// Prepared statements of refresh rotation, on the writer's one
	// connection, used in its transactions through Tx.StmtContext.
	spendRefresh, insertRefresh *sql.Stmt
	// The savepoint of one rotation in a group commit (rotations).
	savepoint, rollbackTo, release *sql.Stmt
	rot                            rotations

	// ckpt checkpoints the write-ahead log in the background; nil for a
	// QueryOnly store.
	ckpt *checkpointer

	// reads holds the read pool's prepared statements by query text: every
	// one-row read (getRow: client lookup, refresh token, user, ...) and the
	// deny-list check is prepared on first use and reused (database/sql
	// prepares it once on each pool connection).
	reads sync.Map // string -> *sql.Stmt
}

// writeDB is the writer *sql.DB (SetMaxOpenConns(1)) behind a FIFO queue.
// database/sql hands a freed connection to a random waiter, so with many
// goroutines waiting for the one connection some would wait far longer than
// others; the gate lets exactly one goroutine at a time wait for the
// connection, in arrival order (a channel's waiters are served FIFO). A caller
// holds the gate only until it has the connection (BeginTx, QueryRowContext)
// or its statement has run (ExecContext), so a read never waits for it and no
// lock is held across calls: there is nothing to deadlock on as long as no
// code holding a writer transaction asks the writer for another statement
// (every transaction in this package uses its *sql.Tx only).
//
// Other processes on the file (the CLI) are not in this queue; between
// processes SQLite's write lock and busy_timeout still decide.
type writeDB struct {
	db   *sql.DB
	gate chan struct{}
	// turns counts the turns taken at the writer (leave), and every
	// kickEvery-th turn sends on kick (one slot, never blocking): how the
	// checkpointer learns of new writes.
	turns     atomic.Int64
	kick      chan struct{}
	kickEvery int64
}

// newWriteDB makes db the writer, which wakes the checkpointer every
// kickEvery turns.
func newWriteDB(db *sql.DB, kickEvery int64) *writeDB {
	oneConn(db)
	return &writeDB{db: db, gate: make(chan struct{}, 1), kick: make(chan struct{}, 1), kickEvery: kickEvery}
}

// oneConn limits db's pool to one connection, kept open for good: the
// writer's, and the checkpointer's.
func oneConn(db *sql.DB) {
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
}

func (w *writeDB) enter(ctx context.Context) error {
	select {
	case w.gate <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *writeDB) leave() {
	if w.turns.Add(1)%w.kickEvery == 0 {
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
	<-w.gate
}

// conn takes the writer's connection, in its turn, and keeps it until the
// caller closes the *sql.Conn: no write of this process runs meanwhile.
func (w *writeDB) conn(ctx context.Context) (*sql.Conn, error) {
	if err := w.enter(ctx); err != nil {
		return nil, err
	}
	defer w.leave()
	return w.db.Conn(ctx)
}

func (w *writeDB) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if err := w.enter(ctx); err != nil {
		return nil, err
	}
	defer w.leave()
	return w.db.ExecContext(ctx, query, args...)
}

// QueryRowContext runs a write that returns a row (UPDATE ... RETURNING); the
// connection is the caller's until it scans the row.
func (w *writeDB) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if err := w.enter(ctx); err != nil {
		// An expired context makes the query fail with ctx.Err().
		return w.db.QueryRowContext(ctx, query, args...)
	}
	defer w.leave()
	return w.db.QueryRowContext(ctx, query, args...)
}

// BeginTx begins a write transaction (BEGIN IMMEDIATE: see dsn).
func (w *writeDB) BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error) {
	if err := w.enter(ctx); err != nil {
		return nil, err
	}
	defer w.leave()
	return w.db.BeginTx(ctx, opts)
}

// ErrNoDatabase reports that OpenExisting found no Keygate database: no file
// at the path, or a file without Keygate's schema. Nothing was created.
var ErrNoDatabase = errors.New("no Keygate database")

// Open opens (creating it if needed) the SQLite database at path and brings its
// schema up to date, so that a Store returned without error is ready to use.
//
// A missing parent directory is created with mode 0700 and a missing database
// file with mode 0600, because the file holds sealed private keys and, later,
// credentials that only Keygate's own user should read. An existing directory or
// file keeps the mode it has.
//
// Several processes may call Open on the same file at once; migrations are
// applied exactly once. If the database was migrated by a newer Keygate than
// this one, Open fails with an error wrapping ErrSchemaTooNew and leaves the
// file unchanged, rather than running old code against a schema it does not
// understand.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	return open(ctx, path, true, opts)
}

// OpenExisting opens the Keygate database at path as Open does, but creates
// nothing: if there is no file at path, or the file has no Keygate schema, it
// fails with an error wrapping ErrNoDatabase and leaves the file system as it
// was. A database from an older Keygate is brought up to date. The commands
// that manage a database (everything but serve and init) open it this way, so
// that running one in the wrong directory does not start a new installation.
func OpenExisting(ctx context.Context, path string, opts ...Option) (*Store, error) {
	return open(ctx, path, false, opts)
}

func open(ctx context.Context, path string, create bool, opts []Option) (*Store, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if path == "" {
		return nil, errors.New("store/sqlite: open: empty database path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: open %q: %w", path, err)
	}
	if create {
		if err := createFile(abs); err != nil {
			return nil, err
		}
	} else if err := probe(ctx, abs); err != nil {
		return nil, fmt.Errorf("store/sqlite: open %q: %w", abs, err)
	}

	src := dsn(abs, create)
	syncLevel := "NORMAL"
	if o.syncFull {
		syncLevel = "FULL"
	}
	src += "&_pragma=synchronous(" + syncLevel + ")"
	if o.queryOnly {
		src += "&_pragma=query_only(1)"
	} else {
		// The checkpointer (checkpoint.go) checkpoints instead, off the
		// commit path.
		src += "&_pragma=wal_autocheckpoint(0)"
	}
	db, err := sql.Open("sqlite", src)
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: open %q: %w", abs, err)
	}
	// A connection is opened here, so a file that is not a database, or cannot
	// be locked, fails now rather than on first use.
	if err := pingNew(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("store/sqlite: open %q: %w", abs, err)
	}
	if err := migrate(ctx, db, create); err != nil {
		db.Close()
		return nil, fmt.Errorf("store/sqlite: open %q: %w", abs, err)
	}
	// The read pool opens the file the writer has just created and migrated.
	rdb, err := sql.Open("sqlite", readDSN(abs, syncLevel))
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store/sqlite: open %q: %w", abs, err)
	}
	// SQLite reads are CPU work in this process: more connections than a few
	// per core only add contention.
	n := max(4, 2*runtime.GOMAXPROCS(0))
	rdb.SetMaxOpenConns(n)
	rdb.SetMaxIdleConns(n)
	s := &Store{db: newWriteDB(db, cmp.Or(o.kickEvery, checkpointEveryTurns)), rdb: rdb, path: abs}
	if err := s.prepare(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("store/sqlite: open %q: %w", abs, err)
	}
	if !o.queryOnly {
		if s.ckpt, err = startCheckpointer(ctx, abs, syncLevel, s.db, o); err != nil {
			s.Close()
			return nil, fmt.Errorf("store/sqlite: open %q: %w", abs, err)
		}
	}
	return s, nil
}

// pingNew opens the first connection. Its setup switches a new file to WAL,
// which needs the file to itself; SQLite answers SQLITE_BUSY at once, without
// its busy handler, when other processes are opening the same new file at
// that moment, so the first connection is retried for up to the busy
// timeout. Later connections find the file in WAL already.
func pingNew(ctx context.Context, db *sql.DB) error {
	deadline := time.Now().Add(busyTimeoutMillis * time.Millisecond)
	for {
		err := db.PingContext(ctx)
		var se interface{ Code() int }
		if err == nil || !errors.As(err, &se) || se.Code()&0xff != 5 || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// prepare prepares the statements of the hot paths, all on the writer's
// connection.
func (s *Store) prepare(ctx context.Context) error {
	for _, p := range []struct {
		dst   **sql.Stmt
		query string
	}{
		{&s.spendRefresh, spendRefreshSQL},
		{&s.insertRefresh, insertRefreshSQL},
		{&s.savepoint, `SAVEPOINT rotation`},
		{&s.rollbackTo, `ROLLBACK TO rotation`},
		{&s.release, `RELEASE rotation`},
	} {
		st, err := s.db.db.PrepareContext(ctx, p.query)
		if err != nil {
			return fmt.Errorf("prepare %q: %w", p.query, err)
		}
		*p.dst = st
	}
	return nil
}

// Option adjusts how Open opens the database.
type Option func(*options)

type options struct {
	queryOnly bool
	syncFull  bool
	// Tests: writer turns per checkpointer wake-up, log length that
	// restarts it (0: checkpointEveryTurns, restartFrames).
	kickEvery, restartFrames int64
}

// SynchronousFull opens the database with synchronous=FULL instead of the
// default NORMAL: every commit fsyncs the write-ahead log before it returns,
// so a committed write survives a power cut or kernel crash too, at the cost
// of one fsync per write transaction (which, with one writer, bounds write
// throughput by the disk's fsync rate). See README, "SQLite: concurrency and durability".
func SynchronousFull() Option { return func(o *options) { o.syncFull = true } }

// QueryOnly opens the database with every connection refusing writes
// (SQLite's PRAGMA query_only), even where the file could be written and
// even for root: reads work, every write fails. The database must already
// be migrated (Open fails otherwise). It exists to inspect a database without
// changing it, and for tests of what a server does when its database cannot
// be written (CheckWritable fails).
func QueryOnly() Option { return func(o *options) { o.queryOnly = true } }

// probe checks, read-only and without the pragmas of dsn (journal_mode(WAL)
// would write), that abs is a database with Keygate's schema; if not, the
// error wraps ErrNoDatabase.
func probe(ctx context.Context, abs string) error {
	if _, err := os.Stat(abs); errors.Is(err, fs.ErrNotExist) {
		return ErrNoDatabase
	}
	db, err := sql.Open("sqlite", fileURI(abs, "mode=ro"))
	if err != nil {
		return err
	}
	defer db.Close()
	v, err := appliedVersion(ctx, db)
	if err != nil {
		return err
	}
	if v == 0 {
		return fmt.Errorf("no Keygate schema in the file: %w", ErrNoDatabase)
	}
	return nil
}

// createFile creates the database file abs and its directory if missing.
func createFile(abs string) error {
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return fmt.Errorf("store/sqlite: open %q: create directory: %w", abs, err)
	}
	// Create the file ourselves so it gets 0600: SQLite would create it with
	// 0644 (less the umask). An empty file is a valid empty database. O_EXCL
	// makes a concurrent creator harmless: whoever loses sees ErrExist.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case err == nil:
		if err := f.Close(); err != nil {
			return fmt.Errorf("store/sqlite: open %q: create file: %w", abs, err)
		}
	case errors.Is(err, fs.ErrExist):
	default:
		return fmt.Errorf("store/sqlite: open %q: create file: %w", abs, err)
	}
	return nil
}

// readStmt returns the read pool's prepared statement for query, preparing it
// on first use.
func (s *Store) readStmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := s.reads.Load(query); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := s.rdb.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if prev, loaded := s.reads.LoadOrStore(query, st); loaded {
		st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

// queryRow runs the read query on the read pool as a prepared statement.
func (s *Store) queryRow(ctx context.Context, query string, args ...any) rowScanner {
	st, err := s.readStmt(ctx, query)
	if err != nil {
		return errRow{err}
	}
	return st.QueryRowContext(ctx, args...)
}

// errRow is a row whose Scan fails with err.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// readDSN is the data source name of the read pool: the file as it is (never
// created), every connection query_only, waiting on locks like the writer.
// (A reader writes nothing, but it may run the checkpoint when it closes the
// file last, which syncs as syncLevel says.)
func readDSN(abs, syncLevel string) string {
	return fileURI(abs, fmt.Sprintf(
		"mode=rw&_pragma=busy_timeout(%d)&_pragma=foreign_keys(1)&_pragma=synchronous(%s)&_pragma=query_only(1)",
		busyTimeoutMillis, syncLevel))
}

// dsn is the modernc.org/sqlite data source name for the database file at the
// absolute path abs. Every pooled connection runs these pragmas when it opens:
// busy_timeout first (the driver orders it first) so the others can wait for
// locks, WAL so readers and the writer do not block each other, and foreign
// keys so later tables' references are enforced (open adds synchronous: NORMAL,
// or FULL with SynchronousFull; see README, "SQLite: concurrency and durability"). _txlock=immediate makes
// BeginTx issue BEGIN IMMEDIATE, taking the write lock up front.
//
// The path goes in a file: URI (fileURI). Unless create, mode=rw keeps SQLite from creating a file that vanished since it was checked.
func dsn(abs string, create bool) string {
	mode := ""
	if !create {
		mode = "&mode=rw"
	}
	return fileURI(abs, fmt.Sprintf(
		"_pragma=busy_timeout(%d)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_txlock=immediate%s",
		busyTimeoutMillis, mode))
}

// fileURI is the file: URI of the absolute path abs with the query string
// query. The path is percent-escaped, so that a '?', '#' or '%' in a
// directory name cannot be mistaken for the start of the query.
func fileURI(abs, query string) string {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: query}
	return u.String()
}

// Path returns the absolute path of the database file, for messages and
// diagnostics.
func (s *Store) Path() string { return s.path }

// Ping reports whether the database can be read, so that a readiness probe fails
// when the file has become unreadable or its schema is missing, not only when
// no connection can be opened.
func (s *Store) Ping(ctx context.Context) error {
	var v int64
	if err := s.rdb.QueryRowContext(ctx, `SELECT version FROM key_set_meta WHERE id = 1`).Scan(&v); err != nil {
		return fmt.Errorf("store/sqlite: ping %q: %w", s.path, err)
	}
	return nil
}

// SchemaVersion reads the applied migration level and the latest one this
// binary embeds.
func (s *Store) SchemaVersion(ctx context.Context) (applied, known int64, err error) {
	ms, err := loadMigrations()
	if err != nil {
		return 0, 0, err
	}
	if applied, err = appliedVersion(ctx, s.rdb); err != nil {
		return 0, 0, fmt.Errorf("store/sqlite: %q: %w", s.path, err)
	}
	return applied, ms[len(ms)-1].Version, nil
}

// CheckWritable updates the heartbeat row (migration 0005), which takes
// SQLite's write lock and commits to the write-ahead log: it fails when the
// file, its directory or the disk cannot take a write (read-only, full,
// query_only), or when another connection holds the write lock for longer
// than ctx allows.
func (s *Store) CheckWritable(ctx context.Context) error {
	res, err := s.db.ExecContext(ctx, `UPDATE heartbeat SET beats = beats + 1 WHERE id = 1`)
	if err != nil {
		return fmt.Errorf("store/sqlite: write check %q: %w", s.path, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("store/sqlite: write check %q: heartbeat row missing (%d rows, %v)", s.path, n, err)
	}
	return nil
}

// Close closes the database. On the last close of the file SQLite checkpoints
// the write-ahead log back into the main file. Calls after the first return nil.
func (s *Store) Close() error {
	var cerr error
	if s.ckpt != nil {
		cerr = s.ckpt.close()
	}
	for _, st := range []*sql.Stmt{s.spendRefresh, s.insertRefresh, s.savepoint, s.rollbackTo, s.release} {
		if st != nil {
			st.Close()
		}
	}
	s.reads.Range(func(_, st any) bool {
		st.(*sql.Stmt).Close()
		return true
	})
	// Readers first, so that the writer's close is the file's last and
	// checkpoints.
	rerr := s.rdb.Close()
	if err := s.db.db.Close(); err != nil {
		return fmt.Errorf("store/sqlite: close %q: %w", s.path, err)
	}
	if rerr != nil {
		return fmt.Errorf("store/sqlite: close %q: %w", s.path, rerr)
	}
	if cerr != nil {
		return fmt.Errorf("store/sqlite: close %q: %w", s.path, cerr)
	}
	return nil
}

// Store implements the whole storage contract.
var _ store.Store = (*Store)(nil)

// listRows runs query with args and scans every row it returns with scan, in order,
// into a slice that is never nil; what names the listing in errors.
func listRows[T any](ctx context.Context, s *Store, what, query string, scan func(rowScanner) (T, error), args ...any) ([]T, error) {
	rows, err := s.rdb.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: %s: %w", what, err)
	}
	defer rows.Close()
	return columns.Collect("store/sqlite", what, rows, func(r *sql.Rows) (T, error) { return scan(r) })
}

// getRow runs query, which selects at most one row by key (its one
// parameter), and scans the row with scan; no such row is an error wrapping
// store.ErrNotFound. what names the read in errors (formatted only then: the
// refresh grant's reads are hot).
func getRow[T any](ctx context.Context, s *Store, what, key, query string, scan func(rowScanner) (T, error)) (T, error) {
	v, err := scan(s.queryRow(ctx, query, key))
	if err == nil {
		return v, nil
	}
	return columns.OneRow("store/sqlite", fmt.Sprintf("%s %q", what, key), v, err, sql.ErrNoRows)
}

// execer is what affected and execOne need: the writer (*writeDB) and
// *sql.Tx both have it.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// affected runs query with args on db and returns how many rows it changed;
// what names the write in errors.
func affected(ctx context.Context, db execer, what, query string, args ...any) (int64, error) {
	res, err := db.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, fmt.Errorf("store/sqlite: %s: %w", what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("store/sqlite: %s: %w", what, err)
	}
	return n, nil
}

// inTx runs fn in a write transaction (BEGIN IMMEDIATE: it holds SQLite's
// write lock from the start) and commits it, or rolls it back if fn fails.
// what names the operation in the errors.
func (s *Store) inTx(ctx context.Context, what string, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store/sqlite: %s: begin: %w", what, err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store/sqlite: %s: commit: %w", what, err)
	}
	return nil
}

// execOne runs query with args on db, a write of one row by key: a write
// that changes no row fails with an error wrapping store.ErrNotFound.
func execOne(ctx context.Context, db execer, what, query string, args ...any) error {
	n, err := affected(ctx, db, what, query, args...)
	if err == nil && n == 0 {
		err = fmt.Errorf("store/sqlite: %s: %w", what, store.ErrNotFound)
	}
	return err
}

// Synchronous reads back the synchronous level of the writer's connection,
// "NORMAL" or "FULL" (SynchronousFull), so that the durability a deployment
// runs with can be checked and logged rather than assumed.
func (s *Store) Synchronous(ctx context.Context) (string, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&n); err != nil {
		return "", fmt.Errorf("store/sqlite: synchronous %q: %w", s.path, err)
	}
	switch n {
	case 1:
		return "NORMAL", nil
	case 2:
		return "FULL", nil
	}
	return "", fmt.Errorf("store/sqlite: synchronous %q: unexpected level %d", s.path, n)
}

// insert converts v with toRow and runs query, a one-statement write of the
// row's Args; a conversion error or a refused write (writeError: a taken key
// is ErrConflict) names what.
func insert[V any, R interface{ Args() []any }](ctx context.Context, s *Store, what string, v V, toRow func(V) (R, error), query string) error {
	r, err := toRow(v)
	if err != nil {
		return fmt.Errorf("store/sqlite: %s: %w", what, err)
	}
	if _, err := s.db.ExecContext(ctx, query, r.Args()...); err != nil {
		return writeError(what, err)
	}
	return nil
}
