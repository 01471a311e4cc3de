package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strconv"
	"time"
)

// ErrSchemaTooNew reports that the database was migrated by a newer Keygate than
// this one: it records a schema version this binary has no migration for. Open
// refuses such a database, unchanged, because old code could misread or damage
// data it does not understand; run the newer binary, or restore a backup.
var ErrSchemaTooNew = errors.New("database schema is newer than this Keygate binary supports")

// migrationFiles holds the schema migrations, one file per version, named
// NNNN_description.sql and applied in version order.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationName is the form of a migration file name: a zero-padded version
// number (from 1, no gaps), an underscore, and a description.
var migrationName = regexp.MustCompile(`^([0-9]{4})_[a-z0-9_]+\.sql$`)

// migration is one schema version's SQL.
type migration struct {
	version int64
	name    string
	sql     string
}

// loadMigrations reads the embedded migrations in version order and checks they
// are numbered 1, 2, 3, ... without gaps, so a misnamed file is caught by the
// tests rather than silently skipped in production.
func loadMigrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, fmt.Errorf("read embedded migrations: %w", err)
	}
	var ms []migration
	for _, e := range entries { // ReadDir sorts by name, so by version
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("embedded migration %q: name is not NNNN_description.sql", e.Name())
		}
		v, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("embedded migration %q: version: %w", e.Name(), err)
		}
		if want := int64(len(ms) + 1); v != want {
			return nil, fmt.Errorf("embedded migration %q: version %d, want %d (versions must run 1, 2, 3, ... without gaps or repeats)", e.Name(), v, want)
		}
		body, err := fs.ReadFile(migrationFiles, "migrations/"+e.Name())
		if err != nil {
			return nil, fmt.Errorf("embedded migration %q: %w", e.Name(), err)
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(body)})
	}
	if len(ms) == 0 {
		return nil, errors.New("no embedded migrations")
	}
	return ms, nil
}

// createMigrationsTable is run at the start of every migration transaction; the
// table records which migrations the database has had.
const createMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    applied_at TEXT NOT NULL
)`

// migrate applies the embedded migrations the database has not had yet, each in
// its own transaction together with its schema_migrations row, so a crash leaves
// the schema at some whole version. Because transactions begin IMMEDIATE and the
// applied version is re-read inside each one, two processes migrating at once
// queue on the write lock and the second finds the work done.
func migrate(ctx context.Context, db *sql.DB) error {
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	latest := ms[len(ms)-1].version

	// Check first, without taking the write lock, so a database from a newer
	// binary is refused without writing anything to it.
	applied, err := appliedVersion(ctx, db)
	if err != nil {
		return err
	}
	if applied > latest {
		return fmt.Errorf("schema version %d, this binary knows up to %d: %w", applied, latest, ErrSchemaTooNew)
	}
	for _, m := range ms {
		if m.version <= applied {
			continue
		}
		if err := applyMigration(ctx, db, m, latest); err != nil {
			return err
		}
	}
	return nil
}

// queryer is what appliedVersion needs, satisfied by both *sql.DB and *sql.Tx.
type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// appliedVersion returns the highest migration version the database records, 0
// for a new database. It fails if the recorded versions are not exactly 1..N,
// which would mean the table was edited by hand.
func appliedVersion(ctx context.Context, q queryer) (int64, error) {
	var tables int
	err := q.QueryRowContext(ctx,
		`SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'`).Scan(&tables)
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	if tables == 0 {
		return 0, nil
	}
	var n, lo, hi int64
	err = q.QueryRowContext(ctx,
		`SELECT count(*), coalesce(min(version), 1), coalesce(max(version), 0) FROM schema_migrations`).Scan(&n, &lo, &hi)
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	if lo != 1 || n != hi {
		return 0, fmt.Errorf("schema_migrations is inconsistent: %d rows, versions %d..%d, want 1..N without gaps", n, lo, hi)
	}
	return hi, nil
}

// applyMigration applies m in one IMMEDIATE transaction unless another process
// applied it first.
func applyMigration(ctx context.Context, db *sql.DB, m migration, latest int64) (err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migration %s: begin: %w", m.name, err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()

	if _, err := tx.ExecContext(ctx, createMigrationsTable); err != nil {
		return fmt.Errorf("migration %s: create schema_migrations: %w", m.name, err)
	}
	// Re-read under the write lock: another process may have migrated since
	// migrate looked.
	applied, err := appliedVersion(ctx, tx)
	if err != nil {
		return fmt.Errorf("migration %s: %w", m.name, err)
	}
	switch {
	case applied > latest:
		return fmt.Errorf("migration %s: schema version %d, this binary knows up to %d: %w", m.name, applied, latest, ErrSchemaTooNew)
	case applied >= m.version:
		return tx.Rollback() // done by someone else meanwhile
	case applied != m.version-1:
		return fmt.Errorf("migration %s: schema version is %d, want %d", m.name, applied, m.version-1)
	}

	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return fmt.Errorf("migration %s: %w", m.name, err)
	}
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`,
		m.version, time.Now().UTC().Format(time.RFC3339Nano)); err != nil {
		return fmt.Errorf("migration %s: record version: %w", m.name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migration %s: commit: %w", m.name, err)
	}
	return nil
}
