-- 0001: signing keys and the key-set version counter.
--
-- Times are INTEGER Unix nanoseconds UTC; 0 stands for "not set" (Go's zero
-- time.Time). Tables are STRICT so a value of the wrong type is rejected
-- rather than silently stored.

CREATE TABLE signing_keys (
    kid          TEXT    NOT NULL PRIMARY KEY,
    algorithm    TEXT    NOT NULL,
    state        TEXT    NOT NULL CHECK (state IN ('next', 'active', 'retired', 'revoked')),
    public_der   BLOB    NOT NULL,
    sealed       BLOB    NULL,
    created_at   INTEGER NOT NULL DEFAULT 0,
    activate_at  INTEGER NOT NULL DEFAULT 0,
    retired_at   INTEGER NOT NULL DEFAULT 0,
    remove_after INTEGER NOT NULL DEFAULT 0,
    revoked_at   INTEGER NOT NULL DEFAULT 0
) STRICT;

-- At most one key signs and at most one waits to: a second 'active' or 'next'
-- row violates these indexes, which the store reports as store.ErrConflict.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (state) WHERE state = 'active';
CREATE UNIQUE INDEX signing_keys_one_next   ON signing_keys (state) WHERE state = 'next';

-- ListKeys order.
CREATE INDEX signing_keys_created ON signing_keys (created_at, kid);

-- One row: the key-set version, bumped by every applied change so servers can
-- notice changes made by other processes with one cheap read.
CREATE TABLE key_set_meta (
    id      INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
) STRICT;

INSERT INTO key_set_meta (id, version) VALUES (1, 0);
