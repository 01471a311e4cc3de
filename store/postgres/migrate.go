package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keygate/keygate/store/internal/migrations"
)

// ErrSchemaTooNew reports that the database was migrated by a newer Keygate than
// this one: it records a schema version this binary has no migration for. Open
// refuses such a database, unchanged, because old code could misread or damage
// data it does not understand; run the newer binary, or restore a backup.
var ErrSchemaTooNew = errors.New("database schema is newer than this Keygate binary supports")

// migrationLockID is the key of the advisory lock migrations hold: "keygate"
// in ASCII. Advisory locks are per database, so installations in different
// schemas of one database take turns migrating, which costs nothing worth
// avoiding.
const migrationLockID int64 = 0x6b657967617465

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

// createMigrationsTable is run in the migration transaction, under the
// advisory lock; the table records which migrations the schema has had.
const createMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
    version    BIGINT      NOT NULL PRIMARY KEY,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)`

// migrate applies the embedded migrations the schema has not had yet.
//
// It first reads the applied version without locking or writing anything, so
// that a schema from a newer binary is refused untouched and an up-to-date
// one (the usual case) costs one read. Otherwise it applies every missing
// migration in one transaction that first takes an advisory lock and then
// re-reads the applied version: replicas that start at once queue on the lock,
// and each after the first finds the work done. PostgreSQL's DDL is
// transactional, so a crash or an error leaves the schema as it was. Unless
// create, a schema without any migration is refused with ErrNoDatabase,
// unchanged.
func migrate(ctx context.Context, pool *pgxpool.Pool, schema string, create bool) error {
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	latest := ms[len(ms)-1].Version

	applied, err := appliedVersion(ctx, pool, schema)
	if err != nil {
		return err
	}
	if applied > latest {
		return tooNew(applied, latest)
	}
	if applied == latest {
		return nil
	}
	if applied == 0 && !create {
		return fmt.Errorf("schema %q has no Keygate tables: %w", schema, ErrNoDatabase)
	}

	// READ COMMITTED (the default) matters: each statement after the lock
	// sees what the previous holder of the lock committed.
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("migrate: begin: %w", err)
	}
	defer rollback(ctx, tx) // after Commit, a no-op

	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLockID); err != nil {
		return fmt.Errorf("migrate: take the migration lock: %w", err)
	}
	if _, err := tx.Exec(ctx, createMigrationsTable); err != nil {
		return fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	if applied, err = appliedVersion(ctx, tx, schema); err != nil {
		return err
	}
	if applied > latest {
		return tooNew(applied, latest)
	}
	for _, m := range ms[applied:] {
		// No arguments: pgx sends the file with the simple query protocol,
		// which runs several statements.
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			return fmt.Errorf("migration %s: %w", m.Name, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, m.Version); err != nil {
			return fmt.Errorf("migration %s: record version: %w", m.Name, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("migrate from version %d to %d: commit: %w", applied, latest, err)
	}
	return nil
}

// tooNew is the error for a schema at version applied when this binary knows
// versions up to latest.
func tooNew(applied, latest int64) error {
	return fmt.Errorf("schema version %d, this binary knows up to %d: %w", applied, latest, ErrSchemaTooNew)
}

// queryer is what appliedVersion needs, satisfied by *pgxpool.Pool and pgx.Tx.
type queryer interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// appliedVersion returns the highest migration version the schema records, 0
// for a schema without a schema_migrations table. It fails if the recorded
// versions are not exactly 1..N, which would mean the table was edited by
// hand.
func appliedVersion(ctx context.Context, q queryer, schema string) (int64, error) {
	var exists bool
	err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_tables
		WHERE schemaname = $1 AND tablename = 'schema_migrations')`, schema).Scan(&exists)
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	if !exists {
		return 0, nil
	}
	var n, lo, hi int64
	err = q.QueryRow(ctx, `SELECT count(*), coalesce(min(version), 1), coalesce(max(version), 0)
		FROM schema_migrations`).Scan(&n, &lo, &hi)
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	if lo != 1 || n != hi {
		return 0, fmt.Errorf("schema_migrations is inconsistent: %d rows, versions %d..%d, want 1..N without gaps", n, lo, hi)
	}
	return hi, nil
}
