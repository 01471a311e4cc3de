package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"time"

	"github.com/keygate/keygate/store/internal/migrations"
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

// KnownSchemaVersion is the latest migration this binary carries: the
// level Open brings a database to (`keygate version` prints it). It is 0 if
// the embedded migrations cannot be read, which Open reports.
func KnownSchemaVersion() int64 {
	ms, err := loadMigrations()
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].Version
}

// loadMigrations reads this backend's embedded migrations.
func loadMigrations() ([]migrations.Migration, error) {
	return migrations.Load(migrationFiles, "migrations")
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
// queue on the write lock and the second finds the work done. Unless create, a
// database without any migration is refused with ErrNoDatabase, unchanged.
func migrate(ctx context.Context, db *sql.DB, create bool) error {
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	latest := ms[len(ms)-1].Version

	// Check first, without taking the write lock, so a database from a newer
	// binary is refused without writing anything to it.
	applied, err := appliedVersion(ctx, db)
	if err != nil {
		return err
	}
	if applied > latest {
		return fmt.Errorf("schema version %d, this binary knows up to %d: %w", applied, latest, ErrSchemaTooNew)
	}
	if applied == 0 && !create {
		return fmt.Errorf("no Keygate schema in the file: %w", ErrNoDatabase)
	}
	for _, m := range ms {
		if m.Version <= applied {
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
func applyMigration(ctx context.Context, db *sql.DB, m migrations.Migration, latest int64) (err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migration %s: begin: %w", m.Name, err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()

	if _, err := tx.ExecContext(ctx, createMigrationsTable); err != nil {
		return fmt.Errorf("migration %s: create schema_migrations: %w", m.Name, err)
	}
	// Re-read under the write lock: another process may have migrated since
	// migrate looked.
	applied, err := appliedVersion(ctx, tx)
	if err != nil {
		return fmt.Errorf("migration %s: %w", m.Name, err)
	}
	switch {
	case applied > latest:
		return fmt.Errorf("migration %s: schema version %d, this binary knows up to %d: %w", m.Name, applied, latest, ErrSchemaTooNew)
	case applied >= m.Version:
		return tx.Rollback() // done by someone else meanwhile
	case applied != m.Version-1:
		return fmt.Errorf("migration %s: schema version is %d, want %d", m.Name, applied, m.Version-1)
	}

	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return fmt.Errorf("migration %s: %w", m.Name, err)
	}
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`,
		m.Version, time.Now().UTC().Format(time.RFC3339Nano)); err != nil {
		return fmt.Errorf("migration %s: record version: %w", m.Name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migration %s: commit: %w", m.Name, err)
	}
	return nil
}
