-- 0001: signing keys and the key-set version counter.
--
-- Times are BIGINT Unix nanoseconds UTC, as in the SQLite backend; 0 stands
-- for "not set" (Go's zero time.Time). TIMESTAMPTZ would round to the
-- microsecond, and stored times must read back to the nanosecond.
--
-- Text columns that are ordered (kid here) use the "C" collation, so that
-- ordering is byte order whatever the database's default collation is.

CREATE TABLE signing_keys (
    kid          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    algorithm    TEXT   NOT NULL,
    state        TEXT   NOT NULL CHECK (state IN ('next', 'active', 'retired', 'revoked')),
    public_der   BYTEA  NOT NULL,
    sealed       BYTEA  NULL,
    created_at   BIGINT NOT NULL DEFAULT 0,
    activate_at  BIGINT NOT NULL DEFAULT 0,
    retired_at   BIGINT NOT NULL DEFAULT 0,
    remove_after BIGINT NOT NULL DEFAULT 0,
    revoked_at   BIGINT NOT NULL DEFAULT 0
);

-- At most one key signs and at most one waits to: a second 'active' or 'next'
-- row violates these partial unique indexes (SQLSTATE 23505), which the store
-- reports as store.ErrConflict. A concurrent writer of a second such row waits
-- for the first to commit or roll back, then fails or succeeds accordingly.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (state) WHERE state = 'active';
CREATE UNIQUE INDEX signing_keys_one_next   ON signing_keys (state) WHERE state = 'next';

-- ListKeys order.
CREATE INDEX signing_keys_created ON signing_keys (created_at, kid);

-- One row: the key-set version, bumped by every applied change so servers can
-- notice changes made by other processes with one cheap read.
CREATE TABLE key_set_meta (
    id      INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    version BIGINT  NOT NULL
);

INSERT INTO key_set_meta (id, version) VALUES (1, 0);
