-- 0005: a one-row heartbeat that the readiness probe (Store.CheckWritable)
-- updates, so that /readyz proves the database can commit a write (a full
-- disk, a read-only file or mount fail it), not only that it can be read.
-- beats counts the probes; nothing reads it. Same table as PostgreSQL's 0006.

CREATE TABLE heartbeat (
    id    INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    beats INTEGER NOT NULL
) STRICT;

INSERT INTO heartbeat (id, beats) VALUES (1, 0);
